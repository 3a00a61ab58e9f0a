# SPDX-License-Identifier: GPL-2.0-or-later
"""PromotionScore against a model of Pacemaker's two stores of a node attribute: pacemaker-attrd, and the CIB
that attrd writes to only when a value changes (2.1.5 `update_attr_on_host`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tandem.drbd.policy import Decision
from tandem.drbd.tools import PromotionScore, attrd_value, primary_refused
from tandem.ocf.log import Logger
from tandem.ocf.runner import Result
from tests.fakes import RecordingRunner


@dataclass
class Pacemaker(RecordingRunner):
    attrd: str | None = None
    cib: str | None = None

    def answer(self, argv: tuple[str, ...], timeout: float) -> Result:
        if argv[0] == "attrd_updater":
            if "--refresh" in argv:
                self.cib = self.attrd
                return Result(argv, 0, "", "")
            if self.attrd is None:
                return Result(argv, 105, "", "Could not query value of x: attribute does not exist")
            return Result(argv, 0, f'name="{argv[-1]}" host="n1" value="{self.attrd}"\n', "")
        if "-G" in argv:
            if self.cib is None:
                return Result(argv, 105, "", "Error performing operation: No such device or address")
            return Result(argv, 0, f"{self.cib}\n", "")
        value = argv[argv.index("-v") + 1] if "-v" in argv else None
        if value != self.attrd:  # attrd drops a write of the value it already holds
            self.attrd = self.cib = value
        return Result(argv, 0, "", "")


@pytest.fixture
def rsctmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HA_RSCTMP", str(tmp_path))
    return tmp_path


def score(runner: Pacemaker) -> PromotionScore:
    return PromotionScore(runner, Logger("test"), "drbd-r0")


def test_attrd_value_reads_the_query_output() -> None:
    assert attrd_value('name="master-drbd-r0" host="node2" value="10000"\n') == "10000"
    assert attrd_value('name="master-drbd-r0" host="node2" value=""') is None
    assert attrd_value("") is None


def test_a_score_the_cib_lost_is_refreshed_from_attrd(rsctmp: Path) -> None:
    pcmk = Pacemaker(attrd="10000", cib=None)  # the DC erased this node's transient attributes
    assert score(pcmk).apply(Decision(10000, "UpToDate"), verify=True)
    assert pcmk.cib == "10000"
    assert pcmk.calls[-1] == ("attrd_updater", "--refresh")


def test_a_first_score_is_written_not_refreshed(rsctmp: Path) -> None:
    pcmk = Pacemaker()
    assert score(pcmk).apply(Decision(1000, "peer unknown"), verify=True)
    assert pcmk.cib == "1000"
    assert not any("--refresh" in call for call in pcmk.calls)


def test_an_unchanged_score_forks_nothing_on_a_monitor(rsctmp: Path) -> None:
    pcmk = Pacemaker()
    assert score(pcmk).apply(Decision(10000, "UpToDate"))
    pcmk.calls.clear()
    assert score(pcmk).apply(Decision(10000, "UpToDate"))
    assert pcmk.calls == []


decisions = st.sampled_from([Decision(None, "no data"), Decision(1000, "peer"), Decision(10000, "ok")])


@settings(max_examples=60)
@given(steps=st.lists(st.tuples(decisions, st.booleans(), st.booleans()), min_size=1, max_size=8))
def test_a_verified_apply_leaves_the_cib_holding_the_decision(
    steps: list[tuple[Decision, bool, bool]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever came before (scores written, the CIB's copy erased), start and probe (verify) end with the
    CIB holding what the policy decided."""
    tmp = tmp_path_factory.mktemp("rsctmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HA_RSCTMP", str(tmp))
        pcmk = Pacemaker()
        for decision, cib_lost, verify in steps:
            if cib_lost:
                pcmk.cib = None
            assert score(pcmk).apply(decision, verify=verify)
            if verify:  # and attrd agrees: its next write of any node's value must not bring back another
                assert pcmk.cib == pcmk.attrd == (None if decision.score is None else str(decision.score))


def test_a_removed_score_that_attrd_still_holds_is_deleted_there_too(rsctmp: Path) -> None:
    """tandem-17210: the node's controller restarted, the DC erased its score from the CIB while attrd kept
    10000; the probe's decision is no score; attrd's next write would have put 10000 back."""
    pcmk = Pacemaker(attrd="10000", cib=None)
    assert score(pcmk).apply(Decision(None, "quorum lost"), verify=True)
    assert pcmk.attrd is None and pcmk.cib is None
    assert pcmk.calls[-1][-1] == "-D"
    pcmk.calls.clear()
    assert score(pcmk).apply(Decision(None, "quorum lost"), verify=True)  # nothing held: one query each
    assert [call[0] for call in pcmk.calls] == ["crm_attribute", "attrd_updater"]


@pytest.mark.parametrize(
    ("rc", "err", "words"),
    [
        (17, "r0: State change failed: (-2) Need access to UpToDate data\n", "exit 17): no UpToDate data"),
        (
            11,
            "r0: State change failed: (-25) No quorum\nadditional info from kernel:\n"
            "no UpToDate peer with quorum\nCommand 'drbdsetup primary r0' terminated with exit code 11\n",
            "DRBD refused (exit 11): no quorum: no UpToDate peer with quorum",
        ),
        (11, "r0: State change failed: (-25) No quorum\n", "DRBD refused (exit 11): no quorum"),
        (11, "r0: State change failed: (-1) Multiple primaries not allowed by config\n", None),
        (10, "", None),
        (0, "", None),
    ],
)
def test_primary_refusals_that_no_retry_helps(rc: int, err: str, words: str | None) -> None:
    found = primary_refused(rc, err)
    if words is None:
        assert found is None
    else:
        assert found is not None and words in found and "\n" not in found


def test_a_write_waits_for_another_writer_and_skips_a_value_it_wrote_meanwhile(
    rsctmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DRBD's handlers write the score too: a write and its cache entry are one step under the write lock,
    so one writer's value can never stay in the cluster beside another's in the cache."""
    import fcntl
    import os
    import threading
    import time

    from tandem.drbd import tools

    runner = Pacemaker(attrd="1000", cib="1000")
    s = score(runner)
    s.files.write("score", "1000")
    fd = os.open(s.files.path("write-lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)

    def other_writer() -> None:  # a handler that writes 10000 and records it, then lets go
        time.sleep(0.5)
        runner.attrd = runner.cib = "10000"
        s.files.write("score", "10000")
        os.close(fd)

    threading.Thread(target=other_writer).start()
    assert s.apply(Decision(10000, "UpToDate"))
    assert runner.calls == []  # nothing written twice
    monkeypatch.setattr(tools, "WRITE_LOCK_WAIT", 0)
    with open(s.files.path("write-lock")) as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert not s.apply(Decision(None, "quorum lost"))  # not without the lock
    assert runner.calls == [] and s.cached() == "10000" and runner.cib == "10000"
