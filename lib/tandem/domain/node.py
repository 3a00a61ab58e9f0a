"""This node's side of the agent that is not a command: the process table, and small state files.

State files live in HA_RSCTMP (cleared at boot, like the domains themselves): the domain name seen at start,
so stop and monitor still know what to look for when the config file has become unreadable (RA#856), and the
utilization last written, so the CIB is written only when a value changes.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tandem.domain.state import emulator_pids

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def processes(proc: str = "/proc") -> Iterator[tuple[int, list[str]]]:
    """(pid, argv) of every process we can read; vanished ones are skipped."""
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            yield int(entry.name), raw.rstrip(b"\0").decode("utf-8", "replace").split("\0")


def emulator_processes(name: str) -> tuple[int, ...]:
    return emulator_pids(processes(), name)


def alive(pid: int) -> bool:
    """A zombie is dead: it holds no memory and no disks, only an exit status for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def kill_and_wait(pids: tuple[int, ...], grace: float) -> bool:
    """SIGTERM, then SIGKILL after `grace` seconds, as libvirt's destroy does; True when all died."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if not any(alive(p) for p in pids):
                return True
            time.sleep(0.1)
    return not any(alive(p) for p in pids)


@dataclass(frozen=True)
class StateFiles:
    directory: str
    instance: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StateFiles:
        directory = env.get("HA_RSCTMP") or "/run/resource-agents"
        return cls(directory, env.get("OCF_RESOURCE_INSTANCE") or "default")

    def _path(self, what: str) -> Path:
        return Path(self.directory, f"tandem-domain-{_SAFE.sub('_', self.instance)}.{what}")

    def read(self, what: str) -> str | None:
        try:
            return self._path(what).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def write(self, what: str, value: str) -> None:
        """Best effort: a state file is a cache, never a reason to fail an action."""
        path = self._path(what)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(value + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass
