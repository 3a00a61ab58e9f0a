# SPDX-License-Identifier: GPL-2.0-or-later
"""The emulator's data plane without a cluster: two nodes in their own mount namespaces, each with its own
copy behind /dev/drbdN (replica.py), replicating over TCP on loopback addresses.

What real DRBD guarantees and these check, on the copies themselves (the nodes' backing files): protocol C
replication while connected; divergence while disconnected, with the blocks counted out of sync; a resync of
exactly those blocks, from the node that wrote them; reads of a Diskless Primary through its peer; a write
still in flight on a dropped connection never landing; and a forced promotion of the stale side really
running on the old data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab.drbd_emu import engine
from lab.drbd_emu.replica import _WRITE_META, WRITE, Link, backing
from lab.drbd_emu.tool import device_write_blocks

from tandem.drbd.model import ConnState, DiskState
from tests.agent.test_emu_cli import Cluster, up_all

NET = "127.0.97"  # loopback addresses: each node's kernel listens on its own


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("the agent tier needs root (mount namespaces, FUSE, loop devices)")
    c = Cluster(tmp_path, ["alice", "bob"], net=NET)
    c.start_namespaces()
    try:
        up_all(c)
        assert c.adm("alice", "primary", "--force", "r0").returncode == 0
        c.wait(lambda: c.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
        yield c
    finally:
        c.close()


def copy_of(c: Cluster, node: str, block: int) -> bytes:
    with open(backing(node, "r0", "0", c.dir), "rb") as f:
        f.seek(block * engine.BLOCK_BYTES)
        return f.read(engine.BLOCK_BYTES)


def written_blocks(c: Cluster, node: str, count: int) -> list[int]:
    """The blocks `drbd-emu write` uses for the node's next `count` writes (after sector 0's block)."""
    gen = json.loads(c.emu(node, "data", "r0").stdout)["gen"]
    return device_write_blocks(gen, count)


def write(c: Cluster, node: str, count: int) -> list[int]:
    blocks = written_blocks(c, node, count)
    w = c.emu(node, "write", "r0", "0", str(count))
    assert w.returncode == 0, w.stderr
    return blocks


def read_device(c: Cluster, node: str, block: int) -> bytes:
    """One block as the node's processes see /dev/drbdN (O_DIRECT: no page cache in between)."""
    dest = c.dir / f"read-{node}"
    args = ["bs=4096", "count=1", f"skip={block}", "iflag=direct", "status=none"]
    out = c.run(node, "dd", f"if=/dev/drbd{c.minor}", f"of={dest}", *args)
    assert out.returncode == 0, out.stderr
    return dest.read_bytes()


def test_writes_reach_the_peer_copy_before_they_complete(pair: Cluster) -> None:
    blocks = write(pair, "alice", 3)
    for b in blocks:
        mine = copy_of(pair, "alice", b)
        assert mine.startswith(b"alice gen ") and copy_of(pair, "bob", b) == mine
    assert json.loads(pair.emu("alice", "data", "r0").stdout)["oos"] == {}


def test_disconnected_writes_diverge_then_exactly_those_blocks_resync(pair: Cluster) -> None:
    before = write(pair, "alice", 1)
    pair.emu("alice", "cut", "alice", "bob")
    pair.wait(lambda: pair.status("alice").connections[0].connection is ConnState.CONNECTING)
    apart = write(pair, "alice", 5)
    assert json.loads(pair.emu("alice", "data", "r0").stdout)["oos"] == {"bob": 5}
    for b in apart:
        assert copy_of(pair, "bob", b) != copy_of(pair, "alice", b)
    pair.emu("alice", "slow-resync", "8")  # KiB/s: the 20 KiB take 2.5 s, long enough to look at
    pair.emu("alice", "heal", "alice", "bob")
    pair.wait(lambda: "r0/0/alice/bob" in json.loads(pair.emu("alice", "state").stdout).get("resyncs", {}))
    resync = json.loads(pair.emu("alice", "state").stdout)["resyncs"]["r0/0/alice/bob"]
    assert resync["blocks"] == sorted(apart) and resync["total_kib"] == 5 * engine.KIB_PER_WRITE
    pair.wait(lambda: pair.status("bob").devices[0].disk is DiskState.UP_TO_DATE)
    for b in [*before, *apart]:
        assert copy_of(pair, "bob", b) == copy_of(pair, "alice", b)
        assert copy_of(pair, "alice", b).startswith(b"alice gen ")
    assert json.loads(pair.emu("alice", "data", "r0").stdout)["oos"] == {}


def test_a_diskless_primary_reads_and_writes_through_its_peer(pair: Cluster) -> None:
    blocks = write(pair, "alice", 2)
    pair.emu("alice", "fail-disk", "alice", "r0")
    pair.wait(lambda: pair.status("alice").devices[0].disk is DiskState.DISKLESS)
    assert read_device(pair, "alice", blocks[0]) == copy_of(pair, "bob", blocks[0])
    later = write(pair, "alice", 1)
    assert copy_of(pair, "bob", later[0]).startswith(b"alice gen ")
    assert copy_of(pair, "alice", later[0]) != copy_of(pair, "bob", later[0])  # the failed disk is untouched


def test_a_write_sent_on_a_dropped_connection_never_lands(pair: Cluster) -> None:
    """tandem-19379: a fenced node's write, sent before the split and retransmitted by its TCP stack, reached
    the survivor once the link was back and rolled its copy back. DRBD closes a lost connection's sockets."""

    def alice_state() -> dict[str, Any]:
        st = json.loads(pair.emu("alice", "state").stdout)
        md = st["meta"]["alice/r0/0"]
        return {"conn": st["nodes"]["alice"]["r0"]["conns"]["bob"], "gen": md["gen"], "tag": md["tag"]}

    def send(link: Link, fill: bytes) -> None:
        a = alice_state()
        payload = _WRITE_META.pack(a["gen"], a["tag"].encode()) + fill * engine.BLOCK_BYTES
        link.request(WRITE, 0, block * engine.BLOCK_BYTES, len(payload), payload)

    block = 1000  # beyond the blocks `write` uses
    first = alice_state()["conn"]
    old = Link("alice", "r0", first["address"], first["session"])
    send(old, b"x")  # the control: on the current connection it lands
    assert copy_of(pair, "bob", block) == b"x" * engine.BLOCK_BYTES
    assert pair.adm("alice", "disconnect", "r0").returncode == 0
    pair.wait(lambda: pair.status("bob").connections[0].connection is not ConnState.CONNECTED)
    with pytest.raises(OSError):
        send(old, b"y")  # the link is up, DRBD's connection is not
    assert pair.adm("alice", "connect", "r0").returncode == 0
    pair.wait(lambda: pair.status("bob").connections[0].connection is ConnState.CONNECTED)
    with pytest.raises(OSError):
        send(old, b"y")  # connected again, but not on the connection the write was sent on
    assert copy_of(pair, "bob", block) == b"x" * engine.BLOCK_BYTES
    now = alice_state()["conn"]
    assert now["session"] != first["session"]
    send(Link("alice", "r0", now["address"], now["session"]), b"y")
    assert copy_of(pair, "bob", block) == b"y" * engine.BLOCK_BYTES


def test_a_forced_promotion_of_the_stale_side_runs_on_old_data(pair: Cluster) -> None:
    """The negative control of the data check: what a careless `primary --force` on the Outdated side does."""
    pair.emu("alice", "cut", "alice", "bob")
    pair.wait(lambda: pair.status("alice").connections[0].connection is ConnState.CONNECTING)
    lost = write(pair, "alice", 1)
    assert pair.adm("bob", "primary", "--force", "r0").returncode == 0
    assert not read_device(pair, "bob", lost[0]).startswith(b"alice gen ")


def test_no_writes_on_a_secondary(pair: Cluster) -> None:
    device = f"of=/dev/drbd{pair.minor}"
    r = pair.run("bob", "dd", "if=/dev/zero", device, "bs=4096", "count=1", "oflag=direct")
    assert r.returncode != 0 and "Input/output error" in r.stderr
