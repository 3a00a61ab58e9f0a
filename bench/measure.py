# SPDX-License-Identifier: GPL-2.0-or-later
"""Host side of a measurement: hand a run list to bench.spawn inside a lab node, read back the runs, and
everything around them: strace counts, the CIB's counters, the emulator's share of the time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.netns import TOP, Node

from bench.spawn import safe
from bench.stats import Summary, summarize
from bench.trace import CibVersion, Counts, Exec, Kind, cib_version, classify, count, parse_execs


@dataclass(frozen=True)
class Run:
    name: str
    i: int
    wall_ns: int
    rc: int
    user_s: float
    sys_s: float
    tree_maxrss_kib: int | None = None  # with rss=True only


@dataclass(frozen=True)
class Command:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]


def spawn(
    node: Node | None,
    commands: Sequence[Command],
    order: Sequence[str],
    logs: Path,
    *,
    strace: bool = False,
    rss: bool = False,
) -> list[Run]:
    """Run `order` (names of `commands`) inside `node` (None: on the host), one after another; logs: a
    directory every node sees (under /tmp), for stderr and strace output."""
    logs.mkdir(parents=True, exist_ok=True)
    spec = {
        "commands": [{"name": c.name, "argv": list(c.argv), "env": dict(c.env)} for c in commands],
        "order": list(order),
        "strace": str(logs / "trace") if strace else None,
        "rss": rss,
        "stderr": str(logs / "run"),
    }
    argv = ["/usr/bin/python3", "-m", "bench.spawn"]
    timeout = 60.0 + 60.0 * len(order)
    if node is None:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(TOP)}
        done = subprocess.run(
            argv, input=json.dumps(spec), env=env, capture_output=True, text=True, timeout=timeout, check=True
        )
    else:
        done = node.run(argv, input=json.dumps(spec), env={"PYTHONPATH": str(TOP)}, timeout=timeout)
    return [Run(**json.loads(line)) for line in done.stdout.splitlines() if line.startswith("{")]


def stderr_of(logs: Path, name: str) -> str:
    try:
        return (logs / f"run-{safe(name)}.err").read_text(errors="replace").strip()
    except OSError:
        return ""


def traces(logs: Path, name: str) -> list[list[Exec]]:
    return [
        parse_execs(p.read_text(errors="replace")) for p in sorted(logs.glob(f"trace-{safe(name)}-*.log"))
    ]


def peak_rss_mib(runs: Sequence[Run], names: Sequence[str]) -> list[float]:
    """The process-tree peaks (MiB) of the runs of these commands (made with rss=True)."""
    return [r.tree_maxrss_kib / 1024 for r in runs if r.name in names and r.tree_maxrss_kib is not None]


def cib(node: Node) -> CibVersion:
    return cib_version(node.run(["cibadmin", "-Q"], timeout=60).stdout)


def walls_ms(runs: Sequence[Run], name: str) -> list[float]:
    return [r.wall_ns / 1e6 for r in runs if r.name == name]


def summary_ms(runs: Sequence[Run], name: str) -> Summary:
    return summarize(walls_ms(runs, name))


# Emulator replay: what the fake DRBD tools cost on their own, for the agent's exact calls. Only calls that
# read state are replayed (a steady-state monitor makes no others; anything else is left out and noted).
_CHANGES = {
    "up", "down", "primary", "secondary", "adjust", "connect", "disconnect", "attach", "detach", "outdate",
    "resize", "invalidate", "invalidate-remote", "new-current-uuid", "pause-sync", "resume-sync",
    "suspend-io", "resume-io", "wait-connect", "wait-sync", "wait-connect-resource", "net-options",
    "disk-options", "resource-options", "peer-device-options", "new-resource", "new-minor", "del-minor",
    "del-resource", "create-md", "apply-al",
}  # fmt: skip


def replayable(e: Exec) -> bool:
    return classify(e) is Kind.DRBD and not (_CHANGES & set(e.argv[1:]))


@dataclass(frozen=True)
class Replay:
    """The DRBD calls one monitor of an agent made (from its strace), as commands to run alone: what the
    emulator's fake tools cost by themselves, timed in the same rounds as the agents."""

    agent: str
    calls: tuple[str, ...]  # command names, one per call the monitor made (repeats allowed)
    skipped: int  # calls that change state: not replayed
    commands: tuple[Command, ...]  # the distinct ones


def replay(agent: str, execs: Sequence[Exec], env: Mapping[str, str]) -> Replay:
    drbd = [e for e in execs if classify(e) is Kind.DRBD]
    distinct: dict[tuple[str, ...], str] = {}
    calls = []
    for e in drbd:
        if replayable(e):
            argv = (e.path, *e.argv[1:])
            calls.append(distinct.setdefault(argv, f"{agent}-drbd{len(distinct)}"))
    commands = tuple(Command(name, argv, env) for argv, name in distinct.items())
    return Replay(agent, tuple(calls), len(drbd) - len(calls), commands)


def per_round_ms(runs: Sequence[Run], names: Sequence[str]) -> list[float]:
    """For each round, the sum of the wall times of these commands' runs in it (a name listed twice counts
    twice: the monitor made that call twice)."""
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        by_round.setdefault(r.i, {})[r.name] = r.wall_ns / 1e6
    return [sum(got[n] for n in names) for _, got in sorted(by_round.items()) if all(n in got for n in names)]


@dataclass(frozen=True)
class Census:
    """What one agent's steady-state monitors did, counted over `runs` consecutive monitors under strace."""

    runs: int
    counts: tuple[Counts, ...]
    cib_updates: int  # CIB changes over those runs (its version counters), minus the idle drift
    drift: int  # CIB changes over the same time with no agent running
    seconds: float


def census(node: Node, command: Command, runs: int, logs: Path) -> Census:
    """Count programs started (strace) and CIB updates (version counters before/after) of `runs` monitors,
    then the CIB's idle drift over the same duration."""
    before = cib(node)
    t0 = time.monotonic()
    spawn(node, [command], [command.name] * runs, logs, strace=True)
    took = time.monotonic() - t0
    after = cib(node)
    idle0 = cib(node)
    time.sleep(took)
    drift = cib(node).updates_since(idle0)
    found = tuple(count(t) for t in traces(logs, command.name))
    return Census(runs, found, after.updates_since(before) - drift, drift, took)
