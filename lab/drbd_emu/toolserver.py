# SPDX-License-Identifier: GPL-2.0-or-later
"""The node's tool server: the fakes' Python imported once, so that a drbdsetup/drbdadm call costs a fork,
not an interpreter start and its imports (~70 ms a call before it).

The compiled fakes (client.c, whose comment has the protocol) send each call here with their fds 0-2, their
working directory and environment. Per call a child is forked that takes all of those over and runs
`cli.main` as the Python fake would, so outputs, messages and exit codes are the same; the server passes the
child's exit status back. One child per call, so calls that wait (a `primary` held by its fence-peer handler)
run side by side. The accept loop is single-threaded, so forking is safe. A call is only served from the
caller's own namespaces and user (else the client runs the Python fake itself); a caller that goes away (a
timeout's kill) takes its call's process group with it.

The kernel (tool.py) starts the server and it dies with the kernel (PR_SET_PDEATHSIG); its socket is
abstract, so nothing is left behind either way.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
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


class Request(NamedTuple):
    prog: str
    umask: int
    argv: list[str]
    env: dict[str, str]


def address(emu_dir: str, node: str) -> bytes:
    """The abstract socket name a client computes for its call (client.c `address`)."""
    return f"\0tandem-drbd-emu:{node}:{os.path.realpath(emu_dir)}".encode()


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
    import ctypes

    from lab.drbd_emu import cli, devices, render, view  # noqa: F401 (once, here: the children have them)

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        return  # the kernel died before the line above
    listener = _listen(address(emu_dir, node))
    if listener is None:
        return
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    calls: dict[socket.socket, int] = {}  # connection → pid of its child (0: request not read yet)
    while True:
        for key, _ in sel.select():
            obj = key.fileobj
            if obj is listener:
                conn, _ = listener.accept()
                calls[conn] = 0
                sel.register(conn, selectors.EVENT_READ)
            elif isinstance(obj, socket.socket) and calls[obj] == 0:
                pid = _start(obj, listener, calls)
                if pid:
                    calls[obj] = pid
                    sel.register(os.pidfd_open(pid), selectors.EVENT_READ, (obj, pid))
                else:
                    _close(sel, calls, obj)
            elif isinstance(obj, socket.socket):  # the caller is gone before its call ended: end it
                _kill_group(calls[obj])
                _close(sel, calls, obj)
            else:  # a child's pidfd: the call ended
                conn, pid = key.data
                _, status = os.waitpid(pid, 0)
                sel.unregister(obj)
                os.close(key.fd)
                if conn in calls:
                    _send(conn, reply(status))
                    _close(sel, calls, conn)


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


def _close(sel: selectors.BaseSelector, calls: dict[socket.socket, int], conn: socket.socket) -> None:
    sel.unregister(conn)
    calls.pop(conn, None)
    conn.close()


def _start(conn: socket.socket, listener: socket.socket, calls: dict[socket.socket, int]) -> int:
    """Read a call and fork its child; 0 when there is none to run (the client was told to fall back, or
    left)."""
    try:
        data, fdlist, flags, _ = socket.recv_fds(conn, MAX_REQUEST, 4)
    except OSError:
        return 0
    request = parse_request(data) if not flags & socket.MSG_TRUNC and len(fdlist) == 4 else None
    pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[:2]
    if request is None or pid[1] != os.getuid() or not same_namespaces(pid[0]):
        _send(conn, b"fallback")
        for fd in fdlist:
            os.close(fd)
        return 0
    child = os.fork()
    if child == 0:
        listener.close()
        for other in calls:
            other.close()
        _run(request, fdlist)
    with contextlib.suppress(OSError):  # also here: a caller that leaves at once must find the group
        os.setpgid(child, child)
    for fd in fdlist:
        os.close(fd)
    return child


def _run(request: Request, fds: list[int]) -> NoReturn:
    """In the child: become the caller's process (fds, directory, umask, environment), then run the call as
    the Python fake would and exit as it would."""
    from lab.drbd_emu import cli

    os.setpgid(0, 0)
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
    os._exit(rc & 0xFF)


def _exit_code(e: SystemExit) -> int:
    """The interpreter's exit code for an uncaught SystemExit."""
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)
    return 1
