# SPDX-License-Identifier: GPL-2.0-or-later
"""What the lab and the agent tests can leave on the host when a teardown misses something: network
namespaces, loop devices, the emulated DRBD devices' placeholders and by-res links in /dev, the /dev/log
link to a node's syslog, processes in a node's PID namespace.

A snapshot before a test session and one after tell what the session left (tests/conftest.py fails it
then): a leak is a failure of the run that made it, not a surprise for the next one. A loop device and
/dev/drbd9177 were once found after CI, never explained. Reading is cheap (one losetup, a /proc scan).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.netns import proc_starttime


@dataclass(frozen=True)
class Snapshot:
    """Each field: one line per thing, as a person would look for it."""

    netns: frozenset[str]  # names in /run/netns
    loops: frozenset[str]  # "NAME BACK-FILE" of attached loop devices
    dev: frozenset[str]  # /dev/drbd* entries and a /dev/log symlink, "PATH -> TARGET" for links
    processes: frozenset[str]  # "PID STARTTIME COMM" of processes in another PID namespace than ours


def snapshot(proc: Path = Path("/proc"), dev: Path = Path("/dev"), run: Path = Path("/run")) -> Snapshot:
    return Snapshot(
        netns=frozenset(p.name for p in (run / "netns").glob("*")),
        loops=frozenset(parse_loops(_losetup())),
        dev=frozenset(_dev_entries(dev)),
        processes=frozenset(_foreign_processes(proc)),
    )


def left(before: Snapshot, after: Snapshot) -> list[str]:
    """What `after` has that `before` had not, one line each: the session's leftovers."""
    return [
        f"{what}: {item}"
        for what in ("netns", "loops", "dev", "processes")
        for item in sorted(getattr(after, what) - getattr(before, what))
    ]


def parse_loops(text: str) -> list[str]:
    """`losetup --list --noheadings --output NAME,BACK-FILE` lines, blanks squeezed."""
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _losetup() -> str:
    try:
        res = subprocess.run(
            ["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"losetup failed: {exc}"
    return res.stdout


def _dev_entries(dev: Path) -> list[str]:
    found = []
    candidates = [*dev.glob("drbd*"), *dev.glob("drbd/by-res/*/*")]
    if (dev / "log").is_symlink():
        candidates.append(dev / "log")
    for path in candidates:
        try:
            found.append(f"{path} -> {os.readlink(path)}" if path.is_symlink() else str(path))
        except OSError:
            continue
    return found


def _foreign_processes(proc: Path) -> list[str]:
    try:
        ours = os.readlink(proc / "self" / "ns" / "pid")
    except OSError:
        return []
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") == ours:
                continue
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        start = proc_starttime(int(entry.name))
        if start is not None:
            found.append(f"{entry.name} {start} {comm}")
    return found
