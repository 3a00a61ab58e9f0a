# SPDX-License-Identifier: GPL-2.0-or-later
"""The one seam for side effects: running commands, with timeouts, never through a shell.

Agents take a Runner; tests hand them a fake with the same `run` signature. The real one spawns with
os.posix_spawnp (no `subprocess`, whose import costs more than the spawn), in a session of its own, so that
a timeout kills the whole process group (drbdadm's drbdsetup children, virsh's ssh), not only the child.
"""

from __future__ import annotations

import os
import select
import time

from tandem.ocf.deadline import Deadline, DeadlineExceeded
from tandem.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import SIGKILL, SIGPIPE, SIGXFSZ
else:  # the same numbers: the signal module builds IntEnums (the enum module) on import
    from _signal import SIGKILL, SIGPIPE, SIGXFSZ
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Protocol

    from tandem.ocf.log import Logger

    class Runner(Protocol):
        def run(
            self,
            argv: Sequence[str],
            *,
            timeout: float | None = None,
            input: str | None = None,
            env: Mapping[str, str] | None = None,
        ) -> Result: ...

        def start(self, argv: Sequence[str], *, timeout: float | None = None) -> Callable[[], Result]:
            """Begin a command; the function returned waits for it (the caller works meanwhile)."""
            ...


# What the debug line keeps of a command's stderr.
ERR_TAIL = 200


class Result(NamedTuple):
    argv: tuple[str, ...]
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def describe(self) -> str:
        """One line for logs and exit reasons: the command, its code and the last line it printed."""
        last = (self.err.strip() or self.out.strip()).splitlines()
        tail = f": {last[-1]}" if last else ""
        return f"{' '.join(self.argv)} exited {self.rc}{tail}"


class CommandTimeout(DeadlineExceeded):
    """A command ran out of its time budget and was killed (with its process group)."""


class CommandMissing(Exception):
    """The program does not exist on this node."""


class ProcessRunner:
    """Runs real commands; a timeout never exceeds what is left of the deadline.

    `keep` is reserved for whatever the caller still has to do after the command (e.g. reporting). Each
    call is logged at debug with its argv, exit code, elapsed time and the tail of its stderr.
    """

    def __init__(
        self, deadline: Deadline | None = None, keep: float = 0.0, log: Logger | None = None
    ) -> None:
        self.deadline = deadline
        self.keep = keep
        self.log = log

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        return self.start(argv, timeout=timeout, input=input, env=env)()

    def start(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Callable[[], Result]:
        if self.deadline is not None:
            timeout = self.deadline.budget(timeout, keep=self.keep)
        args = tuple(argv)
        started = time.monotonic()
        child = Child(args, timeout, input, {**os.environ, **env} if env else os.environ)

        def wait() -> Result:
            rc, out, err = child.finish()
            if self.log is not None:
                tail = " ".join(err.split())[-ERR_TAIL:]
                took = time.monotonic() - started
                self.log.debug(
                    f"ran {' '.join(args)}: rc {rc} in {took:.3f}s" + (f", stderr: {tail}" if tail else "")
                )
            return Result(args, rc, out, err)

        return wait


class Child:
    """One command, spawned at once; `finish` feeds its input, collects its output and reaps it, killing its
    process group at the timeout (counted from the spawn).

    The pipes are close-on-exec (Python's default), so the child keeps only what is dup'ed to 0, 1 and 2;
    SIGPIPE is reset to default there, as subprocess does. A child whose output fills a pipe waits for
    `finish`, as it would for any slow reader.
    """

    def __init__(
        self, argv: tuple[str, ...], timeout: float | None, input: str | None, env: Mapping[str, str]
    ) -> None:
        (in_r, self.in_w), (self.out_r, out_w), (self.err_r, err_w) = os.pipe(), os.pipe(), os.pipe()
        actions = [
            (os.POSIX_SPAWN_DUP2, in_r, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        try:
            self.pid = os.posix_spawnp(
                argv[0], argv, env, file_actions=actions, setsid=True, setsigdef=(SIGPIPE, SIGXFSZ)
            )
        except BaseException as exc:
            for fd in (self.in_w, self.out_r, self.err_r):
                os.close(fd)
            if isinstance(exc, FileNotFoundError):
                raise CommandMissing(f"{argv[0]}: not found") from None
            raise
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        self.argv, self.timeout, self.input = argv, timeout, input
        self.end = None if timeout is None else time.monotonic() + timeout
        self.finished = False

    def finish(self) -> tuple[int, str, str]:
        """(exit code, stdout, stderr). Once: the child is reaped and its pipes closed by the first call.

        Past the timeout a command that has already exited is still collected (its caller came late, as
        fence-peer does for its CIB query); one still running is killed with its process group."""
        if self.finished:
            raise RuntimeError(f"{' '.join(self.argv)}: its result was collected already")
        self.finished = True
        argv, pid, in_w, out_r, err_r = self.argv, self.pid, self.in_w, self.out_r, self.err_r
        pending = (self.input or "").encode()
        chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
        exited = os.pidfd_open(pid)
        poller = select.poll()
        for fd in (out_r, err_r, exited):
            poller.register(fd, select.POLLIN)
        if pending:
            os.set_blocking(in_w, False)
            poller.register(in_w, select.POLLOUT)
        else:
            os.close(in_w)
        waiting = {out_r, err_r, exited} | ({in_w} if pending else set())
        try:
            while waiting:
                left = None if self.end is None else self.end - time.monotonic()
                late = left is not None and left <= 0
                events = poller.poll(0 if late else (None if left is None else max(1, int(left * 1000))))
                if late and exited in waiting and not any(fd == exited for fd, _ in events):
                    _kill_group(pid)
                    raise CommandTimeout(f"{' '.join(argv)} timed out after {self.timeout:.1f}s")
                if late and not events:
                    break  # it exited; a descendant of its own may hold its pipes open
                for fd, _ in events:
                    if fd == in_w:
                        try:
                            pending = pending[os.write(in_w, pending[:65536]) :]
                        except BrokenPipeError:
                            pending = b""
                        done = not pending
                    elif fd == exited:
                        done = True
                    else:
                        data = os.read(fd, 65536)
                        chunks[fd].append(data)
                        done = not data
                    if done:
                        poller.unregister(fd)
                        waiting.discard(fd)
                        if fd == in_w:
                            os.close(in_w)
            status = os.waitpid(pid, 0)[1]
        finally:
            for fd in (out_r, err_r, exited, *((in_w,) if in_w in waiting else ())):
                os.close(fd)
        out, err = (b"".join(chunks[fd]).decode("utf-8", "replace") for fd in (out_r, err_r))
        return os.waitstatus_to_exitcode(status), out, err


def _kill_group(pid: int) -> None:
    """SIGKILL the command's session (it leads its own process group), then reap it."""
    try:  # noqa: SIM105 (contextlib costs the agents' start more than this whole function)
        os.killpg(pid, SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
