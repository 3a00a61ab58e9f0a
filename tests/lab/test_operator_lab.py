# SPDX-License-Identifier: GPL-2.0-or-later
"""The operator's side on a real cluster, with tandem installed from its Debian package.

`./run deb` builds the .deb; the test installs it with dpkg on this host, whose /usr every lab node shares
(the lab's `tandem install` then finds it current and leaves it be: the agents that run are the package's,
which `dpkg --verify` confirms). On that cluster: `tandem status` and `tandem can-migrate` against real
states (VM running, after a move, with the DRBD link cut), crmsh's `crm resource migrate` alias live-migrates
like `move`, and at the end `dpkg -r` removes every file the package installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.cluster import LabConfig
from lab.scenarios import VM, VmCluster, healthy, qemu_processes

from tandem import __version__
from tests.conftest import TOP
from tests.lab.conftest import ModuleCluster, record, vm_cluster

DEB = TOP / "dist" / f"tandem_{__version__}_all.deb"
TANDEM = "/usr/sbin/tandem"
UNOWNED = ("/usr/lib/ocf/lib/tandem", "/usr/lib/ocf/resource.d/tandem")
SCRIPTS = ("/usr/sbin/tandem", "/usr/sbin/tandem-fence-peer", "/usr/sbin/tandem-unfence-peer")


def host(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)


def package_files() -> list[Path]:
    """The files and links (not directories) of the .deb, as installed paths (`dpkg-deb -c` lines)."""
    listing = host("dpkg-deb", "-c", str(DEB))
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines()]
    return [Path(row[5][1:]) for row in rows if row and row[0][0] in "-l"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """The .deb installed; at the end removed, and a `tandem install` copy that was there put back."""
    built = host(str(TOP / "run"), "deb")
    assert built.returncode == 0, built.stderr[-2000:]
    aside = tmp_path_factory.mktemp("tandem-install-aside")
    moved: list[tuple[Path, Path]] = []
    if host("dpkg-query", "-W", "tandem").returncode != 0:  # a `tandem install` copy: not dpkg's to replace
        for i, path in enumerate(map(Path, (*UNOWNED, *SCRIPTS))):
            if path.exists():
                moved.append((path, Path(shutil.move(path, aside / f"{i}-{path.name}"))))
    done = host("dpkg", "-i", str(DEB))
    assert done.returncode == 0, done.stderr
    files = package_files()
    try:
        yield files
    finally:
        removed = host("dpkg", "-r", "tandem")
        left = [p for p in files if p.exists() or p.is_symlink()]
        gone = not Path("/usr/lib/ocf/lib/tandem").exists()  # py3clean took the byte-compiled files too
        for path, kept in moved:
            shutil.move(kept, path)
        assert removed.returncode == 0, removed.stderr
        assert left == [], f"dpkg -r left {left[:5]}"
        assert gone


@pytest.fixture(scope="module")
def module_cluster(installed: list[Path], lab_defaults: LabConfig) -> Iterator[ModuleCluster]:
    with vm_cluster(VmCluster, lab_defaults, "vm", "test_operator_lab") as cluster:
        yield cluster


def tandem(vc: VmCluster, node: str, *args: str) -> subprocess.CompletedProcess[str]:
    return vc.lab.run(node, [TANDEM, *args], timeout=60, check=False)


def test_the_agents_that_run_are_the_packages(vc: VmCluster, installed: list[Path]) -> None:
    assert Path("/usr/lib/ocf/resource.d/tandem/domain") in installed
    owner = host("dpkg", "-S", "/usr/lib/ocf/resource.d/tandem/domain")
    assert owner.stdout.startswith("tandem: ")
    verify = host("dpkg", "--verify", "tandem")
    assert (verify.returncode, verify.stdout) == (0, ""), verify.stdout  # no file changed since dpkg -i


@pytest.mark.parametrize("agent", ["drbd", "domain"])
def test_crm_and_pcs_describe_every_parameter_and_action(installed: list[Path], agent: str) -> None:
    """From the package's agents. Both tools leave out meta-data and validate-all, which are no operations."""
    from lxml import etree

    meta = host(f"/usr/lib/ocf/resource.d/tandem/{agent}", "meta-data")
    root = etree.fromstring(meta.stdout.encode())
    params = [str(p.get("name")) for p in root.iter("parameter")]
    actions = {str(a.get("name")) for a in root.iter("action")} - {"meta-data", "validate-all"}
    assert len(params) > 5 and {"start", "stop", "monitor"} <= actions
    crm = host("crm", "ra", "info", f"ocf:tandem:{agent}")
    pcs = host("pcs", "resource", "describe", f"ocf:tandem:{agent}")
    for tool, done, param_at, action_at in (
        ("crm", crm, r"^{}\*? \(", r"^    {} "),  # crm marks a required parameter with *
        ("pcs", pcs, r"^  {}( \(required\))?:", r"^  {}:"),
    ):
        assert done.returncode == 0, f"{tool}: {done.stderr}"
        for name in params:
            assert re.search(param_at.format(re.escape(name)), done.stdout, re.MULTILINE), f"{tool}: {name}"
        for name in actions:
            assert re.search(action_at.format(re.escape(name)), done.stdout, re.MULTILINE), f"{tool}: {name}"


def test_status_and_can_migrate_while_the_vm_runs(vc: VmCluster) -> None:
    state = healthy(vc)
    source = vc.vm_node(state)
    target = vc.other(source)
    shown = tandem(vc, source, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["vms"] == [
        {
            "id": VM,
            "nodes": [source],
            "role": "Started",
            "failed": False,
            "allow_migrate": True,
            "drbd": ["r0"],
        }
    ]
    assert report["drbd"][0]["roles"] == {"node1": "Promoted", "node2": "Promoted"}
    for node in (source, target):  # from the source and from the target: the same answer
        answer = tandem(vc, node, "can-migrate", VM, target)
        assert answer.returncode == 0, answer.stdout + answer.stderr
        assert answer.stdout.startswith(f"yes: {VM} can live-migrate from {source} to {target}")
    no = tandem(vc, source, "can-migrate", VM, source)
    assert no.returncode == 1 and f"{VM} already runs on {source}" in no.stdout


def test_crm_resource_migrate_live_migrates_and_can_migrate_follows(vc: VmCluster) -> None:
    source = vc.vm_node(healthy(vc))
    target = vc.other(source)
    t0 = time.time()
    vc.lab.crm("resource", "migrate", VM, target)  # crmsh's alias of move
    vc.wait(lambda s: s.locations(VM) == {target}, f"vm1 started on {target}")
    record("crm resource migrate: until vm1 started on the target", time.time() - t0)
    assert qemu_processes(vc.lab) == [target]
    assert vc.lab.logs(f"{VM}_migrate_to_0"), "the move was not a live migration (no migrate_to)"
    back = tandem(vc, target, "can-migrate", "--json", VM, source)
    answer = json.loads(back.stdout)
    assert back.returncode == 0 and answer["source"] == target, answer
    assert any(n.startswith(f"cli-prefer-{VM}") for n in answer["notes"])
    vc.lab.crm("resource", "clear", VM)
    healthy(vc, "healthy after the migrate, its constraint cleared")


def test_drbd_link_cut_says_no_with_the_reason(vc: VmCluster) -> None:
    source = vc.vm_node(healthy(vc))
    target = vc.other(source)
    vc.emu_link(source, target, cut=True)
    try:

        def refused() -> str | None:
            answer = tandem(vc, source, "can-migrate", VM, target)
            said = answer.stdout if answer.returncode == 1 else ""
            return said if "connection to" in said and "fencing constraint" in said else None

        from lab.cluster import poll

        said = poll(refused, 60, "can-migrate to say no over a cut DRBD link", interval=1.0)
        assert said.startswith(f"no: {VM} cannot live-migrate to {target}")
        assert f"r0 connection to {target} is " in said  # the agent's own check, from the DRBD state
        assert "fencing constraint tandem-fence-r0 is in place" in said  # placed by tandem-fence-peer
        report = json.loads(tandem(vc, source, "status", "--json").stdout)
        assert [f["id"] for f in report["fencing_constraints"]] == ["tandem-fence-r0"]
        assert report["drbd"][0]["here"]["connections"][0]["connection"] != "Connected"
    finally:
        vc.emu_link(source, target, cut=False)
    healthy(vc, "healthy again after the DRBD link came back")
