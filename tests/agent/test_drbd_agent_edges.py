# SPDX-License-Identifier: GPL-2.0-or-later
"""ocf:tandem:drbd at the edges of its monitor: the tool calls of a steady monitor, a node without drbdsetup,
DRBD output that does not parse, a resource that went down behind the agent's back, and I/O a failed
fence-peer left frozen."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tandem.fence import Peer
from tests.agent.test_drbd_agent import EMU_BIN, NODES, Emu, start_both
from tests.unit.test_fence import BOB, CIB, STALE


@pytest.fixture(params=[False, True], ids=["single", "dual"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Emu]:
    emu = Emu(tmp_path, dual=request.param)
    emu.uptodate_pair()
    start_both(emu)
    yield emu
    for node in NODES:
        emu.adm(node, "down", "r0")


def traced(emu: Emu, action: str, **extra: str) -> tuple[int, list[str]]:
    """The agent's exit code and the DRBD calls it made (the emulator logs each call)."""
    trace = emu.root / "trace"
    trace.unlink(missing_ok=True)
    run = emu.agent("alice", action, TANDEM_EMU_TRACE=str(trace), **extra)
    calls = trace.read_text().splitlines() if trace.exists() else []
    return run.rc, [" ".join(c.split()[1:3]) for c in calls]


def test_a_steady_monitor_makes_one_drbd_call(pair: Emu) -> None:
    assert pair.agent("alice", "monitor").rc == 0  # the first one may read the configuration
    for _ in range(2):
        assert traced(pair, "monitor") == (0, ["drbdsetup status"])
    if pair.base["OCF_RESKEY_CRM_meta_promoted_max"] == "2":
        # a changed configuration is read again (allow-two-primaries may be gone)
        os.utime(pair.conf, ns=(1, 1))
        rc, calls = traced(pair, "monitor")
        assert rc == 0 and calls[0].startswith("drbdadm") and calls[-1] == "drbdsetup status"
        pair.conf.write_text(pair.conf.read_text().replace("allow-two-primaries yes;", ""))
        run = pair.agent("alice", "monitor")
        assert run.rc == 6 and "allow-two-primaries" in run.reason


def test_a_probe_without_drbdsetup_is_not_running(pair: Emu, tmp_path: Path) -> None:
    only_drbdadm = tmp_path / "only-drbdadm"
    only_drbdadm.mkdir()
    (only_drbdadm / "drbdadm").symlink_to(EMU_BIN / "drbdadm")
    path = f"{only_drbdadm}:{pair.root / 'fakebin'}:/usr/bin:/bin"
    assert pair.agent("alice", "monitor", PATH=path, OCF_RESKEY_CRM_meta_interval="0").rc == 7
    run = pair.agent("alice", "monitor", PATH=path)
    assert run.rc == 5 and "drbdsetup" in run.reason


def test_drbd_output_that_does_not_parse_is_one_line(pair: Emu, tmp_path: Path) -> None:
    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / "drbdsetup").write_text(
        '#!/bin/sh\necho \'[{"name": "r0", "role": "Primary", "devices": [\'\n'
    )
    (garbled / "drbdsetup").chmod(0o755)
    run = pair.agent("alice", "monitor", PATH=f"{garbled}:{pair.base['PATH']}")
    assert run.rc == 1
    assert run.reason.startswith("ocf-exit-reason:cannot read the DRBD state: drbdsetup status --json:")
    assert "Traceback" not in run.err and len(run.reason.splitlines()) == 1


def test_a_recurring_monitor_that_finds_it_down_removes_the_score(pair: Emu) -> None:
    assert pair.agent("alice", "monitor").rc == 0
    assert pair.score("alice") == "10000"
    assert pair.adm("alice", "down", "r0").returncode == 0  # behind the agent's back
    assert pair.agent("alice", "monitor").rc == 7
    assert pair.score("alice") is None


def test_a_fencing_freeze_no_handler_ends_is_finished_by_the_monitor(tmp_path: Path) -> None:
    """resource-and-stonith: alice, Primary, loses bob; DRBD freezes I/O for fence-peer, which never
    answers here (no kernel runs the handler: a broken or killed helper). A monitor that finds the freeze
    older than its grace decides as the handler would (bob is in the cluster: the constraint keeps him from
    promotion) and resumes I/O; the first monitor only notes the freeze."""
    emu = Emu(tmp_path)
    emu.conf.write_text(
        emu.conf.read_text().replace(
            "protocol C; ",
            'protocol C; fencing resource-and-stonith; }\n  handlers { fence-peer "/bin/false"; ',
        )
    )
    emu.uptodate_pair()
    start_both(emu)
    assert emu.agent("alice", "promote").rc == 0
    promoted = {
        "OCF_RESKEY_CRM_meta_role": "Promoted",
        "OCF_RESKEY_CRM_meta_timeout": "30000",
        "OCF_RESKEY_CRM_meta_on_node": "alice",
    }
    frozen = tmp_path / "rsctmp-alice" / "tandem-drbd-drbd-r0.frozen"
    frozen.write_text(f"{time.time() - 50} {time.time() - 5}\n")  # tandem-19702: a freeze that ended
    assert emu.agent("alice", "monitor", **promoted).rc == 8
    assert not frozen.exists()  # forgotten: the next freeze gets its whole grace
    emu.emu("cut", "alice", "bob")
    assert emu.wait("alice", lambda r: r["suspended"] == ["fencing"])["suspended"] == ["fencing"]  # type: ignore[index]
    assert emu.agent("alice", "monitor", **promoted).rc == 191  # degraded: frozen while fence-peer runs
    assert emu.raw("alice")["suspended"] == ["fencing"]  # type: ignore[index]
    first, last = (float(t) for t in frozen.read_text().split())
    frozen.write_text(f"{first - 6} {last}\n")  # the grace (5 s) has passed
    assert emu.agent("alice", "monitor", **promoted).rc == 191  # still degraded: bob is gone
    assert emu.raw("alice")["suspended"] == []  # type: ignore[index]
    constraints = [line for line in emu.cib.read_text().splitlines() if "tandem-fence-r0" in line]
    assert constraints and 'value="alice"' in "".join(constraints)
    assert not frozen.exists()
    for node in NODES:
        emu.adm(node, "down", "r0")


def test_a_fencing_constraint_left_over_is_removed_by_the_monitor_of_the_node_that_placed_it(
    pair: Emu,
) -> None:
    """tandem-18523: the resync ended while the cluster stack restarted, DRBD's unfence-peer could not read
    the CIB, and no notification came afterwards: alice's constraint kept bob from promotion for good. The
    monitor on the node that placed it (its PLACED mark) removes it once every peer is UpToDate; without
    the mark a monitor reads no CIB."""
    pair.cib.write_text(CIB.format(quorum="1", bob=BOB[Peer.REACHABLE], extra=STALE))
    assert traced(pair, "monitor") == (0, ["drbdsetup status"])
    assert "tandem-fence-r0" in pair.cib.read_text()  # no mark: not looked for
    mark = pair.root / "rsctmp-alice" / "tandem-fence-r0.placed"
    mark.write_text("1\n")
    assert pair.agent("alice", "monitor", OCF_RESKEY_CRM_meta_on_node="alice").rc == 0
    assert "tandem-fence-r0" not in pair.cib.read_text() and not mark.exists()
    assert "user-pref" in pair.cib.read_text()


def test_a_resource_up_without_its_peer_is_connected_by_the_monitor(pair: Emu) -> None:
    """bob's DRBD brought up by hand with only its disk (`drbdadm attach` on a resource that was down): the
    probe says running, and nothing would ever connect it; the recurring monitor adjusts it, and bob's disk
    becomes UpToDate again."""
    assert pair.adm("bob", "down", "r0").returncode == 0
    assert pair.adm("bob", "attach", "r0").returncode == 0
    assert pair.raw("bob")["conns"] == {}  # type: ignore[index]
    assert pair.agent("bob", "monitor", OCF_RESKEY_CRM_meta_interval="0").rc in (0, 190)  # a probe: as found
    assert pair.raw("bob")["conns"] == {}  # type: ignore[index]
    pair.agent("bob", "monitor")
    raw = pair.wait("bob", lambda r: r["conns"] and r["conns"]["alice"]["state"] == "Connected")
    assert raw is not None and raw["conns"]["alice"]["state"] == "Connected"
