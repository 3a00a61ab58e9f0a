# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem-disconnected`: DRBD 9's disconnected handler, and the score watcher it leaves behind.

DRBD runs no handler when a connection or its quorum comes back without a resync (its handler list ends
with `quorum-lost` and `disconnected`), so a promotion score that a lost connection changed (removed with
quorum, lowered for a peer of unknown state, withheld while the Primary slots were full) came back only
with the next clone notification or Unpromoted monitor: up to that monitor's interval, 20 s in the README.

DRBD 9 calls `disconnected` each time one of a resource's connections closes, from its receiver, and waits
for it: the handler forks a watcher and returns at once. The watcher reads the local DRBD state every
POLL seconds and, once a changed state has held for one POLL (a flapping link would otherwise make a
transition of every flap), writes the score the agent would write (tandem.fence's write_agent_score: the
agent's policy and parameters, under the lock the agent's stop takes). It ends once the score is written
for a state in which no connection is on its way back (every one Connected, or taken StandAlone; a resync's
end is after-resync-target's), when the resource is down, or after LIMIT seconds; one watcher per resource.

Map: `waiting` and `shape` (pure), `watch` (the loop, over a runner, a clock and a sleep), `main` (the
handler: fork, detach, run the watcher in the child).
"""

from __future__ import annotations

import os
import time

from tandem.drbd.model import ConnState, Resource
from tandem.fence import HandlerEnv, Refused, Scored, local_state, write_agent_score
from tandem.ocf.deadline import Deadline
from tandem.ocf.state import FileLock, LockBusy, StateFiles
from tandem.record import replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tandem.ocf.log import Logger
    from tandem.ocf.runner import Runner

POLL = 1.0  # seconds between two reads of the DRBD state (one drbdsetup call)
LIMIT = 900.0  # a watcher ends after this long: a fault's window (fencing, a reboot) is over by then
CIB_TIMEOUT = 10.0
LOCK_WAIT = 3.0  # a watcher that is just ending holds the lock this long at most; a running one covers us
SETTLED = frozenset({ConnState.CONNECTED, ConnState.STANDALONE, ConnState.DISCONNECTING})


def waiting(res: Resource) -> bool:
    """Some connection is on its way back (DRBD retries it by itself); one taken StandAlone or
    Disconnecting by hand, or by `drbdadm down`, is not."""
    return any(c.connection not in SETTLED for c in res.connections)


def shape(res: Resource) -> Resource:
    """The state without a resync's progress, which changes every second and never the score."""
    return replace(
        res,
        connections=tuple(
            replace(c, peer_devices=tuple(replace(p, done=None) for p in c.peer_devices))
            for c in res.connections
        ),
    )


def watch(
    env: HandlerEnv,
    runner: Runner,
    log: Logger,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    limit: float = LIMIT,
) -> str:
    """Write the agent's score at every change of the resource's state until it settles; why it ended."""
    try:
        with FileLock(StateFiles.of("watch", env.resource).path("lock"), Deadline.after(LOCK_WAIT)):
            end = clock() + limit
            written: Resource | None = None  # the state the cluster's score is for
            last: Resource | None = None  # the state at the previous read
            while True:
                res = local_state(runner, log, env)
                if res is None:
                    return "the resource is down"
                now = shape(res)
                if now == last and now != written:  # the same a whole poll long: not a flapping link
                    scored = write_agent_score(env, runner, log, CIB_TIMEOUT, "watcher")
                    if scored is Scored.UNMANAGED:
                        return "no ocf:tandem:drbd clone manages the resource"
                    if scored is Scored.HELD:
                        written = now  # else: try again at the next read
                last = now
                if not waiting(res) and now == written:
                    return "no connection is on its way back"
                if clock() >= end:
                    return f"still waiting after {limit:.0f}s; the monitors take over"
                sleep(POLL)
    except LockBusy:
        return "another watcher runs for this resource"


def main(argv: Sequence[str]) -> int:
    """The handler: fork the watcher and answer DRBD at once (its receiver waits for us)."""
    from tandem.fence import handler_logger

    log = handler_logger("tandem-disconnected")
    if argv:
        log.warning(f"ignoring arguments: {' '.join(argv)}")
    try:
        env = HandlerEnv.parse(os.environ)
    except Refused as exc:
        log.error(f"tandem-disconnected: {exc}")
        return 0
    if os.fork():
        return 0  # DRBD ignores this handler's exit code
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    from tandem.ocf.runner import ProcessRunner

    try:
        why = watch(env, ProcessRunner(Deadline.after(LIMIT + 60)), log)
        log.info(f"score watcher for {env.resource} ended: {why}")
    except Exception as exc:  # a detached watcher has nobody to tell but the log
        log.error(f"score watcher for {env.resource}: internal error {type(exc).__name__}: {exc}")
    os._exit(0)
