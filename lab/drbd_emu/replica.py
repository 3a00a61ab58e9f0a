# SPDX-License-Identifier: GPL-2.0-or-later
"""The data plane: each lab node's /dev/drbdN holds that node's own copy of the data, replicated as DRBD
replicates it, so that a promotion on stale data or a split brain really loses or forks what the guest wrote.

Map:
- `backing(node, res, vol)`: a node's copy, TANDEM_EMU_DIR/nodes/NODE/backing/RES-VOL.img (sparse).
- `DataPlane`: run by the node's emulator kernel (tool.kernel) when TANDEM_EMU_DEVICES=bind. It mounts a
  FUSE file system (fuse.py) at nodes/NODE/data with a file "RES-VOL" per copy; devices.py puts a loop
  device over that file at /dev/drbdN, so every read and write of a guest passes through here:
  - write: `engine.plan_write` under the state lock decides (Primary? I/O frozen? which peers?) and the
    local copy is written under that same lock; then every chosen peer gets the data over TCP and
    acknowledges it before the write completes (protocol C). A peer that cannot be reached holds the write
    until DRBD's state machine drops the connection (net.STALE), the blocks are then out of sync for that
    peer (`engine.undelivered`), and the write completes once I/O is no longer frozen (fence-peer done),
    or fails if the node lost quorum or its data meanwhile (`engine.complete_write`).
    A local write error (a failed or full backing disk) detaches the disk (`engine.fail_disk`) and the
    write goes on through the peers.
  - read: the local copy, or a connected UpToDate peer's (`engine.plan_read`: a Diskless Primary).
  - `copy_resyncs`: the resync, run by the kernel's tick on the SyncSource: the resync's blocks, from this
    node's copy to the target's, at the resync rate, counted in `copied_kib` (the resync ends only when all
    are there). It writes the target's file directly, under the state lock and only while the state machine
    says Connected: a resync is not cut short by a network fault in the first net.STALE seconds. A write
    the source receives for blocks its target misses (the target cannot reach the writer) is copied again
    once the source holds it (`engine.resync_ready`).
  - `serve`: the peer side of replication, on the resource's address (net.Prober's listener).
Why a FUSE file under a loop device (and not QEMU's NBD, the other way this machine allows, with no DRBD,
NBD or ublk module): the guest's disk stays a real block device at /dev/drbdN in each node, so the domain XML,
libvirt's shared-storage rule for live migration (cache=none, no --unsafe) and the domain agent's discovery
of the DRBD resources under a VM's disks are exercised exactly as with DRBD; and every process of the node
(the guest, `dd`, the lab's readers) sees one node's copy, with I/O errors, frozen I/O and reads through the
peer where DRBD has them. The cost, measured by bench/dataplane.py: 1-4 ms per 4 KiB write instead of 0.1 ms,
invisible to a guest that writes one sector a second; live migration downtime stays within the lab's earlier
range (tests/lab/test_vm_drbd.py prints it).

Faults (in the state's "faults"): `disk/NODE/RES/VOL` (fail-disk: the copy is not touched any more),
`full/NODE/RES/VOL` (the copy refuses writes with ENOSPC), `slow-peer/NODE` (ms before this node acknowledges
a replicated write: a congested peer).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lab.drbd_emu import engine, fuse
from lab.drbd_emu.net import split_address

T = TypeVar("T")
_REQ = struct.Struct("<cHQI")  # op, volume, offset, length
_WRITE_META = struct.Struct("<Q64s")  # generation, tag
_REPLY = struct.Struct("<iI")  # -errno or 0, length
HELLO, WRITE, READ = b"H", b"W", b"R"
SEND_TIMEOUT = 2.0
READ_RETRY = 10.0  # seconds a read lost with its connection is sent again
POLL = 0.05


def backing_dir(node: str, emu_dir: Path | None = None) -> Path:
    return (emu_dir or engine.emu_dir()) / "nodes" / node / "backing"


def backing(node: str, res: str, vol: str, emu_dir: Path | None = None) -> Path:
    return backing_dir(node, emu_dir) / f"{res}-{vol}.img"


def mountpoint(node: str, emu_dir: Path | None = None) -> Path:
    return (emu_dir or engine.emu_dir()) / "nodes" / node / "data"


def ensure_backing(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        with open(path, "wb") as f:
            f.truncate(engine.DEFAULT_SIZE_KIB * 1024)


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


class StaleSession(ConnectionError):
    """A request on a replication connection that DRBD has dropped since it was opened."""


class Link:
    """This node's replication connection to one peer for one resource (one request at a time), opened for
    one DRBD connection (`session`, engine.settle): DRBD tears its sockets down with the connection, so a
    write still in flight on an old one never lands after the peer has moved on."""

    def __init__(self, node: str, res: str, address: str, session: str) -> None:
        self.node, self.res, self.address, self.session = node, res, address, session
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()

    def _connect(self) -> socket.socket:
        if self.sock is None:
            sock = socket.create_connection(split_address(self.address), timeout=SEND_TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            hello = json.dumps({"node": self.node, "res": self.res, "session": self.session}).encode()
            sock.sendall(_REQ.pack(HELLO, 0, 0, len(hello)) + hello)
            self.sock = sock
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, op: bytes, vol: int, offset: int, length: int, payload: bytes = b"") -> bytes:
        with self.lock:
            try:
                sock = self._connect()
                sock.sendall(_REQ.pack(op, vol, offset, length) + payload)
                err, n = _REPLY.unpack(_recv(sock, _REPLY.size))
                data = _recv(sock, n)
            except OSError:
                self.close()
                raise
        if err:
            raise OSError(-err, f"peer: {os.strerror(-err)}")
        return data


class DataPlane:
    """One node's copies, served to its loop devices through FUSE and replicated to its peers."""

    def __init__(self, node: str, store: engine.Store) -> None:
        self.node = node
        self.store = store
        self.fds: dict[str, int] = {}
        self.links: dict[tuple[str, str], Link] = {}
        self.lock = threading.Lock()  # guards fds and links; never held while waiting for the state lock
        self.server = fuse.Server(str(mountpoint(node, store.dir)), self.files)

    def start(self) -> None:
        self.server.unmount()  # a mount of an earlier kernel of this node, dead with it
        self.server.mount()
        with self.store.locked() as st:
            st.setdefault("dataplane", {})[self.node] = True

    def stop(self) -> None:
        self.server.unmount()

    # -- this node's copies ---------------------------------------------------------------------------

    def files(self) -> dict[str, fuse.Volume]:
        directory = backing_dir(self.node, self.store.dir)
        names = [p.stem for p in directory.glob("*.img")] if directory.is_dir() else []
        return {name: self._volume(*name.rsplit("-", 1)) for name in names}

    def _fd(self, res: str, vol: str) -> int:
        with self.lock:
            key = f"{res}-{vol}"
            if key not in self.fds:
                self.fds[key] = os.open(backing(self.node, res, vol, self.store.dir), os.O_RDWR)
            return self.fds[key]

    def _volume(self, res: str, vol: str) -> fuse.Volume:
        return fuse.Volume(
            size=engine.DEFAULT_SIZE_KIB * 1024,
            read=lambda offset, n: self.read(res, vol, offset, n),
            write=lambda offset, data: self.write(res, vol, offset, data),
            sync=lambda: os.fdatasync(self._fd(res, vol)),
        )

    def _local_write(self, st: engine.State, res: str, vol: str, offset: int, data: bytes) -> None:
        if st["faults"].get(f"full/{self.node}/{res}/{vol}"):
            raise OSError(errno.ENOSPC, "backing disk full")
        os.pwrite(self._fd(res, vol), data, offset)

    def _state(self, decide: Callable[[engine.State], T]) -> T:
        """`decide` under the state lock; while I/O is frozen, wait (DRBD queues the request); a refusal is
        the request's I/O error."""
        while True:
            try:
                with self.store.locked() as st:
                    return decide(st)
            except engine.Suspended:
                time.sleep(POLL)
            except engine.StateError as e:
                raise OSError(errno.EIO, e.message) from e

    # -- the I/O path --------------------------------------------------------------------------------

    def read(self, res: str, vol: str, offset: int, n: int) -> bytes:
        """Locally or from the peer `plan_read` names. A read lost with its connection (the peer rebooted:
        this node's link to it is stale) is planned and sent again, as DRBD 9.2.8+ re-issues it to a data
        node still there, for up to READ_RETRY seconds."""
        end = time.monotonic() + READ_RETRY
        while True:
            peer = self._state(lambda st: engine.plan_read(st, self.node, res, vol, time.time()))
            if peer is None:
                return os.pread(self._fd(res, vol), n, offset)
            try:
                return self._link(peer, res).request(READ, int(vol), offset, n)
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(POLL)

    def write(self, res: str, vol: str, offset: int, data: bytes) -> None:
        blocks = engine.blocks_of(offset, len(data))

        def plan(st: engine.State) -> dict[str, Any]:
            while True:
                p = engine.plan_write(st, self.node, res, vol, time.time(), blocks)
                if not p["local"]:
                    return p
                try:
                    self._local_write(st, res, vol, offset, data)
                    return p
                except OSError as e:  # DRBD's on-io-error detach: the disk goes, the peers carry on
                    print(f"drbd-emu {self.node}: {res}/{vol} local write: {e}; detaching", file=sys.stderr)
                    engine.fail_disk(st, self.node, res, vol, time.time())

        while True:
            p = self._state(plan)
            meta = _WRITE_META.pack(p["gen"], p["tag"].encode())
            took = [self._replicate(peer, res, vol, offset, meta + data, blocks) for peer in p["peers"]]
            if p["local"] or any(took):
                break
            # a Primary without a disk of its own (a client, or its disk failed) whose peers all went away
            # under the write: no copy has it, so it is planned again, and DRBD's rules re-issue it to a
            # peer still there, fail it (EIO) or hold it; it never completes on no disk at all
        missed = [peer for peer, ok in zip(p["peers"], took, strict=True) if not ok]
        self._state(lambda st: engine.complete_write(st, self.node, res, vol, missed))

    def _replicate(
        self, peer: str, res: str, vol: str, offset: int, payload: bytes, blocks: list[int]
    ) -> bool:
        """Protocol C: the peer acknowledges (True), or the connection is gone and the blocks are out of
        sync (False)."""
        while True:
            try:
                self._link(peer, res).request(WRITE, int(vol), offset, len(payload), payload)
                return True
            except OSError:
                pass
            with self.store.locked() as st:
                engine.settle(st, time.time())
                r = engine.res_state(st, self.node, res)
                c = r["conns"].get(peer) if r is not None else None
                if c is None or c["state"] != "Connected" or not engine.has_disk(st, peer, res, vol):
                    engine.undelivered(st, self.node, peer, res, vol, blocks)
                    return False
            time.sleep(POLL * 4)

    def _link(self, peer: str, res: str) -> Link:
        """The link of the current DRBD connection to `peer` (one of an earlier connection is closed)."""
        r = engine.res_state(self.store.read(only=res), self.node, res)
        c = r["conns"].get(peer, {}) if r is not None else {}
        address, session = c.get("address", ""), c.get("session", "")
        if not address:
            raise OSError(errno.ENOTCONN, f"no connection to {peer}")
        with self.lock:
            link = self.links.get((peer, res))
            if link is None or link.session != session:
                if link is not None:
                    link.close()
                link = self.links[(peer, res)] = Link(self.node, res, address, session)
            return link

    # -- the peer side -------------------------------------------------------------------------------

    def serve(self, conn: socket.socket) -> None:
        """A peer's replication connection (a probe only connects and closes)."""
        try:
            with conn:
                op, _, _, n = _REQ.unpack(_recv(conn, _REQ.size))
                if op != HELLO:
                    return
                hello = json.loads(_recv(conn, n))
                while True:
                    op, vol, offset, n = _REQ.unpack(_recv(conn, _REQ.size))
                    payload = _recv(conn, n) if op == WRITE else b""
                    try:
                        reply = self._answer(hello, op, str(vol), offset, n, payload)
                        conn.sendall(_REPLY.pack(0, len(reply)) + reply)
                    except StaleSession:
                        return  # closed, as DRBD closes a lost connection's sockets
                    except OSError as e:
                        conn.sendall(_REPLY.pack(-(e.errno or errno.EIO), 0))
        except (OSError, ValueError):
            return  # the connection went (a probe, a cut, a power loss): the sender sees it

    def _check_session(self, st: engine.State, sender: str, res: str, session: str) -> None:
        """A request counts only on the DRBD connection it was sent on: one sent before a cut or a power
        loss, whose TCP segments the sender's kernel kept retransmitting, arrives later on the old socket
        and must not land (tandem-19379: a write of the fenced node, sent before the split, arrived once it
        was back and rolled the survivor's copy and generation back; the handshake then found the survivor
        behind its own past)."""
        r = engine.res_state(st, self.node, res)
        c = r["conns"].get(sender) if r is not None else None
        if c is None or c["state"] != "Connected" or c.get("session", "") != session:
            raise StaleSession(errno.ENOTCONN, f"{sender}: not the current connection")

    def _answer(
        self, hello: dict[str, Any], op: bytes, vol: str, offset: int, n: int, payload: bytes
    ) -> bytes:
        sender, res = hello["node"], hello["res"]
        if op == READ:
            with self.store.locked(only=res) as st:
                self._check_session(st, sender, res, hello.get("session", ""))
            return os.pread(self._fd(res, vol), n, offset)
        gen, tag = _WRITE_META.unpack_from(payload)
        data = payload[_WRITE_META.size :]
        with self.store.locked() as st:
            if engine.link_cut(st, sender, self.node):
                raise ConnectionError("replication link cut")
            self._check_session(st, sender, res, hello.get("session", ""))
            if not engine.has_disk(st, self.node, res, vol):
                raise OSError(errno.ENODEV, "no disk")
            self._local_write(st, res, vol, offset, data)
            engine.delivered(st, sender, self.node, res, vol, gen, tag.rstrip(b"\0").decode())
            slow = float(st["faults"].get(f"slow-peer/{self.node}", 0))
        if slow:
            time.sleep(slow / 1000)
        return b""

    # -- resync --------------------------------------------------------------------------------------

    def copy_resyncs(self, st: engine.State) -> None:
        """Copy what the resyncs this node is source of should have copied by now (see module doc)."""
        for key, rs in st.get("resyncs", {}).items():
            res, vol, source, target = key.split("/")
            if source != self.node or "copied_kib" not in rs:
                continue
            blocks = engine.resync_blocks(rs)
            if rs.get("done_kib", 0) >= rs["total_kib"]:
                due = len(blocks)
            else:
                due = int(len(blocks) * float(rs.get("done_kib", 0)) / rs["total_kib"])
            if not blocks:
                rs["copied_kib"] = rs["total_kib"]
                continue
            done = int(rs["copied_kib"]) // engine.KIB_PER_WRITE
            due = min(due, engine.resync_ready(st, key, rs, len(blocks), time.time()))
            if due <= done:
                continue
            target_path = backing(target, res, vol, self.store.dir)
            ensure_backing(target_path)
            fd = os.open(target_path, os.O_WRONLY)
            try:
                for block in blocks[done:due]:
                    offset = block * engine.BLOCK_BYTES
                    os.pwrite(fd, os.pread(self._fd(res, vol), engine.BLOCK_BYTES, offset), offset)
            finally:
                os.close(fd)
            rs["copied_kib"] = rs["total_kib"] if due == len(blocks) else due * engine.KIB_PER_WRITE
