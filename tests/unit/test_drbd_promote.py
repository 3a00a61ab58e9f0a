# SPDX-License-Identifier: GPL-2.0-or-later
"""The promote of ocf:tandem:drbd against a scripted DRBD: the wait through DRBD 9.2.19+'s Consistent window
after a Primary loss, and the refusals that end a promote at once (exit 17, exit 11 "No quorum")."""

from __future__ import annotations

import types
from typing import Any

import pytest

from tandem.drbd.model import ConnState, DiskState, Resource, Role
from tandem.ocf.codes import OcfError
from tandem.ocf.deadline import Deadline
from tandem.ocf.runner import Result
from tandem.record import replace
from tests.unit.drbd_states import healthy
from tests.unit.test_drbd_loops import load_agent

QUORUM_ERR = (
    "r0: State change failed: (-25) No quorum\nadditional info from kernel:\n"
    "1 of 3 nodes visible, need 2 for quorum\nCommand 'drbdsetup primary r0' terminated with exit code 11\n"
)


def survivor(disk: DiskState) -> Resource:
    """A Secondary whose Primary peer is gone."""
    res = healthy(Role.SECONDARY)
    gone = tuple(
        replace(c, connection=ConnState.CONNECTING, peer_role=Role.UNKNOWN, peer_devices=())
        for c in res.connections
    )
    return replace(res, devices=tuple(replace(d, disk=disk) for d in res.devices), connections=gone)


class Scripted:
    """DRBD whose status follows a script; `primary` answers with `rc`/`err` and makes it Primary on 0."""

    resource = "r0"

    def __init__(self, states: list[Resource], rc: int = 0, err: str = "") -> None:
        self.states = states
        self.rc, self.err = rc, err
        self.commands: list[str] = []
        self.waited: list[float] = []

    def status(self) -> Resource | None:
        return self.states[0] if len(self.states) == 1 else self.states.pop(0)

    def wait_for(self, done: Any, seconds: float) -> Resource | None:
        self.waited.append(seconds)
        res = self.status()
        while not done(res) and res is not self.states[-1]:  # the last state stays
            res = self.status()
        return res

    def adm(self, command: str) -> Result:
        self.commands.append(command)
        if self.rc == 0:
            self.states = [replace(self.states[-1], role=Role.PRIMARY)]
        return Result(("drbdadm", command, "r0"), self.rc, "", self.err)


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Any:
    module = load_agent()
    monkeypatch.setattr(module, "check_dual_primary", lambda ctx, drbd: None)
    monkeypatch.setattr(module, "rescore", lambda ctx, res, hold=True: None)
    monkeypatch.setattr("time.sleep", lambda s: None)
    return module


def run(agent: Any, drbd: Scripted) -> Any:
    agent.loaded = lambda ctx: drbd
    ctx = types.SimpleNamespace(
        deadline=Deadline.after(90),
        meta=types.SimpleNamespace(promoted_max=1),
        params=types.SimpleNamespace(seconds=lambda name: 0.0),
        log=types.SimpleNamespace(info=lambda m: None, warning=lambda m: None),
    )
    return agent.promote(ctx)


def test_a_reconciling_survivor_is_promoted_once_drbd_makes_it_uptodate(agent: Any) -> None:
    drbd = Scripted(
        [survivor(DiskState.CONSISTENT), survivor(DiskState.CONSISTENT), survivor(DiskState.UP_TO_DATE)]
    )
    assert run(agent, drbd) == 0
    assert drbd.commands == ["primary"] and drbd.waited and 0 < drbd.waited[0] <= agent.RECONCILE_WAIT


def test_a_survivor_still_consistent_after_the_wait_is_refused_without_trying(agent: Any) -> None:
    drbd = Scripted([survivor(DiskState.CONSISTENT)])
    with pytest.raises(OcfError) as failed:
        run(agent, drbd)
    assert drbd.commands == []
    assert failed.value.reason == (
        "refusing to promote: local data is Consistent, not UpToDate "
        "(DRBD has not finished reconciling after the Primary loss)"
    )


def test_outdated_data_is_refused_without_waiting(agent: Any) -> None:
    drbd = Scripted([survivor(DiskState.OUTDATED)])
    with pytest.raises(OcfError, match=r"local data is Outdated, not UpToDate$"):
        run(agent, drbd)
    assert drbd.waited == [] and drbd.commands == []


@pytest.mark.parametrize(
    ("rc", "err", "reason"),
    [
        (
            11,
            QUORUM_ERR,
            "refusing to promote: DRBD refused (exit 11): no quorum: 1 of 3 nodes visible, need 2 for quorum",
        ),
        (
            17,
            "r0: State change failed: (-2) Need access to UpToDate data\n",
            "refusing to promote: DRBD refused (exit 17): no UpToDate data reachable, or the peer could not "
            "be fenced",
        ),
    ],
)
def test_a_final_refusal_by_drbd_ends_the_promote_at_once_with_its_reason(
    agent: Any, rc: int, err: str, reason: str
) -> None:
    drbd = Scripted([healthy(Role.SECONDARY)], rc=rc, err=err)
    with pytest.raises(OcfError) as failed:
        run(agent, drbd)
    assert failed.value.reason == reason
    assert drbd.commands == ["primary"]  # no retry


def test_another_exit_11_is_retried(agent: Any) -> None:
    drbd = Scripted(
        [healthy(Role.SECONDARY)], rc=11, err="r0: State change failed: (-1) Multiple primaries\n"
    )
    with pytest.raises(OcfError, match="drbdadm primary failed"):
        run(agent, drbd)
    assert drbd.commands == ["primary"] * 3
