# SPDX-License-Identifier: GPL-2.0-or-later
"""A lab power cut (lab/power.py) on the wire: what the dead node's processes had not sent yet must never
arrive, also not after the node is powered on again. Two network namespaces joined by a veth pair, as two
lab nodes are."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.netns import Node
from lab.power import forget_sockets

SERVER = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("10.99.7.2", 5555))
s.listen(); print("listening", flush=True)
a, _ = s.accept(); a.settimeout(4)
try:
    print(a.recv(100).decode() or "closed", flush=True)
except OSError as e:
    print(type(e).__name__, flush=True)
"""
# connects, loses its link (the power cut's first step), writes, and dies with the write unsent
CLIENT = """
import socket, subprocess
c = socket.create_connection(("10.99.7.2", 5555))
subprocess.run(["ip", "link", "set", "pa", "down"], check=True)
c.send(b"stale write")
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


@pytest.fixture
def wire() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0:
        pytest.fail("the agent tier needs root (network namespaces)")
    a, b = f"tandem-pc-a-{os.getpid()}", f"tandem-pc-b-{os.getpid()}"
    ip("netns", "add", a)
    ip("netns", "add", b)
    try:
        ip("link", "add", "pa", "netns", a, "type", "veth", "peer", "name", "pb", "netns", b)
        for ns, dev, addr in ((a, "pa", "10.99.7.1/24"), (b, "pb", "10.99.7.2/24")):
            ip("-n", ns, "addr", "add", addr, "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
        yield a, b
    finally:
        ip("netns", "del", a)
        ip("netns", "del", b)


def stale_write_arrives(a: str, b: str, *, forget: bool) -> str:
    """What the server in `b` receives once `a`'s link is up again after its client died."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", b, sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "listening"
    subprocess.run(["ip", "netns", "exec", a, sys.executable, "-c", CLIENT], check=True)
    if forget:
        forget_sockets(Node("pc", 0, Path("/nonexistent"), "10.99.7.1", a, ""))
    ip("-n", a, "link", "set", "pa", "up")
    out, _ = server.communicate(timeout=10)
    return out.strip()


def test_a_power_cut_leaves_nothing_to_send_after_the_reboot(wire: tuple[str, str]) -> None:
    a, b = wire
    # the control: without forget_sockets, the namespace's kernel retransmits the dead client's write
    assert stale_write_arrives(a, b, forget=False) == "stale write"
    assert stale_write_arrives(a, b, forget=True) == "TimeoutError"
