# SPDX-License-Identifier: GPL-2.0-or-later
"""This node's side of the agent that is not a command: the process table."""

from __future__ import annotations

import os
import time

from tandem.domain.state import emulator_pids

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from signal import SIGKILL, SIGTERM
else:  # the same numbers: the signal module builds IntEnums (the enum module) on import
    from _signal import SIGKILL, SIGTERM


def processes(proc: str = "/proc") -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every process we can read; vanished ones are skipped."""
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "cmdline"), "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        if raw:
            yield int(entry.name), raw.rstrip(b"\0").decode("utf-8", "replace").split("\0")


def emulator_processes(name: str) -> tuple[int, ...]:
    return emulator_pids(processes(), name)


def alive(pid: int) -> bool:
    """A zombie is dead: it holds no memory and no disks, only an exit status for its parent."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def kill_and_wait(pids: tuple[int, ...], grace: float) -> bool:
    """SIGTERM, then SIGKILL after `grace` seconds, as libvirt's destroy does; True when all died."""
    for sig, wait in ((SIGTERM, grace), (SIGKILL, 5.0)):
        for pid in pids:
            try:  # noqa: SIM105 (contextlib costs the agents' start more than this whole function)
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not any(alive(p) for p in pids):
                return True
            time.sleep(0.1)
    return not any(alive(p) for p in pids)
