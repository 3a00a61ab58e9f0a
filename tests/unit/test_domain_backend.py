# SPDX-License-Identifier: GPL-2.0-or-later
"""The virsh and xl backends against a scripted runner: the argv they run and how they read the answers."""

from __future__ import annotations

from dataclasses import dataclass

from tandem.domain.backend import Migration, Virsh, Xl
from tandem.domain.state import Phase
from tandem.ocf.runner import Result
from tests.fakes import RecordingRunner
from tests.unit.test_domain_state import DOMINFO, JOB_OUT, NO_LIBVIRTD, NOT_FOUND, TARGET_JOB_ERR, XL_LIST


@dataclass
class Scripted(RecordingRunner):
    """Answers by the first argv word after the tool and its connection options."""

    answers: dict[str, list[tuple[int, str, str]]]

    def answer(self, argv: tuple[str, ...], timeout: float) -> Result:
        words = [a for a in argv[1:] if not a.startswith("-")]
        key = words[1] if argv[0] == "virsh" and "--connect" in argv else words[0]
        rc, out, err = self.answers[key].pop(0)
        return Result(argv, rc, out, err)


def paused(reason: str) -> str:
    return DOMINFO.replace("State:          running", "State:          paused") + f"\n{reason}"


def test_running_takes_one_call() -> None:
    runner = Scripted({"dominfo": [(0, DOMINFO, "")]})
    obs = Virsh(runner, "qemu:///system").observe("vmx-guest")
    assert obs.phase is Phase.RUNNING and (obs.vcpus, obs.memory_mib) == (1, 64)
    assert runner.calls == [("virsh", "--quiet", "--connect", "qemu:///system", "dominfo", "vmx-guest")]


def test_paused_for_migration_on_each_side() -> None:
    src = Scripted(
        {
            "dominfo": [(0, paused(""), "")],
            "domstate": [(0, "paused (migrating)\n", "")],
            "domjobinfo": [(0, JOB_OUT, "")],
        }
    )
    assert Virsh(src).observe("g").phase is Phase.MIGRATING_OUT
    dst = Scripted(
        {
            "dominfo": [(0, paused(""), "")],
            "domstate": [(0, "paused (migrating)\n", "")],
            "domjobinfo": [(1, "", TARGET_JOB_ERR)],
        }
    )
    obs = Virsh(dst).observe("g")
    assert obs.phase is Phase.MIGRATING_IN and obs.detail == "paused (migrating)"
    user = Scripted({"dominfo": [(0, paused(""), "")], "domstate": [(0, "paused (user)\n", "")]})
    assert Virsh(user).observe("g").phase is Phase.PAUSED_USER
    assert [c[2] for c in user.calls] == ["dominfo", "domstate"]  # no job query for a user's pause


def test_absent_versus_unreachable() -> None:
    assert Virsh(Scripted({"dominfo": [(1, "", NOT_FOUND)]})).observe("g").phase is Phase.ABSENT
    obs = Virsh(Scripted({"dominfo": [(1, "", NO_LIBVIRTD)]})).observe("g")
    assert obs.phase is Phase.UNKNOWN and "libvirt-sock" in obs.detail


def test_migrate_argv_and_remote_observe() -> None:
    runner = Scripted({"migrate": [(0, "", "")], "dominfo": [(1, "", NOT_FOUND)]})
    virsh = Virsh(runner)
    plan = Migration("b", "qemu+tcp://b/system", "tcp://b-mig", ("--p2p",), 100)
    assert virsh.migrate("vm;x", plan, timeout=30).ok
    assert runner.calls[0] == (
        "virsh",
        "--quiet",
        "migrate",
        "--live",
        "--p2p",
        "--bandwidth",
        "100",
        "--migrateuri",
        "tcp://b-mig",
        "vm;x",
        "qemu+tcp://b/system",
    )  # one argv word per value: nothing is ever parsed by a shell
    remote = virsh.observe_remote("vm", "qemu+tcp://b/system", 5)
    assert remote is not None and remote.gone
    assert runner.calls[1][:4] == ("virsh", "--quiet", "--connect", "qemu+tcp://b/system")


def test_shutdown_modes() -> None:
    runner = Scripted({"shutdown": [(0, "", ""), (0, "", "")], "trigger": [(0, "", "")]})
    Virsh(runner).shutdown("g", "acpi", 5)
    Xl(runner).shutdown("g", None, 5)
    Xl(runner).shutdown("g", "acpi", 5)
    assert [c[-3:] for c in runner.calls] == [
        ("g", "--mode", "acpi"),
        ("xl", "shutdown", "g"),
        ("trigger", "g", "power"),
    ]


def test_xl_observe_and_abort() -> None:
    xl = Xl(Scripted({"list": [(0, XL_LIST, ""), (1, "", "cannot init xl context\n")]}))
    assert xl.observe("web").phase is Phase.RUNNING
    assert xl.observe("web").phase is Phase.UNKNOWN  # a broken toolstack is never "not running"
    runner = Scripted({"list": [(0, XL_LIST, "")], "rename": [(0, "", "")], "unpause": [(0, "", "")]})
    Xl(runner).abort_migration("out", 5)
    assert runner.calls[1:] == [("xl", "rename", "out--migratedaway", "out"), ("xl", "unpause", "out")]
    runner = Scripted({"list": [(0, XL_LIST, "")]})
    assert Xl(runner).abort_migration("web", 5) is None
