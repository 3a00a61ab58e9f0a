# SPDX-License-Identifier: GPL-2.0-or-later
"""tandem-disconnected's watcher: the score follows the DRBD state until no connection is on its way back,
with the agent's policy, once per change, and never after the agent's stop removed it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tandem import watch as watcher
from tandem.drbd.tools import score_lock
from tandem.fence import HandlerEnv, Scored, write_agent_score
from tandem.ocf.deadline import Deadline
from tandem.ocf.log import Logger
from tandem.ocf.runner import Result
from tandem.ocf.state import FileLock, StateFiles
from tests.unit.test_fence import CIB, ENV, Cluster

BOB = '<node_state id="2" uname="bob" in_ccm="true" crmd="online" join="member" expected="member"/>'


@dataclass
class Timeline(Cluster):
    """The connection to bob goes through `states`, one per second of the watcher's clock; "down" is a
    resource that is no longer configured."""

    states: tuple[str, ...] = ()
    second: int = 0

    def answer(self, argv: tuple[str, ...], timeout: float) -> Result:
        if argv[0] == "drbdsetup":
            state = self.states[min(self.second, len(self.states) - 1)]
            if state == "down":
                return Result(argv, 10, "", "r0: No such resource")
            self.connection = state
        return super().answer(argv, timeout)

    def scores(self) -> list[tuple[str, ...]]:
        return [c[4:] for c in self.calls if c[0] == "crm_attribute"]

    def cib_reads(self) -> int:
        return sum(1 for c in self.calls if c[:2] == ("cibadmin", "--query"))


@pytest.fixture(autouse=True)
def rsctmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HA_RSCTMP", str(tmp_path / "rsctmp"))
    return tmp_path / "rsctmp"


def cluster(tmp_path: Path, *states: str) -> Timeline:
    cib = tmp_path / "cib.xml"
    cib.write_text(CIB.format(quorum="1", bob=BOB, extra=""))
    return Timeline(cib, role="Secondary", states=states)


def run(c: Timeline, env: dict[str, str] = ENV, limit: float = 60) -> tuple[str, list[float]]:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        c.second = int(now[0])

    why = watcher.watch(
        HandlerEnv.parse(env), c, Logger("test"), clock=lambda: now[0], sleep=sleep, limit=limit
    )
    return why, slept


def test_the_score_comes_back_with_the_connection_not_at_the_next_monitor(tmp_path):
    c = cluster(tmp_path, "Connecting", "Connecting", "Connecting", "Connected")
    why, slept = run(c)
    assert why == "no connection is on its way back"
    assert slept == [watcher.POLL] * 4  # a read per second; a state is written once it held a second
    lowered, back = c.scores()  # one write per change of the state, none while it stays the same
    assert lowered[-2:] != ("-v", "10000") and back[-2:] == ("-v", "10000")
    assert c.cib_reads() == 2


def test_the_watcher_ends_when_the_resource_goes_down(tmp_path):
    c = cluster(tmp_path, "Connecting", "Connecting", "down")
    assert run(c)[0] == "the resource is down"
    assert len(c.scores()) == 1


def test_a_connection_taken_standalone_by_hand_is_not_waited_for(tmp_path):
    c = cluster(tmp_path, "StandAlone")
    assert run(c)[0] == "no connection is on its way back"
    assert len(c.scores()) == 1  # the agent's score for that state, once


def test_a_peer_that_never_returns_is_watched_for_a_bounded_time(tmp_path):
    c = cluster(tmp_path, "Connecting")
    why, slept = run(c, limit=30)
    assert why == "still waiting after 30s; the monitors take over"
    assert sum(slept) == 30 and len(c.scores()) == 1 and c.cib_reads() == 1


def test_a_resource_no_clone_manages_ends_the_watcher_at_once(tmp_path):
    c = cluster(tmp_path, "Connecting")
    c.cib.write_text(
        c.cib.read_text().replace('name="drbd_resource" value="r0"', 'name="drbd_resource" value="r9"')
    )
    assert run(c)[0] == "no ocf:tandem:drbd clone manages the resource"
    assert c.scores() == [] and c.cib_reads() == 1


def test_a_failed_write_is_tried_again_at_the_next_read(tmp_path):
    c = cluster(tmp_path, "Connecting", "Connecting", "Connecting", "Connected")
    c.cib_down = 1
    assert run(c)[0] == "no connection is on its way back"
    assert c.cib_reads() == 3 and len(c.scores()) == 2  # the failed read, its retry, the reconnection


def test_a_flapping_link_makes_no_transition_of_every_flap(tmp_path):
    c = cluster(tmp_path, "Connected", "Connecting", "Connected", "Connecting", "Connected", "Connected")
    assert run(c)[0] == "no connection is on its way back"
    assert c.scores() == [("-v", "10000")]  # written once, when the state held


def test_one_watcher_per_resource(tmp_path, monkeypatch):
    monkeypatch.setattr(watcher, "LOCK_WAIT", 0)
    c = cluster(tmp_path, "Connecting")
    with FileLock(StateFiles.of("watch", "r0").path("lock"), Deadline.after(0)):
        assert run(c)[0] == "another watcher runs for this resource"
    assert c.calls == []


def test_no_score_is_written_while_the_agents_stop_holds_the_score_lock(tmp_path):
    """The stop removes the score under this lock once the resource is down: a handler that read the
    resource before cannot write after it."""
    c = cluster(tmp_path, "Connecting")
    with score_lock("r0", Deadline.after(0)):
        assert write_agent_score(HandlerEnv.parse(ENV), c, Logger("test"), 1, "test") is Scored.FAILED
    assert c.calls == []
    assert write_agent_score(HandlerEnv.parse(ENV), c, Logger("test"), 1, "test") is Scored.HELD


def test_the_handler_answers_at_once_and_leaves_the_watcher_detached(tmp_path, monkeypatch):
    forked: list[bool] = []

    def fork() -> int:
        forked.append(True)
        return 4242  # the parent's side: the watcher's pid

    monkeypatch.setattr(os, "fork", fork)
    monkeypatch.setattr(os, "environ", {**ENV, "HA_RSCTMP": str(tmp_path)})
    assert watcher.main([]) == 0 and forked == [True]


def test_the_handler_refuses_a_bad_resource_name_without_forking(monkeypatch):
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked"))
    monkeypatch.setattr(os, "environ", {**ENV, "DRBD_RESOURCE": "r0; reboot"})
    assert watcher.main([]) == 0
