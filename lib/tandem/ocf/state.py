# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-instance state files of the agents, in one place.

They live in HA_RSCTMP, the tmpfs Pacemaker clears at boot (as it clears the resources themselves), else in
/run/resource-agents: caches and facts that only hold until the next boot.
"""

from __future__ import annotations

import contextlib
import os
import re

from tandem.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_DIR = "/run/resource-agents"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class StateFiles(NamedTuple):
    """`<directory>/tandem-<agent>-<instance>.<what>` files, written atomically, read leniently."""

    directory: str
    prefix: str

    @classmethod
    def of(cls, agent: str, instance: str, env: Mapping[str, str] | None = None) -> StateFiles:
        env = os.environ if env is None else env
        directory = env.get("HA_RSCTMP") or DEFAULT_DIR
        return cls(directory, f"tandem-{agent}-{_UNSAFE.sub('_', instance or 'default')}")

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
        with contextlib.suppress(OSError):
            os.unlink(self.path(what))
