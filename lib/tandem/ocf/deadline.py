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


LATE_IN_SECOND = 0.95


def until_next_second(began: float, now: float, left: float, margin: float = 0.01) -> float:
    """Seconds to wait so that an action that began at wall time `began` ends in a later wall-clock second
    (at most `left`). A successful migrate_to is stamped with the second it began in; when Pacemaker 2.1
    stops its target instead of running migrate_from (a transition aborted after it), a stop stamped in
    that same second counts as older, so the domain stays "active" on the target for the scheduler and its
    next run restarts it (seen after a controller crash on the DC). Ending in the next second fixes that."""
    return max(0.0, min(int(began) + 1 + margin - now, left))


def until_late_in_second(wall: float, left: float, late: float = LATE_IN_SECOND) -> float:
    """Seconds to wait so that an action ends late in its wall-clock second (at most `left`, none if it is
    late already). Pacemaker 2.1 orders operations on different nodes by their whole-second last-rc-change
    and takes an equal one as older: a failed migrate_to followed, in the same second, by the stop on its
    target leaves the domain "active" on the target for the scheduler, which then plans migrations from a
    node where it never ran (tandem-17015). Ending late in the second puts those stops in the next one."""
    return max(0.0, min(late - wall % 1.0, left))
