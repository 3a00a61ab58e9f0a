# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:tandem:domain as real processes: the xl path against the fake xl and the DRBD emulator (two nodes,
n1 and n2, told apart by TANDEM_XL_NODE/TANDEM_EMU_NODE), libvirt against an unreachable libvirtd with a
stand-in qemu process, migration driven with CRM_meta_migrate_source/_target set as Pacemaker does, and
ocf-tester. Cost: about 30 s on 2 cores (mostly waiting for fake guests, and ocf-tester).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import AGENTS, LIB, TOP

AGENT = AGENTS / "domain"
EMU_BIN = TOP / "lab" / "drbd_emu" / "bin"
XL_BIN = TOP / "lab" / "bin"
RES = """resource r0 {
  net { allow-two-primaries yes; protocol C; }
  volume 0 { device minor 1000; disk /dev/fake0; meta-disk internal; }
  on n1 { node-id 0; address 10.0.0.1:7789; }
  on n2 { node-id 1; address 10.0.0.2:7789; }
}
"""
XL_CFG = """name = "xg1"
memory = 256
vcpus = 2
disk = [ 'phy:/dev/drbd/by-res/r0/0,xvda,w' ]
tandem_fake_shutdown = "{shutdown}"
tandem_fake_migrate_seconds = "{migrate}"
"""


@dataclass
class Run:
    rc: int
    out: str
    err: str

    @property
    def reasons(self) -> list[str]:
        return [ln.split(":", 1)[1] for ln in self.err.splitlines() if ln.startswith("ocf-exit-reason:")]


@dataclass
class Env:
    tmp: Path

    def base(self, node: str) -> dict[str, str]:
        rsctmp = self.tmp / f"rsctmp-{node}"
        rsctmp.mkdir(exist_ok=True)
        return {
            "PATH": f"{XL_BIN}:{EMU_BIN}:{os.environ['PATH']}",
            "TANDEM_LIBDIR": str(LIB),
            "TANDEM_XL_DIR": str(self.tmp / "xl"),
            "TANDEM_XL_NODE": node,
            "TANDEM_EMU_DIR": str(self.tmp / "emu"),
            "TANDEM_EMU_NODE": node,
            "HA_RSCTMP": str(rsctmp),
            "OCF_ROOT": "/usr/lib/ocf",
            "OCF_RESOURCE_INSTANCE": "vm",
            "OCF_RESKEY_config": str(self.tmp / "xg1.cfg"),
        }

    def environment(
        self, node: str, timeout_ms: int, more: dict[str, str] | None, extra: dict[str, str]
    ) -> dict[str, str]:
        """The agent's environment as Pacemaker gives it (`extra`: parameters, or OCF_/HA_/TANDEM_ keys)."""
        env = {**self.base(node), "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms), **(more or {})}
        env.update(
            {
                k if k.startswith(("OCF_", "HA_", "TANDEM_")) else f"OCF_RESKEY_{k}": v
                for k, v in extra.items()
            }
        )
        return env

    def agent(
        self,
        action: str,
        node: str = "n1",
        timeout_ms: int = 20000,
        more: dict[str, str] | None = None,
        **extra: str,
    ) -> Run:
        proc = subprocess.run(
            [str(AGENT), action],  # by its #! line, as Pacemaker runs it
            env=self.environment(node, timeout_ms, more, extra),
            capture_output=True,
            text=True,
            timeout=timeout_ms / 1000 + 10,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def agent_in_background(
        self,
        action: str,
        node: str = "n1",
        timeout_ms: int = 20000,
        more: dict[str, str] | None = None,
        **extra: str,
    ) -> subprocess.Popen[str]:
        """The agent as `agent` runs it, for a test that acts while the action runs (stderr piped)."""
        return subprocess.Popen(
            [str(AGENT), action],
            env=self.environment(node, timeout_ms, more, extra),
            stderr=subprocess.PIPE,
            text=True,
        )

    def tool(self, node: str, *argv: str) -> str:
        proc = subprocess.run(
            list(argv), env={**os.environ, **self.base(node)}, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def xl_names(self, node: str) -> list[str]:
        return [ln.split()[0] for ln in self.tool(node, "xl", "list").splitlines()[2:]]

    def config(self, shutdown: str = "0.3", migrate: str = "0.3") -> None:
        (self.tmp / "xg1.cfg").write_text(XL_CFG.format(shutdown=shutdown, migrate=migrate))


def two_primaries(env: Env, *mode: str, res: str = RES) -> None:
    """r0 Primary/UpToDate on n1 and n2 (promoted-max=2), as after the initial sync."""
    (env.tmp / "r0.res").write_text(res)
    conf = str(env.tmp / "r0.res")
    env.tool("n1", "drbd-emu", "init", *mode)
    for node in ("n1", "n2"):
        env.tool(node, "drbdadm", "-c", conf, "up", "r0")
    env.tool("n1", "drbdadm", "-c", conf, "primary", "--force", "r0")
    synced = "UpToDate/UpToDate"
    wait(lambda: env.tool("n1", "drbdadm", "-c", conf, "dstate", "r0").strip() == synced, "the initial sync")
    env.tool("n2", "drbdadm", "-c", conf, "primary", "r0")


@pytest.fixture
def lab2(tmp_path: Path) -> Iterator[Env]:
    """Two emulated nodes with DRBD 9 r0 on both Primary, and the xl config."""
    env = Env(tmp_path)
    env.config()
    two_primaries(env)
    yield env


def wait(cond: object, what: str, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_lifecycle_on_xl(lab2: Env) -> None:
    assert lab2.agent("validate-all").rc == 0
    assert lab2.agent("monitor", OCF_RESKEY_CRM_meta_interval="0").rc == 7
    assert lab2.agent("start").rc == 0
    assert "xg1" in lab2.xl_names("n1")
    assert lab2.agent("monitor", OCF_RESKEY_CRM_meta_interval="10000").rc == 0
    assert lab2.agent("start").rc == 0  # idempotent, no second domain
    assert lab2.xl_names("n1").count("xg1") == 1
    stop = lab2.agent("stop")
    assert stop.rc == 0, stop.err
    assert "xg1" not in lab2.xl_names("n1")
    assert lab2.agent("monitor").rc == 7
    assert lab2.agent("stop").rc == 0


def test_stop_destroys_a_guest_that_ignores_shutdown_within_the_timeout(lab2: Env) -> None:
    lab2.config(shutdown="ignore")
    assert lab2.agent("start").rc == 0
    started = time.monotonic()
    stop = lab2.agent("stop", timeout_ms=8000, HA_debug="1", HA_LOGFILE=str(lab2.tmp / "log"))
    assert stop.rc == 0 and time.monotonic() - started < 8
    assert "after" in (lab2.tmp / "log").read_text() and "destroying" in (lab2.tmp / "log").read_text()
    assert "xg1" not in lab2.xl_names("n1")


def test_states_paused_crashed_and_a_broken_toolstack(lab2: Env) -> None:
    assert lab2.agent("start").rc == 0
    lab2.tool("n1", "xl", "pause", "xg1")
    paused = lab2.agent("monitor")
    assert paused.rc == 190 and paused.reasons == ["xg1: domain is paused by a user (xl state --p---)"]
    assert lab2.agent("monitor", report_degraded="false").rc == 0
    lab2.tool("n1", "xl", "unpause", "xg1")
    (lab2.tmp / "xl" / "n1.broken").write_text("")
    for probe in ("0", "10000"):
        broken = lab2.agent("monitor", OCF_RESKEY_CRM_meta_interval=probe)
        assert broken.rc == 1 and "cannot tell whether xg1 runs" in broken.reasons[0]  # never 7
    (lab2.tmp / "xl" / "n1.broken").unlink()
    lab2.tool("n1", "xl", "fake-crash", "xg1")
    crashed = lab2.agent("monitor")
    assert crashed.rc == 1 and "crashed" in crashed.reasons[0]
    assert lab2.agent("stop").rc == 0
    assert "xg1" not in lab2.xl_names("n1")


def test_start_and_migrate_to_wait_for_a_toolstack_that_comes_back(lab2: Env) -> None:
    """A crashed libvirtd is back within seconds: failing at once would ban the node (tandem-18041)."""
    broken = lab2.tmp / "xl" / "n1.broken"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text("")
    threading.Timer(1.5, broken.unlink).start()
    log = lab2.tmp / "log"
    start = lab2.agent("start", HA_LOGFILE=str(log))
    assert start.rc == 0, start.err
    assert "does not answer" in log.read_text() and "xg1" in lab2.xl_names("n1")
    broken.write_text("")
    threading.Timer(1.5, broken.unlink).start()
    meta = {"OCF_RESKEY_CRM_meta_migrate_source": "n1", "OCF_RESKEY_CRM_meta_migrate_target": "n2"}
    to = lab2.agent("migrate_to", more=meta)
    assert to.rc == 0, to.err
    assert "xg1" in lab2.xl_names("n2")


def test_start_fails_within_its_timeout_when_the_toolstack_stays_down(lab2: Env) -> None:
    (lab2.tmp / "xl").mkdir(exist_ok=True)
    (lab2.tmp / "xl" / "n1.broken").write_text("")
    log = lab2.tmp / "log"
    began = time.monotonic()
    start = lab2.agent("start", timeout_ms=6000, HA_LOGFILE=str(log))
    took = time.monotonic() - began
    assert start.rc == 1 and start.reasons[0].startswith("cannot start xg1:")
    assert "does not answer" in log.read_text()
    assert took > 1.5, "it failed at once instead of waiting about half its time"
    assert took < 6, "it did not end inside its own timeout"


def test_live_migration_n1_to_n2(lab2: Env) -> None:
    assert lab2.agent("start").rc == 0
    meta = {"OCF_RESKEY_CRM_meta_migrate_source": "n1", "OCF_RESKEY_CRM_meta_migrate_target": "n2"}
    began = time.time()
    to = lab2.agent("migrate_to", more=meta)
    assert to.rc == 0, to.err
    assert int(time.time()) > int(began)  # ended in a later second than Pacemaker stamps it with
    assert "xg1" not in lab2.xl_names("n1") and "xg1" in lab2.xl_names("n2")
    frm = lab2.agent("migrate_from", node="n2", more=meta)
    assert frm.rc == 0, frm.err
    assert lab2.agent("stop").rc == 0  # Pacemaker's stop on the source after a migration
    assert lab2.agent("monitor", node="n2").rc == 0
    assert lab2.agent("monitor", node="n1").rc == 7


def test_migrate_from_fails_soon_when_the_domain_never_arrived(lab2: Env) -> None:
    """The source died in mid-migration and its migrate_to said "gone from here" (tandem-16801): the target
    waits a quarter of its timeout at most for a domain that is not there, then fails, so that Pacemaker
    recovers the VM instead of leaving it down for the whole migrate_from timeout."""
    assert lab2.agent("start").rc == 0
    lab2.tool("n1", "xl", "destroy", "xg1")
    meta = {"OCF_RESKEY_CRM_meta_migrate_source": "n1", "OCF_RESKEY_CRM_meta_migrate_target": "n2"}
    started = time.monotonic()
    frm = lab2.agent("migrate_from", node="n2", more=meta, timeout_ms=8000)
    assert frm.rc == 1 and time.monotonic() - started < 6.0, frm.err
    assert frm.reasons == ["xg1 did not arrive from n1; here it is absent (not in xl list)"], frm.reasons


def test_migrate_from_fails_soon_when_the_arrived_domain_dies(lab2: Env) -> None:
    """tandem-19967: the domain arrived, and its emulator died while migrate_from waited for it to pass its
    monitor scripts: it fails within a quarter of its timeout, not at its end, so that Pacemaker recovers
    the VM."""
    assert lab2.agent("start").rc == 0
    meta = {"OCF_RESKEY_CRM_meta_migrate_source": "n1", "OCF_RESKEY_CRM_meta_migrate_target": "n2"}
    assert lab2.agent("migrate_to", more=meta).rc == 0
    threading.Timer(1.0, lambda: lab2.tool("n2", "xl", "destroy", "xg1")).start()
    started = time.monotonic()
    frm = lab2.agent("migrate_from", node="n2", more=meta, timeout_ms=12000, monitor_scripts="/bin/false")
    assert frm.rc == 1 and time.monotonic() - started < 8.0, frm.err
    assert frm.reasons[0].startswith("xg1 went away while it was awaited"), frm.reasons


def test_a_start_on_frozen_io_waits_a_while_then_fails_instead_of_hanging(tmp_path: Path) -> None:
    """resource-and-stonith: the replication link breaks and fence-peer has not answered (here it never
    runs), so DRBD holds I/O. A start waits up to half its timeout for the thaw, then fails with the reason,
    rather than hang in the guest's first disk access and hold up the cluster's transition."""
    env = Env(tmp_path)
    env.config()
    fenced = RES.replace(
        "protocol C; }", 'protocol C; fencing resource-and-stonith; }\n  handlers { fence-peer "/bin/true"; }'
    )
    two_primaries(env, res=fenced)
    env.tool("n1", "drbd-emu", "cut", "n1", "n2")
    conf = str(env.tmp / "r0.res")
    wait(lambda: "Connected" not in env.tool("n1", "drbdadm", "-c", conf, "cstate", "r0"), "the cut")
    started = time.monotonic()
    start = env.agent("start", timeout_ms=8000)
    assert start.rc == 1 and 3.0 < time.monotonic() - started < 8.0
    assert start.reasons == ["cannot start xg1: r0 I/O is suspended (fencing)"], start.reasons
    assert "xg1" not in env.xl_names("n1")


def frozen_by_a_failed_fence_peer(
    tmp_path: Path, quorum: str, shutdown: str = "0.3", *, migrate: str = "0.3", cut: bool = True
) -> tuple[Env, dict[str, str]]:
    """resource-and-stonith, dual primary, xg1 running on n1: the link breaks (unless not `cut` yet: see
    freeze) and fence-peer fails (here it never runs), so DRBD holds n1's I/O. The agent's environment: a
    CIB file (with `quorum`) and a fake stonith_admin that notes whom it shoots in FAKES/shot."""
    from tandem.fence import Peer
    from tests.unit.test_fence import BOB, CIB

    env = Env(tmp_path)
    env.config(shutdown=shutdown, migrate=migrate)
    fenced = RES.replace(
        "protocol C; }",
        'protocol C; fencing resource-and-stonith; }\n  handlers { fence-peer "/bin/false"; }',
    )
    two_primaries(env, res=fenced)
    assert env.agent("start").rc == 0
    if cut:
        freeze(env)
    cib = tmp_path / "cib.xml"
    cib.write_text(
        CIB.format(quorum=quorum, bob=BOB[Peer.REACHABLE], extra="")
        .replace("alice", "n1")
        .replace("bob", "n2")
    )
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "stonith_admin").write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/shot"\n')
    (fakes / "stonith_admin").chmod(0o755)
    return env, {
        "CIB_file": str(cib),
        "TANDEM_EMU_CONF": str(tmp_path / "r0.res"),
        "PATH": f"{fakes}:{env.base('n1')['PATH']}",
        "OCF_RESKEY_CRM_meta_on_node": "n1",
    }


def freeze(env: Env) -> None:
    env.tool("n1", "drbd-emu", "cut", "n1", "n2")
    wait(lambda: "suspended:fencing" in env.tool("n1", "drbdsetup", "status", "r0"), "the freeze")


def test_a_stop_on_io_a_failed_fence_peer_froze_finishes_the_fencing_first(tmp_path: Path) -> None:
    """The guest could neither shut down nor, on a real kernel, be destroyed while DRBD holds its I/O. The
    stop decides as the handler would (STONITH of n2, constraint for n1), resumes I/O, then stops it."""
    env, more = frozen_by_a_failed_fence_peer(tmp_path, quorum="1")
    stop = env.agent("stop", timeout_ms=30000, more=more)
    assert stop.rc == 0, stop.err
    assert "suspended" not in env.tool("n1", "drbdsetup", "status", "r0")
    assert "n2" in (tmp_path / "fakes" / "shot").read_text()
    assert 'id="tandem-fence-r0"' in (tmp_path / "cib.xml").read_text()
    assert env.xl_names("n1") == []


def test_a_start_on_io_a_failed_fence_peer_froze_finishes_the_fencing_first(tmp_path: Path) -> None:
    """tandem-19602: the cluster fenced n2 and started xg1 here, on I/O a failed fence-peer had frozen;
    the start waited 7 s for the DRBD monitor to thaw it (it could have waited out FROZEN_WAIT and failed).
    It now decides as the handler would (STONITH of n2, constraint for n1), resumes I/O, then starts."""
    env, more = frozen_by_a_failed_fence_peer(tmp_path, quorum="1")
    env.tool("n1", "xl", "destroy", "xg1")
    start = env.agent("start", timeout_ms=30000, more=more)
    assert start.rc == 0, start.err
    assert "suspended" not in env.tool("n1", "drbdsetup", "status", "r0")
    assert "n2" in (tmp_path / "fakes" / "shot").read_text()
    assert 'id="tandem-fence-r0"' in (tmp_path / "cib.xml").read_text()
    assert env.xl_names("n1") == ["xg1"]


def test_a_migration_whose_io_a_failed_fence_peer_froze_finishes_the_fencing(tmp_path: Path) -> None:
    """tandem-21042: the replication link broke mid-migration and fence-peer failed, so the source's I/O froze
    under a migration that could then neither switch over nor be aborted; the DRBD monitor that would have
    thawed it was killed with its controller, and migrate_to waited out its timeout. It now decides as the
    handler would while the migration runs (STONITH of n2, constraint for n1) and resumes I/O."""
    env, more = frozen_by_a_failed_fence_peer(tmp_path, quorum="1", migrate="15", cut=False)
    to = env.agent_in_background(
        "migrate_to", timeout_ms=40000, more=more, OCF_RESKEY_CRM_meta_migrate_target="n2"
    )
    wait(lambda: any(n.endswith("--incoming") for n in env.xl_names("n2")), "the migration to begin")
    freeze(env)
    wait(lambda: "suspended" not in env.tool("n1", "drbdsetup", "status", "r0"), "the thaw", seconds=20)
    assert to.poll() is None  # thawed while the migration ran
    _, err = to.communicate(timeout=60)
    assert to.returncode == 0, err
    assert "n2" in (tmp_path / "fakes" / "shot").read_text()
    assert 'id="tandem-fence-r0"' in (tmp_path / "cib.xml").read_text()


def test_a_stop_decides_again_when_quorum_returns_while_it_waits(tmp_path: Path) -> None:
    """tandem-17945: the stop began in a partition without quorum, so it could not fence and left I/O
    frozen; quorum came back 4 s later, but the stop waited out its whole timeout on a guest that could not
    shut down (nothing else ran to thaw it). It now decides again while it waits (a guest here that takes
    8 s to go; quorum back after 2 s)."""
    env, more = frozen_by_a_failed_fence_peer(tmp_path, quorum="0", shutdown="8")
    cib = tmp_path / "cib.xml"
    stop = env.agent_in_background("stop", timeout_ms=30000, more=more)
    time.sleep(2)
    cib.write_text(cib.read_text().replace('have-quorum="0"', 'have-quorum="1"'))
    _, err = stop.communicate(timeout=60)
    assert stop.returncode == 0, err
    assert "suspended" not in env.tool("n1", "drbdsetup", "status", "r0")  # resumed while it waited
    assert "n2" in (tmp_path / "fakes" / "shot").read_text()


def test_migration_refused_when_the_target_drbd_is_not_primary(lab2: Env) -> None:
    assert lab2.agent("start").rc == 0
    lab2.tool("n2", "drbdadm", "-c", str(lab2.tmp / "r0.res"), "secondary", "r0")
    to = lab2.agent("migrate_to", OCF_RESKEY_CRM_meta_migrate_target="n2")
    assert to.rc == 1
    assert to.reasons == ["migration of xg1 to n2 refused: r0 is Secondary on n2, not Primary"]
    assert "xg1" in lab2.xl_names("n1") and lab2.xl_names("n2") == []
    # and a start there is refused too: its disks are not writable
    start = lab2.agent("start", node="n2")
    assert start.rc == 1 and "r0 is Secondary here, not Primary" in start.reasons[0]


def test_migration_that_runs_out_of_time_is_aborted(lab2: Env) -> None:
    lab2.config(migrate="60")
    assert lab2.agent("start").rc == 0
    started = time.monotonic()
    to = lab2.agent("migrate_to", timeout_ms=15000, OCF_RESKEY_CRM_meta_migrate_target="n2")
    assert to.rc == 1 and time.monotonic() - started < 15
    assert "did not finish" in to.reasons[0] and "running" in to.reasons[0]
    assert lab2.agent("monitor").rc == 0  # still running on the source
    wait(lambda: lab2.xl_names("n2") == [], "the target to drop the incoming copy")


def test_stop_and_monitor_without_a_readable_config(lab2: Env) -> None:
    assert lab2.agent("start").rc == 0
    (lab2.tmp / "xg1.cfg").rename(lab2.tmp / "moved.cfg")
    # the name recorded at start still finds the domain: never "not running" while it runs (RA#856)
    assert lab2.agent("monitor").rc == 0
    assert lab2.agent("start").rc == 5
    assert lab2.agent("stop").rc == 0
    assert "xg1" not in lab2.xl_names("n1")
    assert lab2.agent("monitor").rc == 7
    fresh = lab2.agent("monitor", node="n2")  # nothing recorded there, no name parameter
    assert fresh.rc == 1 and "which domain" in fresh.reasons[0]
    assert lab2.agent("monitor", node="n2", name="xg1").rc == 7


def test_bad_parameters(lab2: Env) -> None:
    assert lab2.agent("validate-all", migration_transport="http").rc == 6
    assert lab2.agent("validate-all", migrate_options="--persistent").rc == 6
    assert lab2.agent("validate-all", config="relative.cfg").rc == 6
    assert lab2.agent("validate-all", name="other").rc == 6
    assert lab2.agent("migrate_to").rc == 1  # no target: Pacemaker always sets one


def fake_qemu(name: str) -> subprocess.Popen[bytes]:
    """A process the process table reads as libvirt's qemu for `name` (python under qemu's argv[0])."""
    argv = ["/usr/bin/qemu-system-x86_64", "-c", "import time; time.sleep(120)", "-name", f"guest={name},x=y"]
    return subprocess.Popen(argv, executable=sys.executable)


def test_libvirtd_down_is_not_stopped(tmp_path: Path) -> None:
    env = Env(tmp_path)
    xml = tmp_path / "tlmvm.xml"
    xml.write_text("<domain type='qemu'><name>tlmvm-agent</name><memory unit='MiB'>64</memory></domain>")
    down = {
        "OCF_RESKEY_config": str(xml),
        "OCF_RESKEY_hypervisor": f"qemu+unix:///system?socket={tmp_path}/no-libvirt-sock",
    }
    assert env.agent("monitor", more=down).rc == 7  # no libvirtd and no qemu: positively not running
    qemu = fake_qemu("tlmvm-agent")
    try:
        wait(lambda: Path(f"/proc/{qemu.pid}/cmdline").read_bytes().startswith(b"/usr/bin/qemu"), "fake qemu")
        for interval in ("0", "10000"):
            assert env.agent("monitor", OCF_RESKEY_CRM_meta_interval=interval, more=down).rc == 190
        assert env.agent("start", timeout_ms=3000, more=down).rc == 1  # cannot start what it cannot see
        stop = env.agent("stop", more=down)
        assert stop.rc == 0, stop.err
        assert qemu.wait(timeout=10) is not None  # the emulator was killed, not forgotten
    finally:
        qemu.kill()
        qemu.wait()


def test_libvirt_test_driver_monitor(tmp_path: Path) -> None:
    """test:///default always has a running domain "test" (its state lasts one connection, enough here)."""
    env = Env(tmp_path)
    xml = tmp_path / "test.xml"
    xml.write_text("<domain type='test'><name>test</name></domain>")
    run = env.agent("monitor", config=str(xml), hypervisor="test:///default")
    assert run.rc == 0, run.err
    xml.write_text("<domain type='test'><name>absent</name></domain>")
    assert env.agent("monitor", config=str(xml), hypervisor="test:///default").rc == 7


def test_ocf_tester_passes(lab2: Env) -> None:
    env = {k: v for k, v in lab2.base("n1").items() if not k.startswith("OCF_RESKEY")}
    proc = subprocess.run(
        ["ocf-tester", "-n", "vm", "-o", f"config={lab2.tmp / 'xg1.cfg'}", str(AGENT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{AGENT} passed all tests" in proc.stdout


def test_ocft_config_passes(tmp_path: Path) -> None:
    """ocft/domain, pointed at this checkout (ocft itself writes its cases under /var/lib/resource-agents)."""
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "domain").symlink_to(AGENT)
    (tmp_path / "cfg").mkdir()
    text = (TOP / "ocft" / "domain").read_text()
    text = text.replace("AgentRoot /usr/lib/ocf/resource.d/tandem", f"AgentRoot {tmp_path / 'root'}")
    text = text.replace("OCFT_top=/usr/share/tandem", f"OCFT_top={TOP}")
    text = text.replace("/tmp/tandem-ocft-domain", str(tmp_path / "run"))
    (tmp_path / "cfg" / "domain").write_text(text)
    env = {**os.environ, "TANDEM_LIBDIR": str(LIB)}
    made = subprocess.run(
        ["ocft", "make", "-d", str(tmp_path / "cfg"), "domain"], env=env, capture_output=True
    )
    assert made.returncode == 0, made.stderr
    run = subprocess.run(["ocft", "test", "domain"], env=env, capture_output=True, text=True, timeout=600)
    cases = [ln for ln in run.stdout.splitlines() if ln.startswith("domain: ")]
    assert len(cases) == text.count('\nCASE "'), run.stdout
    assert all(ln.endswith("OK\x1b[0m.") or ln.endswith("OK.") for ln in cases), run.stdout


def test_monitor_scripts_reload_and_utilization_written_once(lab2: Env) -> None:
    bin_dir = lab2.tmp / "bin"
    bin_dir.mkdir()
    calls = lab2.tmp / "crm_resource.calls"
    crm = bin_dir / "crm_resource"  # records its argv, as the CIB write it stands for
    crm.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    crm.chmod(0o755)
    check = lab2.tmp / "check"
    check.write_text("#!/bin/sh\necho 'guest agent: no answer' >&2\nexit 3\n")
    check.chmod(0o755)
    pacemaker = {
        "PATH": f"{bin_dir}:{XL_BIN}:{EMU_BIN}:{os.environ['PATH']}",
        "OCF_RESKEY_crm_feature_set": "3.16.2",
        "OCF_RESKEY_CRM_meta_interval": "10000",
    }
    assert lab2.agent("start").rc == 0
    for _ in range(3):
        assert lab2.agent("monitor", more=pacemaker).rc == 0
    assert calls.read_text().splitlines() == [
        "--resource vm --utilization --set-parameter cpu --parameter-value 2",
        "--resource vm --utilization --set-parameter hv_memory --parameter-value 256",
    ]  # three monitors, one write of each value
    assert lab2.agent("reload", more=pacemaker).rc == 0
    assert len(calls.read_text().splitlines()) == 2
    failed = lab2.agent("monitor", more=pacemaker, monitor_scripts=str(check))
    assert failed.rc == 1
    assert failed.reasons == ["monitor script check failed: guest agent: no answer"]
    assert lab2.agent("stop").rc == 0


def test_target_check_on_drbd_84(tmp_path: Path) -> None:
    """DRBD 8.4 has no `drbdsetup status`: the peer's role and disk come from /proc/drbd (ro:, ds:)."""
    from lab.drbd_emu.install import node_env

    env = Env(tmp_path)
    env.config()
    two_primaries(env, "--mode", "8.4")
    # drbd-utils 8.4's drbdsetup has no `status` (the emulator answers it in both modes): refuse it like 8.4
    bin_dir = tmp_path / "bin84"
    bin_dir.mkdir()
    (bin_dir / "drbdsetup").write_text(
        '#!/bin/sh\n[ "$1" = status ] && { echo "drbdsetup: unknown command \'status\'" >&2; exit 20; }\n'
        f'exec {EMU_BIN / "drbdsetup"} "$@"\n'
    )
    (bin_dir / "drbdsetup").chmod(0o755)
    proc = {
        **node_env(tmp_path / "emu", "n1"),
        "TANDEM_EMU_DEVICES": "",
        "TANDEM_EMU_CONF": str(tmp_path / "r0.res"),  # drbdadm's /etc/drbd.conf
        "PATH": f"{bin_dir}:{XL_BIN}:{EMU_BIN}:{os.environ['PATH']}",
    }
    assert env.agent("start", more=proc).rc == 0
    target = {**proc, "OCF_RESKEY_CRM_meta_migrate_target": "n2"}
    env.tool("n2", "drbdadm", "-c", str(tmp_path / "r0.res"), "secondary", "r0")
    refused = env.agent("migrate_to", more=target)
    assert refused.rc == 1 and refused.reasons == [
        "migration of xg1 to n2 refused: r0 is Secondary on n2, not Primary"
    ]
    env.tool("n2", "drbdadm", "-c", str(tmp_path / "r0.res"), "primary", "r0")
    moved = env.agent("migrate_to", more=target)
    assert moved.rc == 0, moved.err
    assert env.xl_names("n2") == ["xg1"]


RES3 = """resource r0 {
  net { allow-two-primaries yes; protocol C; }
  volume 0 { device minor 1000; disk /dev/fake0; meta-disk internal; }
  on n1 { node-id 0; address 10.0.0.1:7789; }
  on n2 { node-id 1; address 10.0.0.2:7789; }
  on n3 { node-id 2; address 10.0.0.3:7789; volume 0 { disk none; } }
  connection-mesh { hosts n1 n2 n3; }
}
"""


@pytest.fixture
def lab3(tmp_path: Path) -> Iterator[Env]:
    """n1 and n2 with UpToDate data (n1 Primary), n3 an intentional diskless client; the xl config."""
    env = Env(tmp_path)
    env.config()
    (tmp_path / "r0.res").write_text(RES3)
    conf = str(tmp_path / "r0.res")
    env.tool("n1", "drbd-emu", "init")
    for node in ("n1", "n2", "n3"):
        env.tool(node, "drbdadm", "-c", conf, "up", "r0")
    env.tool("n1", "drbdadm", "-c", conf, "primary", "--force", "r0")
    wait(
        lambda: "UpToDate" in env.tool("n2", "drbdadm", "-c", conf, "dstate", "r0").split("/")[0], "the sync"
    )
    yield env


def test_live_migration_onto_a_diskless_client_and_back(lab3: Env) -> None:
    conf = str(lab3.tmp / "r0.res")
    assert lab3.agent("start").rc == 0
    lab3.tool("n3", "drbdadm", "-c", conf, "primary", "r0")  # the dual-primary window, as the clone does
    meta = {"OCF_RESKEY_CRM_meta_migrate_source": "n1", "OCF_RESKEY_CRM_meta_migrate_target": "n3"}
    to = lab3.agent("migrate_to", more=meta)
    assert to.rc == 0, to.err
    assert "xg1" in lab3.xl_names("n3") and "xg1" not in lab3.xl_names("n1")
    assert lab3.agent("migrate_from", node="n3", more=meta).rc == 0
    assert lab3.agent("stop").rc == 0
    assert lab3.agent("monitor", node="n3").rc == 0
    back = {"OCF_RESKEY_CRM_meta_migrate_source": "n3", "OCF_RESKEY_CRM_meta_migrate_target": "n1"}
    to = lab3.agent("migrate_to", node="n3", more=back)
    assert to.rc == 0, to.err
    assert "xg1" in lab3.xl_names("n1")


def test_a_diskless_client_without_an_uptodate_peer_refuses_the_start(lab3: Env) -> None:
    conf = str(lab3.tmp / "r0.res")
    lab3.tool("n3", "drbdadm", "-c", conf, "primary", "r0")
    lab3.tool("n1", "drbd-emu", "cut", "n3", "n1")
    lab3.tool("n1", "drbd-emu", "cut", "n3", "n2")
    wait(lambda: "Connected" not in lab3.tool("n3", "drbdadm", "-c", conf, "cstate", "r0"), "the cut")
    start = lab3.agent("start", node="n3")
    assert start.rc == 1
    assert len(start.reasons) == 1
    assert "r0/0 is a diskless client here without a connected UpToDate peer" in start.reasons[0], (
        start.reasons
    )


def peer_runs_test_domain(env: Env, virsh: str = "") -> dict[str, str]:
    """The start's parameters and environment when libvirt's test driver stands in for two nodes: the peer
    is test:///default, whose domain "test" always runs; here an empty test node. A fake crm_resource (and
    `virsh`, a script given) record their calls in BIN/NAME.calls."""
    bin_dir = env.tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "crm_resource").write_text(f'#!/bin/sh\necho "$*" >> {bin_dir}/crm_resource.calls\n')
    (bin_dir / "crm_resource").chmod(0o755)
    if virsh:
        (bin_dir / "virsh").write_text(virsh)
        (bin_dir / "virsh").chmod(0o755)
    empty = env.tmp / "empty-node.xml"
    empty.write_text("<node/>")
    xml = env.tmp / "test.xml"
    xml.write_text("<domain type='test'><name>test</name></domain>")
    return {
        "PATH": f"{bin_dir}:{EMU_BIN}:{os.environ['PATH']}",
        "OCF_RESKEY_CRM_meta_on_node": "n1",
        "OCF_RESKEY_config": str(xml),
        "OCF_RESKEY_hypervisor": f"test://{empty}",
        "OCF_RESKEY_remote_uri": "test:///default",
        "OCF_RESKEY_drbd_resources": "r0",
    }


def test_a_start_that_cannot_bring_the_peer_copy_here_refuses_and_has_it_probed(lab2: Env) -> None:
    """tandem-17903: Pacemaker lost a partial migration and started the domain where it did not run, while
    it ran on the target. The test driver cannot migrate, so the start refuses; and it asks for a refresh of
    the resource on the peer, so that Pacemaker manages that copy instead of leaving it unwatched. (The
    try itself is seen in the next test.)"""
    run = lab2.agent("start", more=peer_runs_test_domain(lab2))
    assert run.rc == 1, run.err
    assert run.reasons == ["test is running (running) on n2: refusing to start it a second time"]
    calls = (lab2.tmp / "bin" / "crm_resource.calls").read_text().splitlines()
    assert calls == ["--refresh --resource vm --node n2"]


FAKE_MIGRATING_VIRSH = """#!/usr/bin/python3
# virsh, but `migrate` succeeds and moves "test" here: afterwards the empty local node is test:///default
import os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
with open(os.path.join(here, "virsh.calls"), "a") as fh:
    fh.write(" ".join(args) + "\\n")
if "migrate" in args:  # FAKE_MIGRATE_RC=1: an error after the switch-over
    open(os.path.join(here, "migrated"), "w").close()
    sys.exit(int(os.environ.get("FAKE_MIGRATE_RC", "0")))
if os.path.exists(os.path.join(here, "migrated")):
    args = ["test:///default" if a.startswith("test:///") and "empty-node" in a else a for a in args]
path = [p for p in os.environ["PATH"].split(":") if p != here]
real = next(os.path.join(p, "virsh") for p in path if os.path.exists(os.path.join(p, "virsh")))
os.execv(real, ["virsh", *args])
"""


@pytest.mark.parametrize("migrate_rc", ["0", "1"])
def test_a_start_brings_a_copy_pacemaker_lost_here_live(lab2: Env, migrate_rc: str) -> None:
    """The same, with a libvirt that can migrate (a fake virsh): the start live-migrates the peer's copy
    here, as Pacemaker wants the domain here and believes it runs nowhere else; nothing to refuse. A
    migration that fails after the switch-over has brought it here all the same."""
    more = {**peer_runs_test_domain(lab2, FAKE_MIGRATING_VIRSH), "FAKE_MIGRATE_RC": migrate_rc}
    run = lab2.agent("start", more=more)
    assert run.rc == 0, run.err
    calls = (lab2.tmp / "bin" / "virsh.calls").read_text().splitlines()
    assert [c for c in calls if " migrate " in c] == [
        "--quiet --connect test:///default migrate --live test test:///default"
    ]
    assert not (lab2.tmp / "bin" / "crm_resource.calls").exists()
