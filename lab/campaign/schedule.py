# SPDX-License-Identifier: GPL-2.0-or-later
"""Seeded fault schedules: which faults, aimed at which node's role, at which second of a run (pure).

A seed gives the same schedule every time (`generate`); it does not give the same interleaving with the
cluster, which is why the runner records when each fault really went in. Roles ("vm": where QEMU runs,
"dc": the Designated Controller, "other": the node not running the VM) are resolved to node names only at
injection time, since the seed cannot know where things will be.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

NODE_ROLES = ("vm", "dc", "other")


@dataclass(frozen=True)
class Kind:
    name: str
    targets: tuple[str, ...]  # roles it may hit; () for faults of links or of the whole cluster
    hold: tuple[float, float] | None  # how long a lasting fault lasts before it is undone; None: instant
    about: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("power-cut", NODE_ROLES, None, "hard power off; fencing reboots it after the reboot delay"),
        Kind("stop-start", NODE_ROLES, (8.0, 20.0), "clean shutdown of the node, powered on again later"),
        Kind("reboot", NODE_ROLES, None, "power cycle, back after the reboot delay"),
        Kind("partition", (), (8.0, 25.0), "every link between the nodes cut (cluster and replication)"),
        Kind("repl-cut", (), (8.0, 25.0), "the replication network cut, the cluster network up"),
        Kind("cluster-cut", (), (8.0, 25.0), "the cluster network cut, the replication network up"),
        Kind("slow-link", ("vm", "other"), (8.0, 25.0), "the node's cluster link shaped to 256 kbit/s"),
        Kind("crash-corosync", NODE_ROLES, None, "SIGKILL of corosync"),
        Kind("crash-controld", NODE_ROLES, None, "SIGKILL of pacemaker-controld"),
        Kind("crash-execd", NODE_ROLES, None, "SIGKILL of pacemaker-execd"),
        Kind("crash-fenced", NODE_ROLES, None, "SIGKILL of pacemaker-fenced"),
        Kind("crash-libvirtd", ("vm", "other"), None, "SIGKILL of libvirtd"),
        Kind("crash-qemu", ("vm",), None, "SIGKILL of the guest's QEMU"),
        Kind("fence-peer-hang", (), (8.0, 25.0), "the fence-peer handler hangs everywhere, replication cut"),
        Kind(
            "fence-peer-fail", (), (8.0, 25.0), "the fence-peer handler fails (1) everywhere, replication cut"
        ),
        Kind("fence-fail", (), (8.0, 25.0), "the fence device fails (its power switch unreachable)"),
        Kind(
            "disk-fail",
            ("vm", "other"),
            (8.0, 25.0),
            "the node's backing disk fails; undone as an operator would: disk replaced, `drbdadm attach`",
        ),
        Kind("move", (), None, "crm resource move vm1 to the node not running it"),
        Kind("clear", (), None, "crm resource clear vm1"),
    )
}
# Those with the most field reports of lost VMs and split brains (research notes §4): the CI slice.
RISKIEST = ("power-cut", "partition", "repl-cut", "crash-controld", "move")
WINDOW = 30.0  # faults go in during the first WINDOW seconds of a run


@dataclass(frozen=True)
class Event:
    at: float  # seconds after the run's start
    kind: str
    role: str  # a NODE_ROLES entry, or "" for faults without a target node
    hold: float  # seconds until a lasting fault is undone; 0 for instant ones
    during: str = ""  # "migrate_to"/"migrate_from": a live migration is started and the fault hits in it

    @property
    def label(self) -> str:
        """The fault kind as the report counts it: `power-cut@migrate_to` for one inside a migration."""
        return f"{self.kind}@{self.during}" if self.during else self.kind


@dataclass(frozen=True)
class Step:
    at: float
    event: Event
    undo: bool  # False: inject the event's fault; True: undo it


@dataclass(frozen=True)
class Schedule:
    seed: int
    events: tuple[Event, ...]

    def steps(self) -> tuple[Step, ...]:
        """Injections and undos in time order (an undo before an injection at the same second)."""
        steps = [Step(e.at, e, False) for e in self.events]
        steps += [Step(round(e.at + e.hold, 1), e, True) for e in self.events if e.hold]
        return tuple(sorted(steps, key=lambda s: (s.at, not s.undo, s.event.kind)))

    def kinds(self) -> tuple[str, ...]:
        return tuple(e.label for e in self.events)

    def overlapping(self) -> bool:
        """Two faults at once: a lasting fault still active when the next event comes."""
        return any(a.hold and b.at < a.at + a.hold for a in self.events for b in self.events if b.at > a.at)

    @classmethod
    def from_json(cls, seed: int, events: list[dict[str, Any]]) -> Schedule:
        return cls(seed, tuple(Event(**e) for e in events))

    def to_json(self) -> list[dict[str, object]]:
        return [
            {"at": e.at, "kind": e.kind, "role": e.role, "hold": e.hold, "during": e.during}
            for e in self.events
        ]


def validate(kinds: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown fault kinds {unknown or '(none given)'}; known: {', '.join(KINDS)}")
    return kinds


MIGRATION_PHASES = ("migrate_to", "migrate_from")
IN_MIGRATION = 0.25  # the share of faults that hit inside a live migration the nemesis starts for them


def generate(seed: int, kinds: tuple[str, ...], window: float = WINDOW) -> Schedule:
    """2 to 6 events at random times in the window, kinds and roles drawn from `kinds`, a quarter of the
    faults (not moves) inside a migration's migrate_to or migrate_from; seeded."""
    rng = random.Random(seed)
    count = rng.randint(2, 6)
    events = []
    for at in sorted(round(rng.uniform(0.0, window), 1) for _ in range(count)):
        kind = KINDS[rng.choice(validate(kinds))]
        role = rng.choice(kind.targets) if kind.targets else ""
        hold = round(rng.uniform(*kind.hold), 1) if kind.hold else 0.0
        inside = kind.name not in ("move", "clear") and rng.random() < IN_MIGRATION
        events.append(Event(at, kind.name, role, hold, rng.choice(MIGRATION_PHASES) if inside else ""))
    return Schedule(seed, tuple(events))


def run_seed(seed: int, index: int) -> int:
    """The seed of run `index` of a campaign started with `seed` (so any run replays alone)."""
    return seed + index
