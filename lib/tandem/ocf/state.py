# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-instance state files of the agents, in one place.

They live in HA_RSCTMP, the tmpfs Pacemaker clears at boot (as it clears the resources themselves), else in
/run/resource-agents: caches and facts that only hold until the next boot.
"""

from __future__ import annotations

import os

from tandem.ocf.params import ALNUM
from tandem.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from tandem.ocf.deadline import Deadline

DEFAULT_DIR = "/run/resource-agents"
SAFE = ALNUM + "_.-"  # what a file name keeps of an instance name; the rest becomes _


class StateFiles(NamedTuple):
    """`<directory>/tandem-<agent>-<instance>.<what>` files, written atomically, read leniently."""

    directory: str
    prefix: str

    @classmethod
    def of(cls, agent: str, instance: str, env: Mapping[str, str] | None = None) -> StateFiles:
        env = os.environ if env is None else env
        directory = env.get("HA_RSCTMP") or DEFAULT_DIR
        safe = "".join(c if c in SAFE else "_" for c in instance or "default")
        return cls(directory, f"tandem-{agent}-{safe}")

    def path(self, what: str) -> str:
        return os.path.join(self.directory, f"{self.prefix}.{what}")

    def read(self, what: str) -> str | None:
        try:
            with open(self.path(what), encoding="utf-8") as fh:
                return fh.read().strip() or None
        except OSError:
            return None

    def write(self, what: str, value: str) -> str | None:
        """Best effort (a state file is a cache, never a reason to fail an action): the error, or None."""
        path = self.path(what)
        try:
            os.makedirs(self.directory, exist_ok=True)
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(value + "\n")
            os.replace(path + ".tmp", path)
        except OSError as exc:
            return f"cannot write {path}: {exc}"
        return None

    def remove(self, what: str) -> None:
        try:  # noqa: SIM105 (contextlib costs the agents' start more than this whole function)
            os.unlink(self.path(what))
        except OSError:
            pass  # already gone, or never written


class LockBusy(Exception):
    """Another process held the lock past the deadline."""


class FileLock:
    """An exclusive flock on `path` for a `with` block, waited for until `deadline` leaves less than a
    second (Deadline.after(0): one try). The lock goes with the process however it ends."""

    def __init__(self, path: str, deadline: Deadline, busy: type[Exception] = LockBusy) -> None:
        self.path = path
        self.deadline = deadline
        self.busy = busy
        self.fd = -1

    def __enter__(self) -> None:
        import fcntl
        import time

        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if self.deadline.remaining() < 1:
                    os.close(self.fd)
                    raise self.busy(f"another process holds {self.path}") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
