# SPDX-License-Identifier: GPL-2.0-or-later
"""A deadline derived from CRM_meta_timeout, so that every action can budget its escalation steps."""

from __future__ import annotations

import time

from tandem.record import NamedTuple

# Pacemaker kills the agent at the timeout; leave this much to report and exit cleanly.
EXIT_MARGIN = 0.5


class DeadlineExceeded(Exception):
    """Raised when an action would need more time than it has left."""


class Deadline(NamedTuple):
    """Absolute end of the action on the monotonic clock."""

    end: float

    @classmethod
    def after(cls, seconds: float, now: float | None = None) -> Deadline:
        start = time.monotonic() if now is None else now
        return cls(start + max(0.0, seconds - EXIT_MARGIN))

    def remaining(self, now: float | None = None) -> float:
        return self.end - (time.monotonic() if now is None else now)

    def expired(self) -> bool:
        return self.remaining() <= 0

    def budget(self, wanted: float | None = None, keep: float = 0.0) -> float:
        """Seconds a step may take: at most `wanted`, leaving `keep` for the steps after it.

        Raises DeadlineExceeded when nothing is left, so a step never starts without time to finish.
        """
        left = self.remaining() - keep
        if left <= 0:
            raise DeadlineExceeded(f"no time left (reserved {keep:.1f}s for later steps)")
        return left if wanted is None else min(wanted, left)
