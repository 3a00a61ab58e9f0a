# SPDX-License-Identifier: GPL-2.0-or-later
"""The node's tool server: the fakes' Python imported once, so that a drbdsetup/drbdadm call costs a fork,
not an interpreter start and its imports (~70 ms a call before it).

The compiled fakes (client.c, whose comment has the protocol) send each call here with their fds 0-2, their
working directory and environment. Each call goes to a forked child that takes all of those over and runs
`cli.main` as the Python fake would, so outputs, messages and exit codes are the same, and tells the caller
its exit code (the server tells a death by signal). One child per call, so calls that wait (a `primary` held
by its fence-peer handler) run side by side. The accept loop is single-threaded, so forking is safe. A call
is only served from the caller's own namespaces and user (else the client runs the Python fake itself); a
caller that goes away (a timeout's kill) takes its call's process group with it.

The kernel (tool.py) starts the server and it dies with the kernel (PR_SET_PDEATHSIG); its socket is
abstract, so nothing is left behind either way.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import select
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from typing import NamedTuple, NoReturn

TAG = b"tandem-emu-1"
MAX_REQUEST = 1 << 20  # argv and environment of one call
NAMESPACES = ("mnt", "net", "pid", "uts", "ipc")
PR_SET_PDEATHSIG = 1
MADV_POPULATE_WRITE = 23
POPULATE_STEP = 1 << 20
LIBC = ctypes.CDLL(None, use_errno=True)


class Request(NamedTuple):
    prog: str
    umask: int
    argv: list[str]
    env: dict[str, str]


def address(emu_dir: str, node: str) -> bytes:
    """The abstract socket name a client computes for its call (client.c `address`)."""
    return f"\0tandem-drbd-emu:{node}:{os.path.realpath(emu_dir)}".encode()


def listening(emu_dir: str, node: str) -> bool:
    """Whether the node's server takes calls (seen from this network namespace)."""
    with open("/proc/net/unix") as f:
        return any(line.rstrip().endswith(" @" + address(emu_dir, node)[1:].decode()) for line in f)


def parse_request(data: bytes) -> Request | None:
    """A client's message (client.c), or None when it is not one."""
    parts = data.split(b"\0")
    if len(parts) < 5 or parts[0] != TAG or parts[-1] != b"" or parts[1] not in (b"drbdsetup", b"drbdadm"):
        return None
    try:
        umask, argc = int(parts[2], 8), int(parts[3])
    except ValueError:
        return None
    argv, entries = parts[4 : 4 + argc], parts[4 + argc : -1]
    if argc < 1 or len(argv) != argc or any(b"=" not in e for e in entries):
        return None
    env = dict(os.fsdecode(e).split("=", 1) for e in entries)
    return Request(parts[1].decode(), umask, [os.fsdecode(a) for a in argv], env)


def reply(status: int) -> bytes:
    """What the client exits with, from the child's wait status."""
    if os.WIFSIGNALED(status):
        return b"signal %d" % os.WTERMSIG(status)
    return b"exit %d" % os.waitstatus_to_exitcode(status)


def same_namespaces(pid: int) -> bool:
    """Whether process `pid` (0: outside our PID namespace) lives in this server's namespaces."""
    try:
        return pid > 0 and all(
            os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}") for ns in NAMESPACES
        )
    except OSError:
        return False


def serve(emu_dir: str, node: str, parent: int) -> None:
    """Serve this node's calls until the kernel (`parent`) dies."""
    from lab.drbd_emu import cli, devices, render, view  # noqa: F401 (once, here: the children have them)

    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        return  # the kernel died before the line above
    listener = _listen(address(emu_dir, node))
    if listener is not None:
        print(f"drbd-emu serve: {node}'s tool server, pid {os.getpid()}", file=sys.stderr, flush=True)
        Server(listener).run()


class Server:
    """The accept loop. A spare child is forked ahead of each call and made ready (its memory copied once,
    see `_spare`), so that neither the fork nor copy-on-write faults are paid while a caller waits. The
    child answers its caller; once it is reaped the server answers again (the caller reads the first
    answer), which is the only one when the child died of a signal."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ)
        self.calls: dict[socket.socket, int] = {}  # connection → pid of its child (0: request not read yet)
        self.spare: tuple[int, socket.socket] | None = None  # its pid and the channel to hand it a call
        self._pidfds: dict[int, int] = {}
        self._fork_spare()

    def run(self) -> None:
        while True:
            for key, _ in self.sel.select():
                obj = key.fileobj
                if obj is self.listener:
                    conn, _ = self.listener.accept()
                    self.calls[conn] = 0
                    self.sel.register(conn, selectors.EVENT_READ)
                elif isinstance(obj, socket.socket) and obj not in self.calls:
                    pass  # closed by an earlier event of this round
                elif isinstance(obj, socket.socket) and self.calls[obj] == 0:
                    self._hand_over(obj)
                elif isinstance(obj, socket.socket):  # the caller left: end its call if it still runs
                    pid = self.calls[obj]
                    if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
                        _kill_group(pid)
                    self._close(obj)
                else:  # a child's pidfd: it ended
                    conn, pid = key.data
                    _, status = os.waitpid(pid, 0)
                    self.sel.unregister(obj)
                    os.close(self._pidfds.pop(pid))
                    if self.spare and self.spare[0] == pid:  # died unused
                        self.spare[1].close()
                        self.spare = None
                    if conn in self.calls:
                        _send(conn, reply(status))  # again, if the child did: the caller reads one
                        self._close(conn)

    def _hand_over(self, conn: socket.socket) -> None:
        """Read a call; give it to the spare child (forked now if there is none), or tell the client to
        run the Python fake."""
        try:
            data, fds, flags, _ = socket.recv_fds(conn, MAX_REQUEST, 4)
        except OSError:
            data, fds, flags = b"", [], 0
        request = parse_request(data) if not flags & socket.MSG_TRUNC and len(fds) == 4 else None
        pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        taken = False
        if request is not None and uid == os.getuid() and same_namespaces(pid):
            if self.spare is None:
                self._fork_spare()
            assert self.spare is not None
            child, channel = self.spare
            try:
                _schedule(child, os.SCHED_OTHER)  # at once: it may still be copying, at idle priority
                socket.send_fds(channel, [data], [*fds, conn.fileno()])
                taken = True
            except OSError:
                pass
            if taken:
                self.calls[conn] = child
                self.sel.modify(self._pidfds[child], selectors.EVENT_READ, (conn, child))
                channel.close()
                self.spare = None
        for fd in fds:
            os.close(fd)
        if not taken:
            print(f"drbd-emu serve: a call from pid {pid} runs the Python fake", file=sys.stderr, flush=True)
            _send(conn, b"fallback")
            self._close(conn)
        elif self.spare is None:
            self._fork_spare()

    def _fork_spare(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        child = os.fork()
        if child == 0:
            for s in (self.listener, mine, *self.calls):
                s.close()
            _spare(theirs)
        theirs.close()
        with contextlib.suppress(OSError):  # also here: a caller that leaves at once must find the group
            os.setpgid(child, child)
        pidfd = os.pidfd_open(child)
        self._pidfds[child] = pidfd
        self.sel.register(pidfd, selectors.EVENT_READ, (None, child))
        self.spare = (child, mine)

    def _close(self, conn: socket.socket) -> None:
        self.sel.unregister(conn)
        self.calls.pop(conn, None)
        conn.close()


def _listen(name: bytes) -> socket.socket | None:
    """The listening socket; None (the clients fall back) when the name is too long for one."""
    if len(name) > 107:
        print(f"drbd-emu serve: no tool server, the socket name is too long: {name[1:]!r}", file=sys.stderr)
        return None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for _ in range(50):  # the server of the node's previous kernel may still be on its way out
        try:
            listener.bind(name)
            break
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            time.sleep(0.1)
    else:
        print(f"drbd-emu serve: no tool server, {name[1:]!r} stays in use", file=sys.stderr)
        return None
    listener.listen(64)
    return listener


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _send(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the caller left meanwhile
        conn.send(data)


def _spare(channel: socket.socket) -> NoReturn:
    """A forked child waiting for its call: meanwhile it copies its memory (see `_populate`), then takes the
    call the server hands over. It dies with the server (its caller then exits 1, "went away")."""
    os.setpgid(0, 0)
    LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a call ends with the node's server (and kernel), too
    _schedule(0, os.SCHED_IDLE)  # the copying waits for idle CPU: it must not slow down running calls
    _populate(channel)
    data, fds, _, _ = socket.recv_fds(channel, MAX_REQUEST, 5)
    _schedule(0, os.SCHED_OTHER)
    request = parse_request(data)
    if request is None or len(fds) != 5:
        os._exit(0)
    _run(request, fds[:4], socket.socket(fileno=fds[4]))


def _schedule(pid: int, policy: int) -> None:
    with contextlib.suppress(OSError):
        os.sched_setscheduler(pid, policy, os.sched_param(0))


def _populate(channel: socket.socket) -> None:
    """Copy-on-write done ahead, in one pass (MADV_POPULATE_WRITE, Linux 5.14, over the private writable
    mappings, ~10 ms for ~12 MB) instead of a fault per page while the call runs (~3 ms of a call). Stops
    as soon as a call comes: a call that follows the last one at once gets a spare half ready."""
    waiting = select.poll()
    waiting.register(channel, select.POLLIN)
    with open("/proc/self/maps") as f:
        maps = [line.split() for line in f]
    for fields in maps:
        if fields[1] != "rw-p":
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        for at in range(start, end, POPULATE_STEP):
            if waiting.poll(0):
                return
            size = min(POPULATE_STEP, end - at)
            LIBC.madvise(ctypes.c_void_p(at), ctypes.c_size_t(size), MADV_POPULATE_WRITE)


def _run(request: Request, fds: list[int], conn: socket.socket) -> NoReturn:
    """In the child: become the caller's process (fds, directory, umask, environment), run the call as the
    Python fake would, tell the caller how it ended and exit so."""
    from lab.drbd_emu import cli

    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    os.fchdir(fds[3])
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.umask(request.umask)
    os.environ.clear()
    os.environ.update(request.env)
    sys.argv = request.argv
    enc, errors = sys.stdout.encoding, sys.stdout.errors
    for name, fd in (("stdin", 0), ("stdout", 1), ("stderr", 2)):  # buffering as the interpreter sets it up
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        buffered = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        line = fd == 2 or raw.isatty()
        setattr(sys, name, io.TextIOWrapper(buffered, encoding=enc, errors=errors, line_buffering=line))
    try:
        rc = cli.main(request.prog, request.argv[1:])
    except SystemExit as e:
        rc = _exit_code(e)
    except BaseException:
        traceback.print_exc()
        rc = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        rc = 120  # what the interpreter exits with when it can not flush its output at exit
    _send(conn, b"exit %d" % (rc & 0xFF))
    os._exit(rc & 0xFF)


def _exit_code(e: SystemExit) -> int:
    """The interpreter's exit code for an uncaught SystemExit."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1
