# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:tandem:drbd as real processes against the DRBD emulator (two nodes, alice and bob, on one machine).

The emulator's fake drbdadm/drbdsetup share their state through TANDEM_EMU_DIR; TANDEM_EMU_NODE says which
node a process is on. crm_attribute is a small fake that keeps each node's promotion score in a file and logs
every call, so the tests can see exactly what the agent writes to the cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from lab.cluster import poll
from lab.drbd_emu.install import node_env

from tandem.fence import Peer
from tests.conftest import AGENTS, LIB, TOP
from tests.unit.test_fence import BOB, CIB, STALE

AGENT = AGENTS / "drbd"
EMU_BIN = TOP / "lab" / "drbd_emu" / "bin"
NODES = ("alice", "bob")
CONF = """resource r0 {{
  net {{ protocol C; {net} }}
  volume 0 {{ device minor 0; disk /dev/tld-disk; meta-disk internal; }}
  on alice {{ node-id 0; address 127.0.0.1:7789; }}
  on bob   {{ node-id 1; address 127.0.0.2:7789; }}
}}
"""
# Pacemaker's two stores of a promotion score, as the fakes below keep them: attrd (TLD_ATTRS.attrd) and
# the CIB (TLD_ATTRS). As pacemaker-attrd does, a write reaches the CIB only when it changes attrd's value.
FAKE_ATTRD = r"""
import json, os, sys
args = sys.argv[1:]
node = os.environ["TANDEM_EMU_NODE"]
cib_path = os.environ["TLD_ATTRS"]
attrd_path = cib_path + ".attrd"
with open(cib_path + ".log", "a") as log:
    log.write(json.dumps([node, [os.path.basename(sys.argv[0]), *args]]) + "\n")
def load(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {}
def save(path, data):
    with open(path, "w") as fh:
        json.dump(data, fh)
cib, attrd = load(cib_path), load(attrd_path)
"""
FAKE_CRM_ATTRIBUTE = (
    "#!/usr/bin/python3\n"
    + FAKE_ATTRD
    + r"""
if "-G" in args:
    if node not in cib:
        print("crm_attribute: Error performing operation: No such device or address", file=sys.stderr)
        sys.exit(105)
    print(cib[node])
    sys.exit(0)
value = args[args.index("-v") + 1] if "-v" in args else None
if attrd.get(node) != value:
    attrd[node] = value
    cib[node] = value
    save(attrd_path, {k: v for k, v in attrd.items() if v is not None})
    save(cib_path, {k: v for k, v in cib.items() if v is not None})
"""
)
FAKE_ATTRD_UPDATER = (
    "#!/usr/bin/python3\n"
    + FAKE_ATTRD
    + r"""
if "--refresh" in args:
    save(cib_path, attrd)
elif node in attrd:
    print(f'name="{args[args.index("-n") + 1]}" host="{node}" value="{attrd[node]}"')
else:
    print("attrd_updater: Could not query value: attribute does not exist", file=sys.stderr)
    sys.exit(105)
"""
)


@dataclass
class Run:
    rc: int
    err: str

    @property
    def reason(self) -> str:
        return "\n".join(line for line in self.err.splitlines() if line.startswith("ocf-exit-reason:"))


class Emu:
    """One emulated 2-node DRBD resource plus the agent environment for each node."""

    def __init__(self, root: Path, *, dual: bool = False, mode: str = "9") -> None:
        self.root = root
        self.conf = root / "r0.res"
        self.conf.write_text(CONF.format(net="allow-two-primaries yes;" if dual else ""))
        self.attrs = root / "attrs.json"
        self.cib = root / "cib.xml"
        self.cib.write_text(CIB.format(quorum="1", bob=BOB[Peer.REACHABLE], extra=""))
        fake = root / "fakebin"
        fake.mkdir()
        for name, text in (("crm_attribute", FAKE_CRM_ATTRIBUTE), ("attrd_updater", FAKE_ATTRD_UPDATER)):
            (fake / name).write_text(text)
            (fake / name).chmod(0o755)
        self.base = {
            "PATH": f"{EMU_BIN}:{fake}:/usr/sbin:/usr/bin:/sbin:/bin",
            "TANDEM_EMU_DIR": str(root / "emu"),
            "TANDEM_LIBDIR": str(LIB),
            "OCF_ROOT": "/usr/lib/ocf",
            "TLD_ATTRS": str(self.attrs),
            "CIB_file": str(self.cib),
            "OCF_RESOURCE_INSTANCE": "drbd-r0",
            "OCF_RESKEY_drbd_resource": "r0",
            "OCF_RESKEY_drbdconf": str(self.conf),
            "OCF_RESKEY_wait_for_peers": "2",
            "OCF_RESKEY_promote_backoff": "0",
            "OCF_RESKEY_report_degraded": "true",  # the tests read the reasons (the default is false)
            "OCF_RESKEY_CRM_meta_clone_max": "2",
            "OCF_RESKEY_CRM_meta_clone_node_max": "1",
            "OCF_RESKEY_CRM_meta_promoted_max": "2" if dual else "1",
            "OCF_RESKEY_CRM_meta_promoted_node_max": "1",
            "OCF_RESKEY_CRM_meta_notify": "true",
            "OCF_RESKEY_CRM_meta_timeout": "6000",
        }
        self.emu("init", "--mode", mode)

    def env(self, node: str, **extra: str) -> dict[str, str]:
        """The emulator's node environment: its LD_PRELOAD shim shows the node's /proc/drbd to processes."""
        return {
            **self.base,
            **node_env(self.root / "emu", node),
            "TANDEM_EMU_DEVICES": "",
            "TANDEM_EMU_NODE": node,
            "HA_RSCTMP": str(self.root / f"rsctmp-{node}"),
            **extra,
        }

    def agent(self, node: str, action: str, **extra: str) -> Run:
        env = self.env(node, **extra)
        if action == "monitor" and "OCF_RESKEY_CRM_meta_interval" not in extra:
            env["OCF_RESKEY_CRM_meta_interval"] = "10000"
        proc = subprocess.run(
            [str(AGENT), action],  # by its #! line, as Pacemaker runs it
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Run(proc.returncode, proc.stderr)

    def tool(self, node: str, prog: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(EMU_BIN / prog), *args], env=self.env(node), capture_output=True, text=True, check=False
        )

    def emu(self, *args: str, node: str = "alice") -> str:
        result = self.tool(node, "drbd-emu", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def adm(self, node: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.tool(node, "drbdadm", "-c", str(self.conf), *args)

    def raw(self, node: str) -> dict[str, Any] | None:
        """The emulator's own state of r0 on `node` (after a status call lets it settle)."""
        self.tool(node, "drbdsetup", "status", "r0")
        state = json.loads(self.emu("state"))
        found: dict[str, Any] | None = state["nodes"].get(node, {}).get("r0")
        return found

    def score(self, node: str) -> str | None:
        try:
            value: str | None = json.loads(self.attrs.read_text()).get(node)
            return value
        except FileNotFoundError:
            return None

    def lose_scores(self, *, in_attrd: bool = True) -> None:
        """Every node's score gone from the CIB, and from attrd too unless `in_attrd` is false (which is
        what the DC's erasing of a node's transient attributes does when the node's controller leaves)."""
        self.attrs.unlink(missing_ok=True)
        if in_attrd:
            Path(f"{self.attrs}.attrd").unlink(missing_ok=True)

    def attr_calls(self) -> list[list[Any]]:
        """Every crm_attribute and attrd_updater call so far, as [node, [program, *args]]."""
        log = Path(str(self.attrs) + ".log")
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def wait(self, node: str, check: Any, seconds: float = 20) -> dict[str, Any] | None:
        end = time.monotonic() + seconds
        while True:
            raw = self.raw(node)
            if check(raw) or time.monotonic() > end:
                return raw
            time.sleep(0.2)

    def uptodate_pair(self) -> None:
        """Both nodes up with UpToDate data (the initial full sync, as UG9 describes it), then down again."""
        for node in NODES:
            assert self.adm(node, "up", "r0").returncode == 0
        assert self.adm("alice", "primary", "--force", "r0").returncode == 0
        self.wait("bob", lambda r: all(d["state"] == "UpToDate" for d in r["disks"].values()))
        assert self.adm("alice", "secondary", "r0").returncode == 0
        for node in ("bob", "alice"):
            assert self.adm(node, "down", "r0").returncode == 0


def disks(raw: dict[str, Any] | None) -> list[str]:
    return [d["state"] for d in (raw or {}).get("disks", {}).values()]


def expected_codes(raw: dict[str, Any] | None, promoted_max: int = 1) -> set[int]:
    """An oracle over the emulator's raw state, independent of the agent's parser and verdict code."""
    if raw is None:
        return {7}
    conns = raw["conns"].values()
    primary = raw["role"] == "Primary"
    failed = primary and (
        any(s in ("Diskless", "Failed", "Detaching") for s in disks(raw))
        or any(s != "fencing" for s in raw["suspended"])
        or sum(c["state"] == "Connected" and c["peer_role"] == "Primary" for c in conns) > promoted_max - 1
    )
    if failed:
        return {9}
    healthy = (
        all(s == "UpToDate" for s in disks(raw))
        and not raw["suspended"]
        and bool(conns)
        and all(
            c["state"] == "Connected"
            and all(s == "UpToDate" for s in c["peer_disk"].values())
            and all(s == "Established" for s in c["repl"].values())
            for c in conns
        )
    )
    if primary:
        return {8} if healthy else {191}
    return {0} if healthy else {190}


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emu]:
    if not (EMU_BIN / "drbdadm").exists():
        pytest.fail("the DRBD emulator (lab/drbd_emu/bin) is missing")
    e = Emu(tmp_path)
    e.uptodate_pair()
    yield e
    for node in NODES:
        e.tool(node, "drbd-emu", "close", "r0")
        e.adm(node, "secondary", "r0")
        e.adm(node, "down", "r0")


def start_both(emu: Emu) -> None:
    for node in NODES:
        assert emu.agent(node, "start").rc == 0


def healthy_again(emu: Emu, node: str) -> None:
    """Wait until the emulator says `node` is a healthy Secondary; the agent must then agree."""
    emu.wait(node, lambda raw: expected_codes(raw) == {0})
    assert emu.agent(node, "monitor").rc == 0


# -- the actions, one by one -----------------------------------------------------------------------------
def test_probe_of_a_stopped_resource_is_7_and_writes_nothing(emu: Emu) -> None:
    assert emu.agent("alice", "monitor", OCF_RESKEY_CRM_meta_interval="0").rc == 7
    assert emu.attr_calls() == []


def test_start_ends_secondary_and_sets_the_score(emu: Emu) -> None:
    r = emu.agent("alice", "start")
    assert r.rc == 0, r.err
    raw = emu.raw("alice")
    assert raw is not None and raw["role"] == "Secondary"
    assert emu.score("alice") == "1000"  # bob is not up: its disk state is unknown
    assert emu.agent("bob", "start").rc == 0
    assert emu.agent("alice", "monitor").rc == 0
    assert emu.score("alice") == "10000"
    assert emu.agent("alice", "start").rc == 0  # a second start is fine


def test_steady_state_monitor_writes_nothing(emu: Emu) -> None:
    start_both(emu)
    assert emu.agent("alice", "monitor").rc == 0
    before = len(emu.attr_calls())
    for _ in range(3):
        assert emu.agent("alice", "monitor").rc == 0
    assert len(emu.attr_calls()) == before
    # a probe checks the cache against the cluster (one query), and repairs a score lost there
    emu.lose_scores()
    assert emu.agent("alice", "monitor", OCF_RESKEY_CRM_meta_interval="0").rc == 0
    assert emu.score("alice") == "10000"


def test_probe_restores_a_score_the_cib_lost_while_attrd_kept_it(emu: Emu) -> None:
    """The DC's controller crashed: its peer erased its transient attributes from the CIB, attrd kept them,
    so writing the same score again changes nothing; the probe after the controller's return repairs it."""
    start_both(emu)
    assert emu.agent("alice", "monitor").rc == 0
    emu.lose_scores(in_attrd=False)
    assert emu.agent("alice", "monitor").rc == 0  # a recurring monitor trusts its cache: nothing forked
    assert emu.score("alice") is None
    calls = len(emu.attr_calls())
    assert emu.agent("alice", "monitor", OCF_RESKEY_CRM_meta_interval="0").rc == 0
    assert emu.score("alice") == "10000"
    programs = [(argv[0], argv[-1]) for _, argv in emu.attr_calls()[calls:]]
    assert programs == [
        ("crm_attribute", "-q"),
        ("attrd_updater", "master-drbd-r0"),
        ("attrd_updater", "--refresh"),
    ]


def test_probe_deletes_a_score_attrd_kept_when_the_node_should_have_none(emu: Emu) -> None:
    """tandem-17210: the controller restarted, the CIB lost the score, attrd kept 10000, and the node's
    data went bad meanwhile. The probe finds the CIB already as it should be (no score), but attrd's next
    write of any node's value would bring 10000 back: it deletes the score in attrd too."""
    start_both(emu)
    assert emu.agent("alice", "monitor").rc == 0
    emu.lose_scores(in_attrd=False)
    emu.emu("fail-disk", "alice", "r0")
    assert emu.agent("alice", "monitor", OCF_RESKEY_CRM_meta_interval="0").rc == 190  # degraded
    attrd = json.loads(Path(f"{emu.attrs}.attrd").read_text())
    assert "alice" not in attrd and emu.score("alice") is None
    assert attrd.get("bob") == "10000"


def test_promote_refuses_without_uptodate_data(emu: Emu) -> None:
    emu.lose_scores()
    assert emu.adm("bob", "up", "r0").returncode == 0
    assert emu.adm("bob", "primary", "r0").returncode == 0
    assert emu.adm("bob", "disconnect", "r0").returncode == 0  # bob goes on alone
    emu.emu("write", "r0", node="bob")
    assert emu.agent("alice", "start").rc == 0
    emu.wait("alice", lambda r: r is not None)
    assert emu.adm("alice", "outdate", "r0").returncode in (
        0,
        17,
    )  # (refused while connected: then down first)
    assert emu.agent("alice", "stop").rc == 0
    assert emu.adm("alice", "up", "--skip-net", "r0").returncode == 0
    assert emu.adm("alice", "outdate", "r0").returncode == 0
    assert emu.agent("alice", "start").rc == 0
    r = emu.agent("alice", "promote")
    assert r.rc == 1
    assert "refusing to promote: local data is Outdated, not UpToDate" in r.reason
    raw = emu.raw("alice")
    assert raw is not None and raw["role"] == "Secondary"
    assert emu.score("alice") is None  # no score: Pacemaker will not retry here


def test_promote_demote_stop_cycle(emu: Emu) -> None:
    start_both(emu)
    assert emu.agent("alice", "promote").rc == 0
    assert emu.agent("alice", "monitor").rc == 8
    assert emu.agent("alice", "promote").rc == 0  # already Primary
    assert emu.agent("bob", "monitor").rc == 0
    r = emu.agent("bob", "promote")  # single primary: refused, alice is Primary
    assert r.rc == 1 and "peer alice is still Primary" in r.reason
    assert emu.agent("alice", "demote").rc == 0
    assert emu.agent("bob", "promote").rc == 0
    assert emu.agent("alice", "stop").rc == 0  # Secondary next to a Primary: outdated on the way down
    assert emu.raw("alice") is None
    assert emu.score("alice") is None
    r = emu.agent("bob", "monitor")
    assert r.rc == 191 and "peer alice disconnected" in r.reason
    assert emu.agent("bob", "stop").rc == 0  # stop demotes first
    assert emu.agent("bob", "stop").rc == 0  # and succeeds when already down
    assert emu.agent("bob", "monitor").rc == 7


def test_stop_removes_the_score_after_a_handler_that_holds_the_score_lock(emu: Emu) -> None:
    """DRBD's score handlers (tandem-disconnected's watcher, after-resync-target) write under the score
    lock; the stop takes DRBD down, then removes the score under the same lock: a handler that read the
    resource before it went down cannot put a score back after the stop."""
    import fcntl
    import threading

    from tandem.ocf.state import StateFiles

    start_both(emu)
    assert emu.score("alice") is not None
    lock = StateFiles.of("score", "r0", emu.env("alice")).path("lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    stopped: list[Run] = []
    stop = threading.Thread(
        target=lambda: stopped.append(emu.agent("alice", "stop", OCF_RESKEY_CRM_meta_timeout="30000"))
    )
    stop.start()
    poll(lambda: emu.raw("alice") is None or None, 30, "DRBD down on alice")
    time.sleep(1.0)
    assert not stopped and emu.score("alice") is not None  # DRBD is down, the stop waits for the handler
    os.close(fd)  # the handler is done
    stop.join(30)
    assert [r.rc for r in stopped] == [0] and emu.score("alice") is None


def test_demote_waits_for_openers_and_reports_in_time(emu: Emu) -> None:
    assert emu.agent("alice", "start").rc == 0
    assert emu.agent("alice", "promote").rc == 0
    emu.emu("open", "r0", node="alice")
    started = time.monotonic()
    r = emu.agent("alice", "demote", OCF_RESKEY_CRM_meta_timeout="3000")
    assert r.rc == 1 and "out of time" in r.reason
    assert time.monotonic() - started < 10
    emu.emu("close", "r0", node="alice")
    assert emu.agent("alice", "demote").rc == 0


def test_disconnect_is_degraded_and_reconnect_heals(emu: Emu) -> None:
    start_both(emu)
    assert emu.agent("alice", "promote").rc == 0
    emu.emu("cut", "alice", "bob")
    r = emu.agent("alice", "monitor")
    assert r.rc == 191 and "peer bob disconnected" in r.reason
    r = emu.agent("bob", "monitor")
    assert r.rc == 190
    assert emu.score("bob") == "1000"
    emu.emu("heal", "alice", "bob")
    healthy_again(emu, "bob")
    assert emu.agent("alice", "monitor").rc == 8


def test_degraded_is_reported_as_healthy_by_default(emu: Emu) -> None:
    """No 190/191 unless asked for: Pacemaker 2.1.5 keeps them as failed actions (and can stall on them)."""
    start_both(emu)
    assert emu.agent("alice", "promote").rc == 0
    emu.emu("cut", "alice", "bob")
    default = {"OCF_RESKEY_report_degraded": ""}
    r = emu.agent("alice", "monitor", **default)
    assert r.rc == 8 and not r.reason
    assert emu.agent("bob", "monitor", **default).rc == 0
    assert emu.agent("alice", "monitor", OCF_RESKEY_report_degraded="true").rc == 191


def test_standalone_is_reconnected_by_notify(emu: Emu) -> None:
    start_both(emu)
    assert emu.adm("bob", "disconnect", "r0").returncode == 0
    r = emu.agent("bob", "monitor")
    assert r.rc == 190 and "StandAlone towards alice" in r.reason
    notify = {
        "OCF_RESKEY_CRM_meta_notify_type": "post",
        "OCF_RESKEY_CRM_meta_notify_operation": "start",
        "OCF_RESKEY_CRM_meta_notify_start_uname": "bob",
    }
    assert emu.agent("bob", "notify", **notify).rc == 0
    healthy_again(emu, "bob")


def test_post_notify_removes_our_stale_fencing_constraint(emu: Emu) -> None:
    emu.cib.write_text(CIB.format(quorum="1", bob=BOB[Peer.REACHABLE], extra=STALE))
    start_both(emu)
    notify = {"OCF_RESKEY_CRM_meta_notify_type": "post", "OCF_RESKEY_CRM_meta_notify_operation": "start"}
    assert emu.agent("bob", "notify", **notify).rc == 0
    assert "tandem-fence-r0" in emu.cib.read_text()  # it admits only alice: not bob's to remove
    assert emu.agent("alice", "notify", **notify, OCF_RESKEY_CRM_meta_on_node="alice").rc == 0
    assert "tandem-fence-r0" not in emu.cib.read_text()
    assert "user-pref" in emu.cib.read_text()


def test_failed_disk_under_a_primary_is_degraded_and_unpromotable_served_or_not(emu: Emu) -> None:
    """Never 9 (a failed monitor that a new DC's demote would stall on): the score goes, Pacemaker demotes."""
    start_both(emu)
    assert emu.agent("alice", "promote").rc == 0
    emu.emu("fail-disk", "alice", "r0")
    r = emu.agent("alice", "monitor")
    assert r.rc == 191 and "I/O served by peer bob" in r.reason
    assert emu.score("alice") is None
    emu.emu("cut", "alice", "bob")
    r = emu.agent("alice", "monitor")
    assert r.rc == 191 and "no data under a Primary without a connected UpToDate peer (volume 0)" in r.reason
    assert emu.score("alice") is None


def test_dual_primary_disk_failure_is_degraded_and_unpromotable_then_demoted(tmp_path: Path) -> None:
    """DRBD keeps the Primary's I/O going through its UpToDate peer: no recovery (9) under the running VM;
    the score goes, so Pacemaker migrates the VM away and then demotes this node, which the agent does."""
    e = Emu(tmp_path, dual=True)
    e.uptodate_pair()
    for node in NODES:
        assert e.agent(node, "start").rc == 0
        assert e.agent(node, "promote").rc == 0
    e.emu("fail-disk", "alice", "r0")
    e.wait("alice", lambda raw: disks(raw) == ["Diskless"])
    r = e.agent("alice", "monitor")
    assert r.rc == 191 and "I/O served by peer bob" in r.reason
    assert e.agent("alice", "monitor", OCF_RESKEY_report_degraded="").rc == 8  # the default: no failed action
    assert e.score("alice") is None and e.score("bob") == "10000"
    assert e.agent("alice", "demote").rc == 0
    r = e.agent("alice", "monitor")
    assert r.rc == 190 and "local disk Diskless" in r.reason
    assert e.score("alice") is None
    for node in NODES:
        assert e.agent(node, "stop").rc == 0


def test_dual_primary_needs_allow_two_primaries(tmp_path: Path) -> None:
    e = Emu(tmp_path)  # config without allow-two-primaries
    e.uptodate_pair()
    r = e.agent("alice", "start", OCF_RESKEY_CRM_meta_promoted_max="2")
    assert r.rc == 6 and "allow-two-primaries" in r.reason
    r = e.agent("alice", "start", OCF_RESKEY_CRM_meta_promoted_max="2", OCF_RESKEY_CRM_meta_clone_max="5")
    assert r.rc == 6 and "clone-max <= 4" in r.reason
    r = e.agent("alice", "start", OCF_RESKEY_CRM_meta_promoted_max="3", OCF_RESKEY_CRM_meta_clone_max="4")
    assert r.rc == 6 and "at most two Primaries" in r.reason


def test_dual_primary(tmp_path: Path) -> None:
    e = Emu(tmp_path, dual=True)
    e.uptodate_pair()
    for node in NODES:
        assert e.agent(node, "start").rc == 0
    for node in NODES:
        assert e.agent(node, "promote").rc == 0, e.agent(node, "promote").err
    for node in NODES:
        assert e.agent(node, "monitor").rc == 8
    # the same state under a single-primary clone: a Primary peer is unexpected, and that is a failure
    r = e.agent("alice", "monitor", OCF_RESKEY_CRM_meta_promoted_max="1")
    assert r.rc == 9 and "unexpected peer Primary: bob" in r.reason
    for node in NODES:
        assert e.agent(node, "demote").rc == 0
        assert e.agent(node, "stop").rc == 0


def test_drbd_84_mode(tmp_path: Path) -> None:
    e = Emu(tmp_path, mode="8.4")
    e.uptodate_pair()
    for node in NODES:
        assert e.agent(node, "start").rc == 0, e.agent(node, "start").err
    assert e.agent("alice", "promote").rc == 0
    assert e.agent("alice", "monitor").rc == 8
    assert e.agent("bob", "monitor").rc == 0
    assert e.score("alice") == "10000"
    e.emu("cut", "alice", "bob")
    assert e.agent("alice", "monitor").rc == 191
    e.emu("heal", "alice", "bob")
    e.wait("bob", lambda raw: expected_codes(raw) == {0})
    assert e.agent("bob", "monitor").rc == 0
    assert e.agent("alice", "demote").rc == 0
    for node in NODES:
        assert e.agent(node, "stop").rc == 0


def test_validate_all_and_bad_parameters(emu: Emu) -> None:
    assert emu.agent("alice", "validate-all").rc == 0
    r = emu.agent("alice", "validate-all", OCF_RESKEY_drbd_resource="-rf")
    assert r.rc == 6 and "drbd_resource" in r.reason
    r = emu.agent("alice", "validate-all", OCF_RESKEY_promotion_scores="10 5 1")
    assert r.rc == 6 and "non-decreasing" in r.reason
    r = emu.agent("alice", "validate-all", OCF_RESKEY_require_drbd_module_version_ge="9.3.0")
    assert r.rc == 5 and "outside the required range" in r.reason
    r = emu.agent("alice", "validate-all", OCF_RESKEY_drbdconf="/nonexistent/drbd.conf")
    assert r.rc == 5 and "not readable" in r.reason
    # stop with a broken configuration still succeeds (a failed stop would get the node fenced)
    assert emu.agent("alice", "stop", OCF_RESKEY_drbd_resource="-rf").rc == 0
    assert emu.agent("alice", "start").rc == 0
    assert emu.agent("alice", "promote").rc == 0
    assert emu.agent("alice", "stop", OCF_RESKEY_drbdconf="/nonexistent/drbd.conf").rc == 0
    assert emu.raw("alice") is None
    assert emu.agent("alice", "start").rc == 0
    assert emu.agent("alice", "stop", OCF_RESKEY_drbdconf="not a path").rc == 0
    assert emu.raw("alice") is None


def test_probe_without_drbd_installed_is_not_running(emu: Emu) -> None:
    r = emu.agent("alice", "monitor", OCF_RESKEY_CRM_meta_interval="0", PATH="/nonexistent", LD_PRELOAD="")
    assert r.rc == 7, r.err


# -- a random walk through the state machine, with faults -------------------------------------------------
class AgentMachine(RuleBasedStateMachine):
    """Drives the real agent through random actions and faults on two nodes.

    Invariants: an action that succeeds leaves the role Pacemaker asked for; a node never becomes Primary on
    data that is not UpToDate; the monitor code always matches the emulator's real state.
    """

    root: Path
    dual = False

    def __init__(self) -> None:
        super().__init__()
        root = AgentMachine.root / f"run{time.monotonic_ns()}"
        root.mkdir()
        self.e = Emu(root, dual=self.dual)
        self.e.uptodate_pair()
        self.cut = False
        self.opened: set[str] = set()

    def teardown(self) -> None:
        for node in NODES:
            for _ in range(2):
                self.e.tool(node, "drbd-emu", "close", "r0")
            self.e.adm(node, "secondary", "r0")
            self.e.adm(node, "down", "r0")
        shutil.rmtree(self.e.root, ignore_errors=True)

    @rule(node=st.sampled_from(NODES))
    def start(self, node: str) -> None:
        if node in self.opened:
            return  # Pacemaker does not start an instance it believes promoted
        r = self.e.agent(node, "start")
        raw = self.e.raw(node)
        assert r.rc != 0 or (raw is not None and raw["role"] == "Secondary"), r.err

    @rule(node=st.sampled_from(NODES))
    def stop(self, node: str) -> None:
        r = self.e.agent(node, "stop", OCF_RESKEY_CRM_meta_timeout="3000")
        assert r.rc != 0 or self.e.raw(node) is None, r.err
        assert r.rc == 0 or node in self.opened, r.err  # only an opener can keep DRBD from stopping
        assert r.rc != 0 or self.e.score(node) is None

    @rule(node=st.sampled_from(NODES))
    def promote(self, node: str) -> None:
        before = self.e.raw(node)
        r = self.e.agent(node, "promote")
        raw = self.e.raw(node)
        if r.rc == 0:
            assert raw is not None and raw["role"] == "Primary"
            if before is not None and before["role"] != "Primary":
                assert all(s == "UpToDate" for s in disks(raw)), "promoted without UpToDate data"
        else:
            assert "ocf-exit-reason:" in r.err
            assert raw is None or raw["role"] == (before or {}).get("role"), (
                "a failed promote changed the role"
            )

    @rule(node=st.sampled_from(NODES))
    def demote(self, node: str) -> None:
        r = self.e.agent(node, "demote", OCF_RESKEY_CRM_meta_timeout="3000")
        raw = self.e.raw(node)
        assert r.rc != 0 or (raw is not None and raw["role"] == "Secondary"), r.err

    @precondition(lambda self: not self.cut)
    @rule()
    def cut_link(self) -> None:
        self.e.emu("cut", "alice", "bob")
        self.cut = True

    @precondition(lambda self: self.cut)
    @rule()
    def heal_link(self) -> None:
        self.e.emu("heal", "alice", "bob")
        self.cut = False

    @rule(node=st.sampled_from(NODES))
    def open_device(self, node: str) -> None:
        raw = self.e.raw(node)
        if raw is not None and raw["role"] == "Primary" and node not in self.opened:
            self.e.emu("open", "r0", node=node)
            self.opened.add(node)

    @rule(node=st.sampled_from(NODES))
    def close_device(self, node: str) -> None:
        if node in self.opened:
            self.e.emu("close", "r0", node=node)
            self.opened.discard(node)

    @rule(node=st.sampled_from(NODES))
    def write(self, node: str) -> None:
        raw = self.e.raw(node)
        if raw is not None and raw["role"] == "Primary":
            self.e.emu("write", "r0", node=node)

    @invariant()
    def monitor_matches_the_real_state(self) -> None:
        for node in NODES:
            raw = self.e.raw(node)
            r = self.e.agent(node, "monitor")
            promoted_max = 2 if self.dual else 1
            codes = expected_codes(self.e.raw(node), promoted_max) | expected_codes(raw, promoted_max)
            assert r.rc in codes, (node, raw, r.err)
            if r.rc in (1, 9, 190, 191):
                assert r.reason, r.err

    @invariant()
    def never_primary_on_data_that_was_not_uptodate(self) -> None:
        for node in NODES:
            raw = self.e.raw(node)
            if raw is not None and raw["role"] == "Primary":
                # the emulator's meta data records the promotion's data state; a disk may fail later (fault)
                assert all(s in ("UpToDate", "Failed", "Diskless") for s in disks(raw)), raw


class DualAgentMachine(AgentMachine):
    """The same walk with promoted-max=2 and allow-two-primaries (both nodes may be Primary)."""

    dual = True


STATEFUL = settings(
    deadline=None,
    stateful_step_count=8,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# CI affords a few walks (each ~20 s of real agent processes); TLD_STATEFUL_EXAMPLES=50 walks longer
EXAMPLES = os.environ.get("TLD_STATEFUL_EXAMPLES")
AgentMachine.TestCase.settings = settings(STATEFUL, max_examples=int(EXAMPLES or 4))
DualAgentMachine.TestCase.settings = settings(STATEFUL, max_examples=int(EXAMPLES or 3))


@pytest.fixture
def machine_root(tmp_path: Path) -> Path:
    AgentMachine.root = tmp_path
    return tmp_path


@pytest.mark.parametrize("machine", [AgentMachine, DualAgentMachine], ids=["single-primary", "dual-primary"])
def test_stateful_random_actions_and_faults(machine_root: Path, machine: type[AgentMachine]) -> None:
    if not (EMU_BIN / "drbdadm").exists():
        pytest.fail("the DRBD emulator (lab/drbd_emu/bin) is missing")
    machine.TestCase("runTest").runTest()


# -- ocf-tester and ocft, in a private mount namespace (their state files stay out of the host's /run) -------
def sandbox(e: Emu, argv: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    """Run argv as node alice with private /run and /var/lib/heartbeat (pacemaker-recipe.md §6)."""
    run, varlib = e.root / "run", e.root / "varlibhb"
    run.mkdir(exist_ok=True)
    varlib.mkdir(exist_ok=True)
    script = (
        f'mount -n --bind "{run}" /run && mount -n --bind "{varlib}" /var/lib/heartbeat && '
        'mkdir -p /run/resource-agents /run/lock && hostname alice && exec "$@"'
    )
    env = {k: v for k, v in e.env("alice", **extra).items() if k != "HA_RSCTMP"}
    return subprocess.run(
        ["unshare", "-m", "-u", "--propagation", "private", "sh", "-c", script, "sh", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ocf_tester(emu: Emu) -> None:
    assert emu.adm("bob", "up", "r0").returncode == 0  # a connected peer: a started instance is healthy
    options = ["drbd_resource=r0", f"drbdconf={emu.conf}", "wait_for_peers=5", "promote_backoff=0"]
    argv = ["ocf-tester", "-n", "tld", *(a for o in options for a in ("-o", o)), str(AGENT)]
    result = sandbox(emu, argv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed all tests" in result.stdout


def test_ocft(emu: Emu) -> None:
    """The ocft configuration in ocft/drbd (CI runs it here), with AgentRoot pointed at this checkout."""
    cfg = emu.root / "ocft-configs"
    cfg.mkdir()
    text = (TOP / "ocft" / "drbd").read_text()
    assert "AgentRoot /usr/lib/ocf/resource.d/tandem" in text
    (cfg / "drbd").write_text(text.replace("AgentRoot /usr/lib/ocf/resource.d/tandem", f"AgentRoot {AGENTS}"))
    dual = emu.root / "dual.res"
    dual.write_text(CONF.format(net="allow-two-primaries yes;"))
    cases = emu.root / "ocft-cases"
    ocft = emu.root / "ocft"
    ocft.write_text(
        "\n".join(
            f"CASES_DIR={cases}" if line.startswith("CASES_DIR=") else line
            for line in Path("/usr/sbin/ocft").read_text().splitlines()
        )
        + "\n"
    )
    ocft.chmod(0o755)
    env = {"TLD_OCFT_CONF": str(emu.conf), "TLD_OCFT_DUAL_CONF": str(dual)}
    made = sandbox(emu, [str(ocft), "make", "-d", str(cfg), "drbd"], **env)
    assert made.returncode == 0, made.stdout + made.stderr
    tested = sandbox(emu, [str(ocft), "test", "drbd"], **env)
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output
    assert "FAILED" not in output
    assert output.count("OK") >= 17, output


def test_reload_applies_the_configuration(emu: Emu) -> None:
    start_both(emu)
    assert emu.adm("alice", "disconnect", "r0").returncode == 0
    assert emu.agent("alice", "monitor").rc == 190
    assert emu.agent("alice", "reload").rc == 0  # drbdadm adjust: connect again, as the config says
    healthy_again(emu, "alice")


def test_every_notification_succeeds_and_recomputes_the_score(emu: Emu) -> None:
    start_both(emu)
    for kind in ("pre", "post"):
        for operation in ("start", "stop", "promote", "demote"):
            emu.lose_scores()  # the score lost in the cluster (and in the cache)
            (emu.root / "rsctmp-alice" / "tandem-drbd-drbd-r0.score").unlink(missing_ok=True)
            note = {
                "OCF_RESKEY_CRM_meta_notify_type": kind,
                "OCF_RESKEY_CRM_meta_notify_operation": operation,
            }
            assert emu.agent("alice", "notify", **note).rc == 0
            # post notifications write it again; pre notifications leave the score alone
            assert emu.score("alice") == ("10000" if kind == "post" else None), (kind, operation)


# -- three nodes: an intentional diskless client (DRBD 9 `disk none`) -------------------------------------
TRIO_CONF = """resource r0 {{
  net {{ protocol C; {net} }}
  volume 0 {{ device minor 0; disk /dev/tld-disk; meta-disk internal; }}
  on alice   {{ node-id 0; address 127.0.0.1:7789; }}
  on bob     {{ node-id 1; address 127.0.0.2:7789; }}
  on charlie {{ node-id 2; address 127.0.0.3:7789; volume 0 {{ disk none; }} }}
  connection-mesh {{ hosts alice bob charlie; }}
}}
"""
TRIO = (*NODES, "charlie")


def make_trio(root: Path, *, dual: bool = False) -> Emu:
    """alice and bob with UpToDate data, charlie a diskless client; a clone of three."""
    if not (EMU_BIN / "drbdadm").exists():
        pytest.fail("the DRBD emulator (lab/drbd_emu/bin) is missing")
    e = Emu(root)
    e.conf.write_text(TRIO_CONF.format(net="allow-two-primaries yes;" if dual else ""))
    e.base["OCF_RESKEY_CRM_meta_clone_max"] = "3"
    e.base["OCF_RESKEY_CRM_meta_promoted_max"] = "2" if dual else "1"
    e.uptodate_pair()
    return e


def test_a_survivor_held_at_consistent_by_drbd_9_2_19_keeps_its_score_and_is_promoted(tmp_path: Path) -> None:
    """9.2.19 (the emulator with `--kernel 9.2.19`): bob loses the Primary alice (a cut, not a demote) and
    DRBD holds it at Consistent while it reconciles with charlie; its score stays, and promote waits for
    UpToDate instead of failing with 17."""
    if not (EMU_BIN / "drbdadm").exists():
        pytest.fail("the DRBD emulator (lab/drbd_emu/bin) is missing")
    e = Emu(tmp_path)
    e.emu("init", "--kernel", "9.2.19")
    e.conf.write_text(TRIO_CONF.format(net=""))
    e.base["OCF_RESKEY_CRM_meta_clone_max"] = "3"
    e.uptodate_pair()
    try:
        for node in TRIO:
            assert e.agent(node, "start").rc == 0
        assert e.agent("alice", "promote").rc == 0
        assert e.agent("bob", "monitor").rc == 0 and e.score("bob") == "10000"
        e.emu("cut", "alice", "charlie")  # first: cut from bob alone, alice would outdate it through charlie
        e.emu("cut", "alice", "bob")
        raw = e.raw("bob")
        assert raw is not None and raw["disks"]["0"]["state"] == "Consistent"
        assert e.agent("bob", "monitor").rc == 190  # degraded: alice is gone (report_degraded here)
        assert e.score("bob") == "10000"  # kept while reconciling
        run = e.agent("bob", "promote", OCF_RESKEY_CRM_meta_timeout="90000")  # the README's promote timeout
        assert run.rc == 0, run.reason
        raw = e.raw("bob")
        assert raw is not None and raw["role"] == "Primary" and raw["disks"]["0"]["state"] == "UpToDate"
    finally:
        e.emu("heal", "alice", "bob")
        down_all(e)


def down_all(e: Emu) -> None:
    for node in TRIO:
        e.tool(node, "drbd-emu", "close", "r0")
        e.adm(node, "secondary", "r0")
        e.adm(node, "down", "r0")


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[Emu]:
    e = make_trio(tmp_path)
    yield e
    down_all(e)


@pytest.fixture
def dual_trio(tmp_path: Path) -> Iterator[Emu]:
    e = make_trio(tmp_path, dual=True)
    yield e
    down_all(e)


def test_a_diskless_client_is_healthy_has_its_own_tier_and_promotes(trio: Emu) -> None:
    for node in TRIO:
        assert trio.agent(node, "start").rc == 0
    run = trio.agent("charlie", "monitor")
    assert run.rc == 0, run.reason  # not "local disk Diskless"
    assert trio.score("charlie") == "100"
    assert trio.agent("alice", "monitor").rc == 0 and trio.score("alice") == "10000"
    run = trio.agent("charlie", "promote")
    assert run.rc == 0, run.reason
    assert trio.agent("charlie", "monitor").rc == 8 and trio.score("charlie") == "100"
    assert trio.agent("charlie", "demote").rc == 0
    assert trio.agent("bob", "monitor").rc == 0  # the client peer is no degradation


def test_a_diskless_client_without_data_is_degraded_unscored_and_not_promoted(trio: Emu) -> None:
    for node in TRIO:
        assert trio.agent(node, "start").rc == 0
    assert trio.agent("charlie", "monitor").rc == 0
    for node in NODES:
        assert trio.agent(node, "stop").rc == 0
    run = trio.agent("charlie", "monitor")
    assert run.rc == 190
    assert "diskless client without a connected UpToDate peer (volume 0)" in run.reason
    assert trio.score("charlie") is None
    run = trio.agent("charlie", "promote")
    assert run.rc == 1
    assert "refusing to promote: diskless client without a connected UpToDate peer (volume 0)" in run.reason
    raw = trio.raw("charlie")
    assert raw is not None and raw["role"] == "Secondary"


def test_a_diskless_client_primary_that_loses_its_data_is_degraded_and_unpromotable(trio: Emu) -> None:
    for node in TRIO:
        assert trio.agent(node, "start").rc == 0
    assert trio.agent("charlie", "promote").rc == 0
    trio.emu("cut", "charlie", "alice")
    trio.wait("charlie", lambda r: r["conns"]["alice"]["state"] != "Connected")
    run = trio.agent("charlie", "monitor")
    assert run.rc == 191 and "peer alice disconnected" in run.reason  # bob still serves its I/O
    assert trio.score("charlie") == "100"
    trio.emu("cut", "charlie", "bob")
    trio.wait("charlie", lambda r: r["conns"]["bob"]["state"] != "Connected")
    run = trio.agent("charlie", "monitor")
    assert run.rc == 191
    assert "diskless client Primary without a connected UpToDate peer (volume 0)" in run.reason
    assert trio.score("charlie") is None


def test_dual_primary_with_a_diskless_client_on_three_nodes(dual_trio: Emu) -> None:
    """The live-migration window onto a client: a storage node and the client both Primary."""
    for node in TRIO:
        assert dual_trio.agent(node, "start").rc == 0
    for node in ("alice", "charlie"):
        run = dual_trio.agent(node, "promote")
        assert run.rc == 0, run.reason
    assert dual_trio.agent("alice", "monitor").rc == 8 and dual_trio.agent("charlie", "monitor").rc == 8
    assert dual_trio.agent("bob", "monitor").rc == 0
    assert dual_trio.score("bob") is None  # the Primary slots are full: no score asks for a role swap
    assert dual_trio.score("alice") == "10000"
    assert dual_trio.score("charlie") is None  # no VM holds it open and bob has data: it yields the slot
    dual_trio.emu("open", "r0", node="charlie")  # the VM live-migrated onto the client
    assert dual_trio.agent("charlie", "monitor").rc == 8 and dual_trio.score("charlie") == "100"
    run = dual_trio.agent("bob", "promote")  # a third Primary is never allowed
    assert run.rc == 1 and "still Primary (promoted-max=2)" in run.reason
