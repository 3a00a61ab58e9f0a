# SPDX-License-Identifier: GPL-2.0-or-later
"""The compiled drbdsetup/drbdadm (lab/drbd_emu/client.c) against the Python fakes: the same stdout, stderr
and exit code for every call, served by the node's tool server (toolserver.py) beside its kernel, or by the
Python fake they fall back to without one. Nodes as in test_emu_cli (mount namespaces, kernels)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.drbd_emu.install import fakes_dir, write_wrappers
from lab.drbd_emu.toolserver import listening

from tandem.drbd.model import DiskState, Role
from tests.agent.test_emu_cli import Cluster, up_all

CALLS = [
    ["drbdsetup", "status"],
    ["drbdsetup", "status", "r0"],
    ["drbdsetup", "status", "r0", "--json"],
    ["drbdsetup", "status", "r0", "--verbose", "--statistics"],
    ["drbdsetup", "events2", "--now", "r0"],
    ["drbdsetup", "events2", "--now", "--statistics"],
    ["drbdsetup", "events2", "r0"],  # not emulated: exit 20
    ["drbdsetup", "role", "r0"],
    ["drbdsetup", "dstate", "r0"],
    ["drbdsetup", "status", "nosuch"],  # exit 10
    ["drbdsetup"],  # usage, exit 20
    ["drbdadm", "--version"],
    ["drbdadm", "sh-resources"],
    ["drbdadm", "sh-dev", "r0"],
    ["drbdadm", "sh-minor", "r0"],
    ["drbdadm", "sh-ll-dev", "r0"],
    ["drbdadm", "dump", "r0"],
    ["drbdadm", "dump", "nosuch"],  # exit 10
    ["drbdadm", "-d", "up", "r0"],
    ["drbdadm", "cstate", "r0"],
    ["drbdadm", "status", "r0"],
    ["drbdadm", "primary", "r0"],  # refused: the data is Inconsistent, exit 17 and drbdadm's message
    ["drbdadm", "adjust", "r0"],  # nothing to change
]


class Tools:
    """The compiled tools of a cluster's emulator directory, and the Python fakes to compare them with;
    once the nodes' kernels run, their tool servers are listening."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.bin = write_wrappers(c.dir, devices="bind")
        self.background: list[subprocess.Popen[bytes]] = []
        c.wait(lambda: all(listening(str(c.dir), node) for node in c.kernels))

    def call(self, node: str, *argv: str) -> subprocess.Popen[bytes]:
        """A compiled tool's call on `node`, running in the background (killed at the end of the test)."""
        prefix = ["nsenter", "-t", str(self.c.holders[node].pid), "-m", "--"]
        argv = (*prefix, str(self.bin / argv[0]), *argv[1:])
        p = subprocess.Popen(argv, env=self.c.env(node), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.background.append(p)
        return p

    def both(self, node: str, argv: list[str]) -> tuple[subprocess.CompletedProcess[str], ...]:
        """The call through the compiled tool, then through the Python fake."""
        return tuple(self.c.run(node, str(d / argv[0]), *argv[1:]) for d in (self.bin, fakes_dir()))

    def served_only(self) -> Path:
        """Take the Python fallback away, so that a call that succeeds was served (put back: `py.rename`)."""
        return (self.bin / "py").rename(self.bin / "py.away")


def outcome(p: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    return p.returncode, p.stdout, p.stderr


def server_pids(c: Cluster) -> list[int]:
    """The tool servers of this cluster's nodes (children of their kernels)."""
    kernels = {str(k.pid) for k in c.kernels.values()}
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True)
    rows = [line.split(None, 2) for line in out.stdout.splitlines()]
    return [int(pid) for pid, ppid, args in rows if ppid in kernels and " serve " in f"{args} "]


def call_of(server: int, client: subprocess.Popen[bytes]) -> int | None:
    """The server's child running the call of `client` (it writes to the client's stdout), if any."""
    pipe = os.readlink(f"/proc/{client.pid}/fd/1")
    for pid in Path(f"/proc/{server}/task/{server}/children").read_text().split():
        try:
            if os.readlink(f"/proc/{pid}/fd/1") == pipe:
                return int(pid)
        except FileNotFoundError:
            pass  # gone meanwhile
    return None


def server_of(c: Cluster, node: str) -> int:
    (pid,) = [p for p in server_pids(c) if parent_of(p) == c.kernels[node].pid]
    return pid


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_served_calls_answer_as_the_python_fakes(tmp_path: Path) -> None:
    """Every call of CALLS, with resources up and with a Primary, the same through the server as through
    the Python fake; the server answered all (no fallback to run); promotion and demotion through it."""
    c = Cluster(tmp_path, ["alice", "bob"])
    try:
        c.start_namespaces()
        tools = Tools(c)
        servers = server_pids(c)
        assert len(servers) == 2
        up_all(c)
        away = tools.served_only()
        for argv in CALLS:
            served, python = tools.both("alice", argv)
            assert outcome(served) == outcome(python), argv
        served = c.run("alice", str(tools.bin / "drbdadm"), "primary", "--force", "r0")
        assert served.returncode == 0, served.stderr
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        for argv in CALLS:
            served, python = tools.both("bob", argv)
            assert outcome(served) == outcome(python), argv
        assert c.run("alice", str(tools.bin / "drbdadm"), "secondary", "r0").returncode == 0
        assert c.status("alice").role is Role.SECONDARY
        away.rename(tools.bin / "py")
    finally:
        c.close()
    c.wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in servers))  # gone with their kernels


def test_without_a_server_the_python_fake_answers(tmp_path: Path) -> None:
    """No kernel (so no server): the compiled tools exec the Python fake, with the same results, also for
    state changes."""
    c = Cluster(tmp_path, ["alice", "bob"])
    try:
        tools = Tools(c)
        for node in c.nodes:
            r = c.run(node, str(tools.bin / "drbdadm"), "up", "r0")
            assert r.returncode == 0, r.stderr
        for argv in CALLS:
            served, python = tools.both("alice", argv)
            assert outcome(served) == outcome(python), argv
    finally:
        c.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Tools]:
    """alice and bob with their kernels and tool servers, r0 up, fence-peer answering 7 (peer outdated)."""
    c = Cluster(tmp_path, ["alice", "bob"], handlers='fence-peer "exit 7";')
    tools = None
    try:
        c.start_namespaces()
        tools = Tools(c)
        up_all(c)
        yield tools
    finally:
        for p in tools.background if tools else []:
            p.kill()
            p.wait()
        c.close()


def test_a_waiting_call_does_not_hold_up_the_others_and_ends_with_its_caller(served: Tools) -> None:
    """`primary` with the peer unreachable runs fence-peer first; while that handler hangs, other calls are
    answered. A caller killed meanwhile takes its call (the server's child) with it. Once the handler
    outdates the peer (exit 7), the promotion goes through, as the Python fake's would."""
    c = served.c
    c.adm("alice", "primary", "--force", "r0")
    c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    c.adm("alice", "secondary", "r0")
    c.emu("bob", "handler", "bob", "fence-peer", "hang")
    c.emu("bob", "cut", "alice", "bob")
    c.wait(lambda: c.status("bob").connections[0].peer_devices[0].peer_disk is DiskState.DUNKNOWN)
    server = server_of(c, "bob")
    doomed = served.call("bob", "drbdadm", "primary", "r0")
    c.wait(lambda: call_of(server, doomed) is not None)
    child = call_of(server, doomed)
    started = time.monotonic()
    assert c.run("bob", str(served.bin / "drbdsetup"), "status", "r0").returncode == 0
    assert time.monotonic() - started < 5
    doomed.kill()
    doomed.wait()
    c.wait(lambda: not Path(f"/proc/{child}").exists())
    waiting = served.call("bob", "drbdadm", "primary", "r0")
    c.wait(lambda: call_of(server, waiting) is not None)
    c.emu("bob", "handler", "bob", "fence-peer", "ok")
    _, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert c.status("bob").role is Role.PRIMARY


def test_a_killed_call_exits_by_its_signal(served: Tools) -> None:
    """A served call that dies of a signal makes the compiled tool die of the same signal."""
    c = served.c
    c.emu("alice", "handler", "alice", "fence-peer", "hang")
    c.emu("alice", "cut", "alice", "bob")
    server = server_of(c, "alice")
    fence = served.call("alice", "drbdadm", "fence-peer", "r0:bob")
    c.wait(lambda: call_of(server, fence) is not None)
    child = call_of(server, fence)
    assert child is not None
    os.kill(child, signal.SIGTERM)
    fence.communicate(timeout=30)
    assert fence.returncode == -signal.SIGTERM
