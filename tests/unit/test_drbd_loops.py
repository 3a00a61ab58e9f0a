# SPDX-License-Identifier: GPL-2.0-or-later
"""The demote and stop loops of ocf:tandem:drbd pause between polls whenever the resource is still there
after a command, also when the command itself succeeded (DRBD can report success and still list it)."""

from __future__ import annotations

import importlib.machinery
import types
from pathlib import Path
from typing import Any

import pytest

from tandem.drbd.model import Resource, Role
from tandem.ocf.deadline import Deadline
from tandem.ocf.runner import Result
from tests.conftest import AGENTS


def load_agent() -> Any:
    loader = importlib.machinery.SourceFileLoader("agent_drbd_loops", str(AGENTS / "drbd"))
    module = types.ModuleType(loader.name)
    loader.exec_module(module)
    return module


class StillListed:
    """A resource that stays Primary (or up) for `polls` more status reads, though every command succeeds."""

    resource = "r0"

    def __init__(self, polls: int, role: Role) -> None:
        self.polls = polls
        self.role = role
        self.commands: list[str] = []

    def status(self) -> Resource | None:
        if self.polls == 0:
            return None if self.role is Role.SECONDARY else Resource("r0", Role.SECONDARY)
        self.polls -= 1
        return Resource("r0", self.role)

    def adm(self, command: str) -> Result:
        self.commands.append(command)
        return Result(("drbdadm", command, "r0"), 0, "", "")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    return slept


def test_demote_pauses_while_still_primary_after_a_successful_command(sleeps: list[float]) -> None:
    agent = load_agent()
    drbd = StillListed(3, Role.PRIMARY)
    ctx = types.SimpleNamespace(deadline=Deadline.after(60))
    res = agent.to_secondary(ctx, drbd)
    assert res is not None and res.role is Role.SECONDARY
    assert drbd.commands == ["secondary"] * 3
    assert sleeps == [0.5, 1.0]  # before the 2nd and 3rd tries, never before the first


def test_stop_pauses_while_still_listed_after_a_successful_command(
    sleeps: list[float], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HA_RSCTMP", str(tmp_path))  # the score cache
    agent = load_agent()
    drbd = StillListed(2, Role.SECONDARY)
    conf = tmp_path / "drbd.conf"
    conf.write_text("")
    runs: list[tuple[str, ...]] = []

    def run(argv: list[str], **_: object) -> Result:
        runs.append(tuple(argv))
        return Result(tuple(argv), 0, "", "")

    params = {"drbd_resource": "r0", "drbdconf": str(conf), "outdate_on_stop": True, "cluster_timeout": 5.0}
    ctx = types.SimpleNamespace(
        deadline=Deadline.after(60),
        params=types.SimpleNamespace(
            text=params.__getitem__,
            opt_text=params.__getitem__,
            flag=params.__getitem__,
            seconds=params.__getitem__,
        ),
        runner=types.SimpleNamespace(run=run),
        log=types.SimpleNamespace(info=print, warning=print, debug=print),
        meta=types.SimpleNamespace(instance="drbd-r0"),
    )
    agent.Drbd = lambda *a: drbd
    assert agent.stop(ctx) == 0
    assert drbd.commands == ["down", "down"]
    assert sleeps == [0.5]
    assert runs == [
        ("crm_attribute", "--promotion=drbd-r0", "-l", "reboot", "-D")
    ]  # no peer was Primary: no outdate
