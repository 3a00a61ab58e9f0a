# SPDX-License-Identifier: GPL-2.0-or-later
"""Real fake-binary processes: the emulator's drbdadm/drbdsetup on 2 and 3 nodes (TANDEM_EMU_NODE), both
modes, and Debian's ocf:linbit:drbd run unchanged against them (start, promote, monitor, demote, stop).

Each emulated node is a private mount namespace (`unshare -m`, entered with nsenter) so /dev/drbdN exists per
node, as in a lab node. Cost: about 20 s on 2 cores (the RA alone takes ~1 s per action).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.drbd_emu import engine
from lab.drbd_emu.devices import detach_loops
from lab.drbd_emu.install import build_shim, fakes_dir

from tandem.drbd.model import ConnState, DiskState, ReplState, Role

RA = Path("/usr/lib/ocf/resource.d/linbit/drbd")
MINOR_BASE = (
    9150 + (os.getpid() % 40) * 3
)  # unique per test run: /dev/drbdN placeholders live in the host /dev

CRM_MASTER = """#!/bin/sh
# fake crm_master for agent tests: keeps the promotion score in a file per node
f="$TANDEM_EMU_DIR/score.$TANDEM_EMU_NODE"
case " $* " in
  *" -D "*) rm -f "$f" ;;
  *" -G "*) [ -f "$f" ] && cat "$f" || exit 6 ;;
  *" -v "*) v=$(echo "$*" | sed -n 's/.*-v \\([-0-9A-Z]*\\).*/\\1/p'); echo "$v" > "$f" ;;
esac
exit 0
"""


def conf_text(
    nodes: list[str],
    minor: int,
    *,
    fencing: str = "resource-only",
    two_primaries: bool = False,
    quorum: str = "off",
    handlers: str = "",
    net: str = "10.99.0",
) -> str:
    hosts = "\n".join(f"  on {n} {{ node-id {i}; address {net}.{i + 1}:7789; }}" for i, n in enumerate(nodes))
    return f"""# emulator test config
global {{ usage-count no; }}
resource r0 {{
  net {{ protocol C; fencing {fencing}; allow-two-primaries {"yes" if two_primaries else "no"}; }}
  options {{ quorum {quorum}; on-no-quorum suspend-io; }}
  handlers {{ {handlers} }}
  volume 0 {{ device /dev/drbd{minor}; disk /dev/emu/r0-0; meta-disk internal; }}
{hosts}
}}
"""


class Cluster:
    """Fake nodes sharing one emulator directory. After `start_namespaces` each has its own mount namespace
    with its emulator kernel in it, serving the node's data plane (its own copy behind /dev/drbdN)."""

    def __init__(self, tmp: Path, nodes: list[str], mode: str = "9", **conf: object) -> None:
        self.dir = tmp / "emu"
        self.conf = tmp / "drbd.conf"
        self.minor = MINOR_BASE
        self.conf.write_text(conf_text(nodes, self.minor, **conf))  # type: ignore[arg-type]
        self.sbin = tmp / "sbin"
        self.sbin.mkdir()
        (self.sbin / "crm_master").write_text(CRM_MASTER)
        (self.sbin / "crm_master").chmod(0o755)
        self.nodes = nodes
        self.holders: dict[str, subprocess.Popen[bytes]] = {}
        self.kernels: dict[str, subprocess.Popen[bytes]] = {}
        self.shim = build_shim(self.dir)
        self.emu(nodes[0], "init", "--mode", mode)

    def start_namespaces(self) -> None:
        for n in self.nodes:
            self.holders[n] = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sleep", "3600"], stdin=subprocess.DEVNULL
            )
        time.sleep(0.2)
        for n in self.nodes:
            self.kernels[n] = self.start_kernel(n)

    def env(self, node: str) -> dict[str, str]:
        return {
            "PATH": f"{fakes_dir()}:/usr/sbin:/usr/bin:/sbin:/bin",
            "TANDEM_EMU_NODE": node,
            "TANDEM_EMU_DIR": str(self.dir),
            "TANDEM_EMU_CONF": str(self.conf),
            "TANDEM_EMU_DEVICES": "bind" if self.holders else "",
            "TANDEM_EMU_PROC_DRBD": str(self.dir / "nodes" / node / "proc_drbd"),
            "LD_PRELOAD": str(self.shim),
            "HA_SBIN_DIR": str(self.sbin),
            "HOSTNAME": node,
        }

    def run(
        self, node: str, *argv: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        prefix = ["nsenter", "-t", str(self.holders[node].pid), "-m", "--"] if node in self.holders else []
        return subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            env={**self.env(node), **(env or {})},
            timeout=timeout,
        )

    def adm(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(node, "drbdadm", *args)

    def setup(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(node, "drbdsetup", *args)

    def emu(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(node, str(fakes_dir() / "drbd-emu"), *args)

    def status(self, node: str):
        from tandem.drbd.parse import parse

        out = self.setup(node, "status", "r0", "--json")
        assert out.returncode == 0, out.stderr
        return parse(out.stdout).resources[0]

    def wait(self, pred, timeout: float = 30.0) -> None:
        end = time.time() + timeout
        while not pred():
            assert time.time() < end, "condition not reached in time"
            time.sleep(0.2)

    def start_kernel(self, node: str) -> subprocess.Popen[bytes]:
        """The node's emulator kernel (runs its handlers, and the data plane in a node's namespace); returns
        once it has reset the node's state."""
        prefix = ["nsenter", "-t", str(self.holders[node].pid), "-m", "--"] if node in self.holders else []
        kern = subprocess.Popen([*prefix, str(fakes_dir() / "drbd-emu"), "kernel"], env=self.env(node))
        state = self.dir / "state.json"
        try:
            self.wait(lambda: json.loads(state.read_text()).get("kernels", {}).get(node) == kern.pid)
        except BaseException:
            kern.kill()
            kern.wait()
            raise
        return kern

    def close(self) -> None:
        for n in self.nodes:
            if n in self.holders:
                self.run(n, "drbdadm", "down", "r0")
        for p in [*self.kernels.values(), *self.holders.values()]:
            p.kill()
            p.wait()
        detach_loops(self.dir)
        Path(f"/dev/drbd{self.minor}").unlink(missing_ok=True)


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, ["alice", "bob"])
    yield c
    c.close()


def up_all(c: Cluster) -> None:
    for n in c.nodes:
        r = c.adm(n, "up", "r0")
        assert r.returncode == 0, r.stderr


def test_first_promotion_needs_force_then_full_sync(two: Cluster) -> None:
    """UG9 "Initial device synchronization": fresh disks are Inconsistent, `primary` is refused (exit 17,
    drbdsetup.c SS_NO_UP_TO_DATE_DISK), `primary --force` starts the full sync to the peer."""
    up_all(two)
    r = two.adm("alice", "primary", "r0")
    assert r.returncode == 17
    assert "State change failed: (-2) Need access to UpToDate data" in r.stderr
    assert two.adm("alice", "primary", "--force", "r0").returncode == 0
    two.wait(lambda: two.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    a = two.status("alice")
    assert a.role is Role.PRIMARY and a.connections[0].peer_role is Role.SECONDARY


def test_second_primary_refused_unless_allowed(tmp_path: Path) -> None:
    """drbd.conf(5) allow-two-primaries: without it the second `primary` fails with
    "(-1) Multiple primaries not allowed by config", exit 11; `net-options --allow-two-primaries=yes` on both
    sides (UG9 drbd-dualprimary, temporary dual-primary for live migration) lets it through."""
    c = Cluster(tmp_path, ["alice", "bob"])
    try:
        up_all(c)
        c.adm("alice", "primary", "--force", "r0")
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        r = c.adm("bob", "primary", "r0")
        assert r.returncode == 11 and "(-1) Multiple primaries not allowed by config" in r.stderr
        for n in c.nodes:
            assert c.adm(n, "net-options", "--allow-two-primaries=yes", "r0").returncode == 0
        assert c.adm("bob", "primary", "r0").returncode == 0
        assert c.status("alice").connections[0].peer_role is Role.PRIMARY
    finally:
        c.close()


def test_writes_replicate_and_split_brain_is_detected(two: Cluster) -> None:
    """Generation counter: a write on the Primary reaches the connected peer. Both nodes Primary and writing
    while disconnected → on reconnect "Split-Brain detected, dropping connection!" (UG9 "Split brain"):
    both StandAlone. `connect --discard-my-data` on the victim resyncs it; its writes are lost (counted)."""
    up_all(two)
    two.adm("alice", "primary", "--force", "r0")
    two.wait(lambda: two.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    w = json.loads(two.emu("alice", "write", "r0").stdout)
    assert json.loads(two.emu("bob", "data", "r0").stdout)["tag"] == w["tag"]
    two.emu("alice", "cut", "alice", "bob")
    two.wait(lambda: two.status("alice").connections[0].connection is ConnState.CONNECTING)
    assert two.adm("bob", "primary", "--force", "r0").returncode == 0
    two.emu("alice", "write", "r0")
    two.emu("bob", "write", "r0", "0", "3")
    two.emu("alice", "heal", "alice", "bob")
    two.wait(lambda: two.status("alice").connections[0].connection is ConnState.STANDALONE)
    assert two.status("bob").connections[0].connection is ConnState.STANDALONE
    assert two.adm("bob", "secondary", "r0").returncode == 0
    assert two.adm("bob", "connect", "--discard-my-data", "r0").returncode == 0
    assert two.adm("alice", "connect", "r0").returncode == 0
    two.wait(lambda: two.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    a, b = (json.loads(two.emu(n, "data", "r0").stdout) for n in ("alice", "bob"))
    assert a["tag"] == b["tag"] and b["lost"] == 3


def test_resync_progress_after_reconnect(tmp_path: Path) -> None:
    """Writes while disconnected are resynced on reconnect: SyncSource/SyncTarget with a growing `done:`
    (drbdsetup status), the target Inconsistent until the end (UG9 "Resynchronization")."""
    c = Cluster(tmp_path, ["alice", "bob"])
    try:
        up_all(c)
        c.adm("alice", "primary", "--force", "r0")
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        c.emu("alice", "cut", "alice", "bob")
        c.emu("alice", "write", "r0", "0", "64")
        c.emu("alice", "slow-resync", "64")  # KiB/s: 256 KiB take 4 s
        c.emu("alice", "heal", "alice", "bob")
        pd = c.status("alice").connections[0].peer_devices[0]
        assert pd.replication is ReplState.SYNC_SOURCE and pd.peer_disk is DiskState.INCONSISTENT
        assert c.status("bob").devices[0].disk is DiskState.INCONSISTENT
        c.emu("alice", "slow-resync", "off")
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    finally:
        c.close()


def test_three_nodes_quorum(tmp_path: Path) -> None:
    """DRBD 9 quorum majority (UG9 "Quorum"): a node cut off from both peers loses quorum (status `quorum:no`)
    and can not be promoted ("(-25) No quorum"); the other two keep it."""
    c = Cluster(tmp_path, ["alice", "bob", "carol"], quorum="majority", fencing="dont-care")
    try:
        up_all(c)
        c.adm("alice", "primary", "--force", "r0")
        c.wait(lambda: all(c.status(n).devices[0].disk is DiskState.UP_TO_DATE for n in ("bob", "carol")))
        c.adm("alice", "secondary", "r0")
        c.emu("alice", "cut", "carol", "alice")
        c.emu("alice", "cut", "carol", "bob")
        c.wait(lambda: c.status("carol").devices[0].quorum is False)
        r = c.adm("carol", "primary", "r0")
        assert r.returncode == 11 and "No quorum" in r.stderr
        assert c.status("bob").devices[0].quorum is not False
        assert c.adm("bob", "primary", "r0").returncode == 0
    finally:
        c.close()


def test_84_mode_outputs(tmp_path: Path) -> None:
    """DRBD 8.4 mode: `drbdadm role` prints Local/Peer, /proc/drbd lists the minor (UG8.4 administration),
    `drbdsetup sh-status` gives the RA's shell variables, and `drbdadm --version` says 8.4."""
    c = Cluster(tmp_path, ["alice", "bob"], mode="8.4")
    try:
        up_all(c)
        c.adm("alice", "primary", "--force", "r0")
        assert c.adm("alice", "role", "r0").stdout == "Primary/Secondary\n"
        proc = c.run("alice", "cat", "/proc/drbd").stdout
        assert proc.startswith("version: 8.4.11 (api:1/proto:86-101)\n")
        assert f"{c.minor}: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----" in proc
        sh = c.setup("bob", "sh-status", "r0").stdout
        assert "_role=Secondary" in sh and "_peer=Primary" in sh
        assert "DRBD_KERNEL_VERSION_CODE=0x08040b" in c.adm("alice", "--version").stdout
        from tandem.drbd.parse import parse

        assert parse(proc).resources[0].role is Role.PRIMARY
    finally:
        c.close()


def test_fence_peer_handler_env_and_exit_code(tmp_path: Path) -> None:
    """fencing resource-only: a Primary losing its peer calls fence-peer with DRBD's environment
    (DK drbd_nl.c drbd_khelper: DRBD_RESOURCE, DRBD_PEER_NODE_ID, DRBD_MINOR_<vol>, UP_TO_DATE_NODES...)
    and exit 4 marks the peer Outdated (DK conn_try_outdate_peer)."""
    envfile = tmp_path / "fence.env"
    handler = f'fence-peer "env > {envfile}; exit 4";'
    c = Cluster(tmp_path, ["alice", "bob"], handlers=handler)
    kern = c.start_kernel("alice")
    try:
        up_all(c)
        c.adm("alice", "primary", "--force", "r0")
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        c.emu("alice", "cut", "alice", "bob")
        c.wait(lambda: c.status("alice").connections[0].peer_devices[0].peer_disk is DiskState.OUTDATED)
        env = dict(line.split("=", 1) for line in envfile.read_text().splitlines() if "=" in line)
        assert env["DRBD_RESOURCE"] == "r0" and env["DRBD_PEER_NODE_ID"] == "1"
        assert env["DRBD_MINOR_0"] == str(c.minor) and env["UP_TO_DATE_NODES"] == "0x00000001"
        assert env["DRBD_NODE_ID_1"] == "bob" and env["DRBD_MY_NODE_ID"] == "0"
    finally:
        kern.kill()
        kern.wait()
        c.close()


@pytest.mark.skipif(not RA.exists(), reason="drbd-utils not installed (run ./run setup)")
@pytest.mark.parametrize("mode", ["9", "8.4"])
def test_anchor_ra_lifecycle(tmp_path: Path, mode: str) -> None:
    """ocf:linbit:drbd (Debian drbd-utils 9.22), unchanged: start on both nodes (0), promote one (0), monitor
    8 on the Primary and 0 on the Secondary with promotion score 10000, demote, stop (RA §1.2-1.5). In 8.4
    mode the RA takes its 8.x paths: `drbdadm attach`, `drbdsetup wait-connect /dev/drbdN`, `sh-status`."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.fail("the agent tier needs root and unshare (CI runs as root)")
    c = Cluster(tmp_path, ["alice", "bob"], mode=mode)
    c.start_namespaces()
    try:
        for n in c.nodes:
            c.emu(n, "proc")
        c.adm("alice", "up", "r0")
        c.adm("bob", "up", "r0")
        c.adm("alice", "primary", "--force", "r0")
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        c.adm("alice", "down", "r0")
        c.adm("bob", "down", "r0")
        ocf = {
            "OCF_ROOT": "/usr/lib/ocf",
            "OCF_RESOURCE_INSTANCE": "drbd_r0",
            "OCF_RESKEY_drbd_resource": "r0",
            "OCF_RESKEY_drbdconf": str(c.conf),
            "OCF_RESKEY_CRM_meta_notify": "true",
            "OCF_RESKEY_CRM_meta_clone_max": "2",
            "OCF_RESKEY_CRM_meta_clone_node_max": "1",
            "OCF_RESKEY_CRM_meta_master_max": "1",
            "OCF_RESKEY_CRM_meta_master_node_max": "1",
            "OCF_RESKEY_CRM_meta_timeout": "20000",
            "TANDEM_EMU_TRACE": str(tmp_path / "calls"),
        }

        def ra(node: str, action: str, **extra: str) -> int:
            r = c.run(node, str(RA), action, env={**ocf, **extra})
            return r.returncode

        assert ra("alice", "monitor", OCF_RESKEY_CRM_meta_interval="0") == 7  # probe: not running
        assert ra("alice", "start") == 0
        assert ra("bob", "start") == 0
        assert c.run("alice", "test", "-b", f"/dev/drbd{c.minor}").returncode == 0
        assert ra("alice", "promote") == 0
        assert ra("alice", "monitor", OCF_RESKEY_CRM_meta_interval="10000") == 8
        assert ra("bob", "monitor", OCF_RESKEY_CRM_meta_interval="20000") == 0
        assert (c.dir / "score.bob").read_text().strip() == "10000"
        assert ra("alice", "demote") == 0
        assert ra("alice", "monitor", OCF_RESKEY_CRM_meta_interval="20000") == 0
        assert ra("alice", "stop") == 0
        assert ra("bob", "stop") == 0
        assert ra("alice", "monitor", OCF_RESKEY_CRM_meta_interval="0") == 7
        assert c.run("alice", "test", "-b", f"/dev/drbd{c.minor}").returncode != 0
        calls = (tmp_path / "calls").read_text()
        if mode == "8.4":
            assert "drbdsetup sh-status r0" in calls and f"wait-connect /dev/drbd{c.minor}" in calls
        else:
            assert "drbdsetup events2 --now r0" in calls and "drbdsetup wait-connect-resource r0" in calls
    finally:
        c.close()


def test_device_held_open_by_a_process_blocks_secondary(tmp_path: Path) -> None:
    """drbd_strings SS_DEVICE_IN_USE: `secondary` (and `down`) fail with "(-12) Device is held open by
    someone" while a process of the node (a VM) has /dev/drbdN open; fine once it closed it."""
    if os.geteuid() != 0:
        pytest.fail("the agent tier needs root (mount namespaces)")
    c = Cluster(tmp_path, ["alice", "bob"])
    c.start_namespaces()
    try:
        up_all(c)
        c.adm("alice", "primary", "--force", "r0")
        holder = subprocess.Popen(
            [
                "nsenter",
                "-t",
                str(c.holders["alice"].pid),
                "-m",
                "--",
                "sh",
                "-c",
                f"exec 3</dev/drbd{c.minor}; exec sleep 60",
            ]
        )
        try:
            c.wait(lambda: c.status("alice").devices[0].disk is DiskState.UP_TO_DATE)
            time.sleep(0.3)
            r = c.adm("alice", "secondary", "r0")
            assert r.returncode == 11 and "(-12) Device is held open by someone" in r.stderr
            assert c.adm("alice", "down", "r0").returncode == 11
        finally:
            holder.kill()
            holder.wait()
        assert c.adm("alice", "secondary", "r0").returncode == 0
    finally:
        c.close()


def test_hanging_then_failing_fence_handler_keeps_io_frozen(tmp_path: Path) -> None:
    """fencing resource-and-stonith (UG9 drbd-pacemaker, DK conn_try_outdate_peer): I/O is suspended
    (`suspended:fencing`) while fence-peer runs; a hanging handler keeps it frozen; a handler returning 1 is
    "helper broken", I/O stays frozen; one returning 7 (peer STONITHed) outdates the peer and resumes I/O."""
    c = Cluster(tmp_path, ["alice", "bob"], fencing="resource-and-stonith", handlers='fence-peer "exit 7";')
    kern = c.start_kernel("alice")
    try:
        up_all(c)
        c.adm("alice", "primary", "--force", "r0")
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        c.emu("alice", "handler", "alice", "fence-peer", "hang")
        c.emu("alice", "cut", "alice", "bob")
        c.wait(lambda: c.status("alice").suspended == ("fencing",))
        w = c.emu("alice", "write", "r0")
        assert w.returncode == 1 and "I/O suspended (fencing)" in w.stderr
        c.emu("alice", "handler", "alice", "fence-peer", "fail", "1")  # the hung call now returns 1
        c.wait(lambda: "alice r0: fence-peer helper broken, returned 1" in c.emu("alice", "state").stdout)
        assert c.status("alice").suspended == ("fencing",)
        c.emu("alice", "handler", "alice", "fence-peer", "ok")
        assert c.adm("alice", "resume-io", "r0").returncode == 0  # drbdsetup resume-io: the admin's way out
        assert c.status("alice").suspended == ()
        c.emu("alice", "heal", "alice", "bob")
        c.wait(lambda: c.status("alice").connections[0].connection is ConnState.CONNECTED)
        c.emu("alice", "cut", "alice", "bob")  # this time the handler runs: exit 7
        c.wait(lambda: c.status("alice").connections[0].peer_devices[0].peer_disk is DiskState.OUTDATED)
        assert c.status("alice").suspended == ()
    finally:
        kern.kill()
        kern.wait()
        c.close()


def test_a_node_whose_kernel_dies_loses_its_drbd(tmp_path: Path) -> None:
    """Power loss: the node's emulator kernel (its DRBD) dies with it, so its peer's kernel tears the node's
    state down at once. The peer sees the connection lost, not a clean disconnect, so the Primary calls
    fence-peer (DK conn_try_outdate_peer; exit 4 marks the peer Outdated). The node comes back from "down"
    (DRBD does not bring itself up at boot) and, once up again, resyncs from the Primary."""
    c = Cluster(tmp_path, ["alice", "bob"], handlers='fence-peer "exit 4";')
    alice, bob = c.start_kernel("alice"), c.start_kernel("bob")
    try:
        up_all(c)
        c.adm("alice", "primary", "--force", "r0")
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        bob.kill()
        bob.wait()
        c.wait(lambda: c.status("alice").connections[0].peer_devices[0].peer_disk is DiskState.OUTDATED)
        state = json.loads(c.emu("alice", "state").stdout)
        assert "bob" not in state["nodes"]
        assert [(e["node"], e["rc"]) for e in state["handler_log"] if e["handler"] == "fence-peer"] == [
            ("alice", 4)
        ]
        c.emu("alice", "write", "r0")
        bob = c.start_kernel("bob")
        assert c.setup("bob", "status", "r0").returncode != 0  # down until something brings it up
        assert c.adm("bob", "up", "r0").returncode == 0
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        assert (
            json.loads(c.emu("bob", "data", "r0").stdout)["tag"]
            == json.loads(c.emu("alice", "data", "r0").stdout)["tag"]
        )
    finally:
        for kern in (alice, bob):
            kern.kill()
            kern.wait()
        c.close()


def test_create_md_refuses_an_attached_disk_and_renews_a_detached_one(two: Cluster) -> None:
    """drbdmeta (drbd-utils user/shared/drbdmeta.c): create-md on an attached minor fails with "Device
    '<minor>' is configured!" and exit 20; after `detach`, it writes new meta data: the attach comes up
    Inconsistent and resyncs in full from the peer."""
    up_all(two)
    assert two.adm("alice", "primary", "--force", "r0").returncode == 0
    two.wait(lambda: two.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    r = two.adm("bob", "create-md", "--force", "r0")
    assert r.returncode == 20 and f"Device '{two.minor}' is configured!" in r.stderr
    assert two.adm("bob", "detach", "r0").returncode == 0
    assert two.adm("bob", "create-md", "--force", "r0").returncode == 0
    assert two.adm("bob", "attach", "r0").returncode == 0
    two.wait(lambda: two.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    resyncs = json.loads((two.dir / "state.json").read_text())["resync_log"]
    assert resyncs[-1]["key"] == "r0/0/alice/bob" and resyncs[-1]["total_kib"] == engine.DEFAULT_SIZE_KIB
