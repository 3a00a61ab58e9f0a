# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:tandem:domain under Pacemaker in the 2-node lab, and the same scenarios with VirtualDomain
(ocf:heartbeat) and ocf:heartbeat:Xen, recording where they differ (docs/domain-vs-virtualdomain.md).

The cluster is lab.scenarios.VmCluster (emulated dual-primary DRBD r0 as drbd-r0-clone at promoted-max=2, a
real QEMU guest vm1 under each node's libvirtd, the README's order/colocation constraints) plus xvm: a Xen
domain under the fake xl (lab/bin on the daemons' PATH, one state for both nodes), on the same DRBD.
`crm resource move` and live migration of vm1 itself are covered by tests/lab/test_scenarios.py; here: that
the move ran migrate_to/migrate_from, start/stop, a migration refused for a Secondary target, libvirtd killed
under monitors, the utilization, and the Xen path. One cluster per agent family, about 2 x 150 s.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab.cluster import Lab, LabConfig, poll
from lab.guest import serial
from lab.libvirt import Libvirtd
from lab.netns import TOP
from lab.scenarios import CLONE, DOMAIN_XML, MINOR, VM, VmCluster, crm_block, healthy, qemu_processes
from lxml import etree

from tests.lab.conftest import record

XVM = "xvm"
XL_CFG = f"""name = "{XVM}"
memory = 128
vcpus = 1
disk = [ 'phy:/dev/drbd{MINOR},xvda,w' ]
tandem_fake_shutdown = "0.5"
tandem_fake_migrate_seconds = "0.5"
"""
FAMILIES = {
    "tandem": {
        "vm": "ocf:tandem:domain",
        "xen": "ocf:tandem:domain",
        "xen_params": "config={cfg} backend=xl",
    },
    "heartbeat": {
        "vm": "ocf:heartbeat:VirtualDomain",
        "xen": "ocf:heartbeat:Xen",
        "xen_params": "xmfile={cfg}",
    },
}


@dataclass
class Setup:
    family: str
    vc: VmCluster
    xl_dir: Path

    @property
    def lab(self) -> Lab:
        return self.vc.lab

    @property
    def tandem(self) -> bool:
        return self.family == "tandem"


def crm_config(family: str, cfg: Path) -> str:
    """The README's block with vm1's agent swapped, plus xvm on the same DRBD with the same constraints."""
    agents = FAMILIES[family]
    body = crm_block().replace("ocf:tandem:domain", agents["vm"]).replace("\ncommit\n", "\n")
    body += (
        f"primitive {XVM} {agents['xen']} params {agents['xen_params'].format(cfg=cfg)} "
        "meta allow-migrate=true op monitor interval=10s timeout=30s op start timeout=60s "
        "op stop timeout=60s op migrate_to timeout=60s op migrate_from timeout=60s\n"
        f"colocation {XVM}-with-drbd-r0 inf: {XVM} {CLONE}:Promoted\n"
        f"order drbd-r0-before-{XVM} Mandatory: {CLONE}:promote {XVM}:start\n"
        "commit\n"
    )
    return body


@pytest.fixture(scope="module", params=sorted(FAMILIES), ids=lambda f: f)
def setup(request: pytest.FixtureRequest, lab_defaults: LabConfig) -> Iterator[Setup]:
    family = request.param
    xl_dir = Path(f"/tmp/{lab_defaults.prefix}-domain-xl")
    subprocess.run(["rm", "-rf", str(xl_dir)], check=True)
    xl_dir.mkdir(parents=True)
    cfg = xl_dir / f"{XVM}.cfg"
    cfg.write_text(XL_CFG)
    path = f"{TOP / 'lab' / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    base = lab_defaults.with_hooks(env={"PATH": path, "TANDEM_XL_DIR": str(xl_dir)})
    work = Path(f"/tmp/{lab_defaults.prefix}-domain")
    with VmCluster.start(base, work, print, crm=crm_config(family, cfg)) as vc:
        vc.wait(lambda s: len(s.locations(XVM)) == 1, f"{XVM} started")
        record(f"test_domain_lab[{family}]: cluster with vm1 and xvm ready", time.monotonic() - vc.t0)
        yield Setup(family, vc, xl_dir)
    subprocess.run(["rm", "-rf", str(xl_dir), str(work)], check=False)


def where(s: Setup, rsc: str = VM) -> str:
    state = s.lab.state()
    assert state is not None
    nodes = sorted(state.locations(rsc))
    assert len(nodes) == 1, f"{rsc} active on {nodes}"
    return nodes[0]


def failures(s: Setup, rsc: str) -> list[str]:
    """Failed operations of `rsc` crm_mon shows (op key and exit reason)."""
    xml = s.lab.crm_mon_xml()
    assert xml is not None
    doc = etree.fromstring(xml.encode())
    return [
        f"{f.get('op_key')}: {f.get('exitstatus')}: {f.get('exitreason')}"
        for f in doc.iter("failure")
        if str(f.get("op_key", "")).startswith(f"{rsc}_")
    ]


def agent_argv(s: Setup, action: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """vm1's agent as pacemaker-execd runs it, with the lab's daemon environment."""
    agent = FAMILIES[s.family]["vm"].split(":")
    full = {
        **dict(s.vc.lab.config.env),
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE": VM,
        "OCF_RESKEY_config": DOMAIN_XML,
        "OCF_RESKEY_hypervisor": "qemu:///system",
        "OCF_RESKEY_migration_transport": "tcp",
        "OCF_RESKEY_CRM_meta_timeout": "120000",
        **env,
    }
    return [f"/usr/lib/ocf/resource.d/{agent[1]}/{agent[2]}", action], full


def agent_in_node(s: Setup, node: str, action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv, full = agent_argv(s, action, env)
    return s.lab.node(node).run(argv, env=full, check=False, timeout=150)


def agent_spawned(s: Setup, node: str, action: str, env: dict[str, str]) -> int:
    """vm1's agent started detached in the node (its children may outlive it); returns its node-local pid."""
    argv, full = agent_argv(s, action, env)
    return s.lab.node(node).spawn(argv, log=f"/var/log/pacemaker/{VM}-{action}.log", env=full)


def fake_xl_domains(s: Setup) -> dict[str, list[str]]:
    state = json.loads((s.xl_dir / "state.json").read_text())
    return {node: sorted(v["domains"]) for node, v in state["nodes"].items()}


def test_move_runs_migrate_to_and_migrate_from(setup: Setup) -> None:
    s = setup
    source = where(s)
    target = s.vc.other(source)
    boots = serial.parse(serial.read(s.vc.serial)).boots
    size = serial.size(s.vc.serial)
    t0 = time.monotonic()
    s.lab.crm("resource", "move", VM, target)
    try:
        s.vc.wait(lambda st: st.locations(VM) == {target}, f"{VM} on {target}")
        record(f"[{s.family}] crm resource move {VM}: to started on the target", time.monotonic() - t0)
    finally:
        s.lab.crm("resource", "clear", VM)
    serial.wait_for(s.vc.serial, r"alive t=\d+", after=size, timeout=60)
    assert serial.parse(serial.read(s.vc.serial)).boots == boots  # moved live, never restarted
    for op in ("migrate_to", "migrate_from"):
        results = s.lab.logs(f"Result of {op} operation for {VM} ")
        assert results and ": ok |" in results[-1], (op, results[-3:])
    assert failures(s, VM) == []


def test_stop_is_graceful_and_start_is_transient(setup: Setup) -> None:
    s = setup
    node = where(s)
    before = serial.parse(serial.read(s.vc.serial))
    s.lab.crm("resource", "stop", VM)
    try:
        s.vc.wait(lambda st: not st.locations(VM), f"{VM} stopped")
        after = serial.parse(serial.read(s.vc.serial))
        assert after.poweroffs == before.poweroffs + 1  # the guest saw the power button: a graceful stop
    finally:
        s.lab.crm("resource", "start", VM)
    s.vc.wait(lambda st: len(st.locations(VM)) == 1, f"{VM} started again")
    s.vc.wait_guest_running(after=0)
    for lv in (Libvirtd(n) for n in s.lab.nodes):  # one query: a domain starting meanwhile cannot confuse it
        persistent = lv.virsh("list", "--all", "--persistent", "--name").stdout.split()
        assert persistent == [], f"a persistent definition left on {lv.node.name}: {persistent}"
    print(f"[{s.family}] graceful stop on {node}; no persistent definitions")


def test_migration_to_a_secondary_target(setup: Setup) -> None:
    """promoted-max=1 demotes the node without vm1; a migrate_to there must refuse (tandem) — VirtualDomain,
    which checks nothing, migrates onto the Secondary (recorded), and is migrated back by hand."""
    s = setup
    source = where(s)
    target = s.vc.other(source)
    s.lab.crm("resource", "stop", XVM)  # xvm may run on the other node: then that one would stay promoted
    s.vc.wait(lambda st: not st.locations(XVM), f"{XVM} stopped")
    s.lab.crm("resource", "meta", CLONE, "set", "promoted-max", "1")
    try:
        s.vc.wait(
            lambda st: st.roles(CLONE).get(target) == "Unpromoted",
            f"{CLONE} demoted on {target}",
        )
        meta = {"OCF_RESKEY_CRM_meta_migrate_source": source, "OCF_RESKEY_CRM_meta_migrate_target": target}
        run = agent_in_node(s, source, "migrate_to", meta)
        if s.tandem:
            assert run.returncode == 1, run.stderr
            assert (
                f"ocf-exit-reason:migration of {VM} to {target} refused: r0 is Secondary on {target}"
                in run.stderr
            )
            assert Libvirtd(s.lab.node(source)).domstate(VM) == "running"
        else:
            print(f"[heartbeat] VirtualDomain migrate_to onto a Secondary target: rc {run.returncode}")
            if run.returncode == 0:  # it went; bring it back where Pacemaker has it
                back = {
                    "OCF_RESKEY_CRM_meta_migrate_source": target,
                    "OCF_RESKEY_CRM_meta_migrate_target": source,
                }
                assert agent_in_node(s, target, "migrate_to", back).returncode == 0
            assert Libvirtd(s.lab.node(source)).domstate(VM) == "running"
    finally:
        s.lab.crm("resource", "meta", CLONE, "set", "promoted-max", "2")
        s.lab.crm("resource", "start", XVM)
    s.vc.wait(
        lambda st: (
            sorted(st.roles(CLONE).values()) == ["Promoted", "Promoted"] and len(st.locations(XVM)) == 1
        ),
        f"{CLONE} promoted twice and {XVM} started again",
    )
    assert where(s) == source


def test_libvirtd_killed_under_monitors(setup: Setup) -> None:
    """libvirtd dies on vm1's node for three monitor intervals: the domain must not be read as stopped."""
    s = setup
    node = where(s)
    lv = Libvirtd(s.lab.node(node))
    pid = lv.pid()
    assert pid is not None
    size = serial.size(s.vc.serial)
    s.lab.node(node).run(["kill", "-KILL", str(pid)])
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            state = s.lab.state()
            assert state is not None and state.locations(VM) == {node}, s.lab.status_text()
            time.sleep(1)
        seen = failures(s, VM)
        print(f"[{s.family}] vm1 monitors while libvirtd was dead: {seen or 'all 0'}")
        if s.tandem:  # degraded (190), with the reason: shown by crm_mon, no recovery
            assert seen and all(": OCF_DEGRADED: " in f and "libvirt unreachable" in f for f in seen), seen
        else:
            assert seen == [], seen
    finally:
        lv.start()
    assert serial.parse(serial.read(s.vc.serial)[size:]).boots == 0  # never restarted
    assert where(s) == node
    s.lab.crm("resource", "cleanup", VM)
    s.vc.wait(lambda st: not failures(s, VM), "vm1's degraded monitors cleaned up")


def test_utilization(setup: Setup) -> None:
    s = setup
    xml = s.lab.cibadmin("--query", "--scope", "resources")
    prim = etree.fromstring(xml.encode()).find(f".//primitive[@id='{VM}']")
    assert prim is not None
    util = {nv.get("name"): nv.get("value") for nv in prim.iterfind("utilization/nvpair")}
    print(f"[{s.family}] vm1 utilization in the CIB: {util}")
    assert util.get("cpu") == "1" and util.get("hv_memory")
    if s.tandem:
        writes = [line for line in s.lab.logs("utilization set") if f"({VM})" in line]
        monitors = s.lab.logs(f"Result of monitor operation for {VM}")
        assert writes and len(writes) <= 6  # once per start/migration, not once per monitor
        assert monitors  # monitors ran meanwhile, and wrote nothing


def test_xen_path_under_the_fake_xl(setup: Setup) -> None:
    s = setup
    source = where(s, XVM)
    target = s.vc.other(source)
    assert XVM in fake_xl_domains(s)[source]
    s.lab.crm("resource", "move", XVM, target)
    try:
        s.vc.wait(lambda st: st.locations(XVM) == {target}, f"{XVM} on {target}")
    finally:
        s.lab.crm("resource", "clear", XVM)
    domains = fake_xl_domains(s)
    assert XVM in domains[target] and XVM not in domains.get(source, [])
    migrated = [line for line in s.lab.logs("Result of migrate_from operation") if XVM in line]
    print(f"[{s.family}] {XVM} moved by: {migrated[-1:] or 'stop/start'}")
    assert migrated, "the move was not a migration"
    assert failures(s, XVM) == []
    # a broken toolstack under monitors: tandem reports "cannot tell" (a failure), never "stopped"
    if s.tandem:
        (s.xl_dir / f"{target}.broken").write_text("")
        try:
            s.vc.wait(lambda st: failures(s, XVM) != [], f"{XVM} monitor failure with xl broken", timeout=60)
            assert any("cannot tell" in f for f in failures(s, XVM)), failures(s, XVM)
        finally:
            (s.xl_dir / f"{target}.broken").unlink()
            s.lab.crm("resource", "cleanup", XVM)
        s.vc.wait(lambda st: len(st.locations(XVM)) == 1 and not failures(s, XVM), f"{XVM} healthy again")


def test_start_on_the_peer_while_it_runs(setup: Setup) -> None:
    """A start where the domain already runs on the DRBD peer (a double start, RA#856's outcome)."""
    s = setup
    node = where(s)
    other = s.vc.other(node)
    run = agent_in_node(s, other, "start", {})
    second = Libvirtd(s.lab.node(other))
    if s.tandem:
        assert run.returncode == 1, run.stderr
        assert f"ocf-exit-reason:{VM} is running" in run.stderr and f"on {node}: refusing" in run.stderr
        assert VM not in second.domains()
        # it asked Pacemaker to probe vm1 on `node`: its record there is renewed (briefly absent)
        s.vc.wait(lambda st: st.locations(VM) == {node}, f"{VM} probed again on {node}", timeout=60)
    else:
        print(
            f"[heartbeat] VirtualDomain start while vm1 runs on {node}: rc {run.returncode}, "
            f"{other} now runs {second.domains()}"
        )
        second.virsh("destroy", VM, check=False)  # the second copy, before it writes
    assert where(s) == node


def test_a_copy_pacemaker_does_not_know_is_found_not_doubled(setup: Setup) -> None:
    """tandem-17903: Pacemaker lost a partial migration, so vm1 ran on a node where its record said stopped,
    and it started vm1 on the other. Made here on purpose: vm1 stopped by Pacemaker, started by hand on a node
    that a ban keeps it from, then started by Pacemaker (on the other node). tandem's start migrates the
    copy over live: one copy, where Pacemaker wants it, no restart, no failure (ef97c23 refused and had
    the copy found and stopped; before, it ran on unwatched while crm_mon said Stopped). VirtualDomain starts
    a second copy."""
    s = setup
    node = where(s)
    other = s.vc.other(node)
    s.lab.crm("resource", "stop", VM)
    s.vc.wait(lambda st: not st.locations(VM), f"{VM} stopped")
    poll(lambda: not qemu_processes(s.lab) or None, 60, "no QEMU of vm1")
    by_hand = Libvirtd(s.lab.node(node))
    size = serial.size(s.vc.serial)
    by_hand.create((s.lab.node(node).dir / "libvirt" / "etc" / "tandem" / f"{VM}.xml").read_text())
    s.vc.wait_guest_running(after=size)
    boots = serial.parse(serial.read(s.vc.serial)).boots
    s.lab.crm("resource", "ban", VM, node)
    try:
        s.lab.crm("resource", "start", VM)
        if s.tandem:
            s.vc.wait(lambda st: st.locations(VM) == {other}, f"{VM} started on {other}", timeout=60)
            poll(lambda: qemu_processes(s.lab) == [other] or None, 30, f"one QEMU, on {other}")
            assert failures(s, VM) == []
            assert serial.parse(serial.read(s.vc.serial)).boots == boots  # moved live, not restarted
        else:
            s.vc.wait(lambda st: st.locations(VM) == {other}, f"{VM} started on {other}", timeout=60)
            copies = sorted(qemu_processes(s.lab))
            print(f"[heartbeat] VirtualDomain started {VM} on {other}, running on {node}: QEMU on {copies}")
            by_hand.virsh("destroy", VM, check=False)  # the unmanaged copy
    finally:
        s.lab.crm("resource", "clear", VM)
        s.lab.crm("resource", "cleanup", VM)
    s.vc.wait(lambda st: len(st.locations(VM)) == 1 and not failures(s, VM), f"{VM} healthy", timeout=90)
    assert len(qemu_processes(s.lab)) == 1


def move(s: Setup, to: str) -> None:
    s.lab.crm("resource", "move", VM, to)
    s.vc.wait(lambda st: st.locations(VM) == {to}, f"{VM} moved to {to}")
    s.lab.crm("resource", "clear", VM)


def test_a_migration_cut_short_where_an_old_migrate_from_is_left(setup: Setup) -> None:
    """tandem-17903, made deterministic. vm1 moves to B and back, which leaves a migrate_from (source A) in
    B's history; then it migrates to B again and B's cluster stack is stopped during migrate_to. Pacemaker
    2.1.5 pairs the new migrate_to with the old migrate_from, takes vm1 as stopped on B and starts it on A
    (docs/campaign/evidence/tandem-17903-*). tandem's start brings it back from B live: one copy, no
    restart, B's stop goes through. VirtualDomain starts a second copy on A."""
    from lab.campaign.nemesis import Nemesis
    from lab.campaign.schedule import Event

    s = setup
    a = where(s)
    b = s.vc.other(a)
    for to in (b, a):
        move(s, to)
    poll(lambda: qemu_processes(s.lab) == [a] or None, 30, f"one QEMU, on {a}")
    boots = serial.parse(serial.read(s.vc.serial)).boots
    nemesis = Nemesis(s.vc)
    cut = Event(at=0.0, kind="stop-start", role="other", hold=0.0, during="migrate_to")
    hit = nemesis.inject(cut)
    assert (hit.node, hit.note) == (b, "")
    try:
        if s.tandem:
            s.vc.wait(lambda st: st.locations(VM) == {a}, f"{VM} back on {a}", timeout=90)
            poll(lambda: not s.lab.node(b).is_on() or None, 120, f"{b} stopped")
            assert qemu_processes(s.lab) == [a]
            assert serial.parse(serial.read(s.vc.serial)).boots == boots  # never restarted
            assert failures(s, VM) == []
        else:
            poll(lambda: len(qemu_processes(s.lab)) == 2 or None, 60, "a second QEMU")
            copies = sorted(qemu_processes(s.lab))
            print(f"[heartbeat] migration to {b} cut short by its stop: QEMU on {copies}")
            if s.lab.node(b).is_on():  # the copy Pacemaker lost, before both write on
                Libvirtd(s.lab.node(b)).virsh("destroy", VM, check=False)
    finally:
        nemesis.undo(cut, b)
        s.lab.crm("resource", "clear", VM)
        s.lab.wait_online(timeout=120)
        s.lab.crm("resource", "cleanup")
    healthy(s.vc, "DRBD connected and UpToDate again, vm1 running", timeout=120)
    assert not failures(s, VM)
    poll(lambda: len(qemu_processes(s.lab)) == 1 or None, 60, "one QEMU")


def test_migration_outliving_its_timeout_is_aborted(setup: Setup) -> None:
    """migrate_to at 1 MiB/s (the guest dirties pages faster: it never converges) with a 15 s timeout."""
    s = setup
    node = where(s)
    source = Libvirtd(s.lab.node(node))
    meta = {
        "OCF_RESKEY_CRM_meta_migrate_source": node,
        "OCF_RESKEY_CRM_meta_migrate_target": s.vc.other(node),
        "OCF_RESKEY_CRM_meta_timeout": "15000",
        "OCF_RESKEY_migration_speed": "1",
    }
    if s.tandem:  # it cancels the job itself and says so
        run = agent_in_node(s, node, "migrate_to", meta)
        assert run.returncode == 1, run.stderr
        assert "did not finish" in run.stderr and "aborted" in run.stderr
    else:  # VirtualDomain has no limit of its own: killed at the timeout, as by Pacemaker; its job goes on
        pid = agent_spawned(s, node, "migrate_to", meta)
        time.sleep(15)
        s.lab.node(node).run(["kill", "-KILL", str(pid)], check=False)
        job = source.virsh("domjobinfo", VM).stdout
        print(f"[heartbeat] after VirtualDomain's migrate_to was killed: {job.splitlines()[:2]}")
        assert "Outgoing migration" in job
        source.virsh("domjobabort", VM)
    assert source.domstate(VM) == "running"
    target = Libvirtd(s.lab.node(s.vc.other(node)))
    poll(lambda: VM not in target.domains() or None, 60, "the target to drop its incoming copy")
    assert where(s) == node and failures(s, VM) == []
