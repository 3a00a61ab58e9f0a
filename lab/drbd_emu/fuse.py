# SPDX-License-Identifier: GPL-2.0-or-later
"""A minimal FUSE file system in pure Python: one flat directory of fixed-size files whose reads, writes
and fsyncs go to callbacks. The emulator's data plane serves each node's DRBD volumes with it, and a loop
device over such a file is the node's /dev/drbdN (devices.py).

Why raw /dev/fuse and not libfuse: no extra packages, full control over errors (a callback's OSError becomes
the request's -errno, which the loop device turns into a guest-visible I/O error), and requests handled on
several threads so that one write blocked on frozen I/O does not stop the other volumes.

Every file is opened with FOPEN_DIRECT_IO: no page cache between the loop device and the callbacks, so what a
peer's replication writes into this node's copy is what the next read returns. Protocol: linux/fuse.h
(7.31 is all this needs); the kernel never sees more than LOOKUP/GETATTR/OPEN/READ/WRITE/FSYNC/FLUSH/RELEASE
and the directory calls of an `ls`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

MAX_WRITE = 128 * 1024
_BUF = MAX_WRITE + 4096

_IN = struct.Struct("<IIQQIIIHH")  # fuse_in_header: len opcode unique nodeid uid gid pid extlen pad
_OUT = struct.Struct("<IiQ")  # fuse_out_header: len error unique
_ATTR = struct.Struct("<QQQQQQIIIIIIIIII")  # fuse_attr
_RW_IN = struct.Struct("<QQIIQII")  # fuse_read_in / fuse_write_in: fh offset size flags lock_owner flags pad
_INIT_OUT = struct.Struct("<IIIIHHIIHHII24x")  # fuse_init_out, 64 bytes

LOOKUP, FORGET, GETATTR, SETATTR = 1, 2, 3, 4
OPEN, READ, WRITE, STATFS, RELEASE, FSYNC = 14, 15, 16, 17, 18, 20
FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR, FSYNCDIR = 25, 26, 27, 28, 29, 30
ACCESS, INTERRUPT, DESTROY, BATCH_FORGET = 34, 36, 38, 42
_NO_REPLY = {FORGET, BATCH_FORGET, INTERRUPT}
FOPEN_DIRECT_IO = 1
ROOT = 1
MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2


@dataclass(frozen=True)
class Volume:
    """What one file of the file system does: its size and its I/O (OSError → -errno)."""

    size: int
    read: Callable[[int, int], bytes]
    write: Callable[[int, bytes], None]
    sync: Callable[[], None]


class Server:
    """Serves `files()` (name → Volume, asked at every lookup so volumes can come and go) at `mountpoint`."""

    def __init__(self, mountpoint: str, files: Callable[[], dict[str, Volume]], threads: int = 4) -> None:
        self.mountpoint = mountpoint
        self.files = files
        self.threads = threads
        self.fd = -1
        self.ino: dict[str, int] = {}
        self._ino_lock = threading.Lock()

    def mount(self) -> None:
        """mount(2) with an open /dev/fuse (as fusermount does for root), then the worker threads."""
        os.makedirs(self.mountpoint, exist_ok=True)
        self.fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        opts = f"fd={self.fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
        libc = ctypes.CDLL(None, use_errno=True)
        target = self.mountpoint.encode()
        if libc.mount(b"tandem-drbd", target, b"fuse.tandem-drbd", MS_NOSUID | MS_NODEV, opts):
            err = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(err, f"mount fuse at {self.mountpoint}: {os.strerror(err)}")
        for _ in range(self.threads):
            threading.Thread(target=self._serve, daemon=True).start()

    def unmount(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(self.mountpoint.encode(), MNT_DETACH)

    def _serve(self) -> None:
        while True:
            try:
                req = os.read(self.fd, _BUF)
            except InterruptedError:
                continue
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.EINTR, errno.EAGAIN):  # an interrupted request: next one
                    continue
                return  # ENODEV: unmounted
            length, opcode, unique, nodeid, *_ = _IN.unpack_from(req)
            if opcode in _NO_REPLY:
                continue
            try:
                body = self._handle(opcode, nodeid, req[_IN.size : length])
                err = 0
            except OSError as e:
                body, err = b"", -(e.errno or errno.EIO)
            with contextlib.suppress(OSError):  # the request was interrupted or the connection aborted
                os.write(self.fd, _OUT.pack(_OUT.size + len(body), err, unique) + body)
            if opcode == DESTROY:
                return

    def _inode(self, name: str) -> int:
        with self._ino_lock:
            return self.ino.setdefault(name, len(self.ino) + 2)

    def _by_ino(self, nodeid: int) -> tuple[str, Volume]:
        for name, ino in self.ino.items():
            if ino == nodeid:
                vol = self.files().get(name)
                if vol is None:
                    break
                return name, vol
        raise OSError(errno.ENOENT, "gone")

    def _attr(self, nodeid: int) -> bytes:
        if nodeid == ROOT:
            return _ATTR.pack(ROOT, 0, 0, 0, 0, 0, 0, 0, 0, stat.S_IFDIR | 0o755, 2, 0, 0, 0, 4096, 0)
        _, vol = self._by_ino(nodeid)
        mode = stat.S_IFREG | 0o600
        return _ATTR.pack(nodeid, vol.size, vol.size // 512, 0, 0, 0, 0, 0, 0, mode, 1, 0, 0, 0, 4096, 0)

    def _handle(self, opcode: int, nodeid: int, arg: bytes) -> bytes:
        if opcode == INIT:
            major, minor, readahead, _flags = struct.unpack_from("<IIII", arg)
            if major != 7:
                raise OSError(errno.EPROTO, "FUSE major version")
            return _INIT_OUT.pack(7, min(minor, 31), readahead, 0, 16, 12, MAX_WRITE, 1, 0, 0, 0, 0)
        if opcode == LOOKUP:
            name = arg.rstrip(b"\0").decode()
            if nodeid != ROOT or name not in self.files():
                raise OSError(errno.ENOENT, name)
            ino = self._inode(name)
            return struct.pack("<QQQQII", ino, 0, 1, 3600, 0, 0) + self._attr(ino)
        if opcode in (GETATTR, SETATTR):
            return struct.pack("<QII", 3600, 0, 0) + self._attr(nodeid)
        if opcode == OPEN:
            self._by_ino(nodeid)
            return struct.pack("<QIi", nodeid, FOPEN_DIRECT_IO, 0)
        if opcode == READ:
            _fh, offset, size, *_ = _RW_IN.unpack_from(arg)
            _, vol = self._by_ino(nodeid)
            return vol.read(offset, max(0, min(size, vol.size - offset)))
        if opcode == WRITE:
            _fh, offset, size, *_ = _RW_IN.unpack_from(arg)
            _, vol = self._by_ino(nodeid)
            if offset + size > vol.size:
                raise OSError(errno.ENOSPC, "past the end of the device")
            vol.write(offset, arg[_RW_IN.size : _RW_IN.size + size])
            return struct.pack("<II", size, 0)
        if opcode == FSYNC:
            self._by_ino(nodeid)[1].sync()
            return b""
        if opcode == READDIR:
            return self._readdir(struct.unpack_from("<QQI", arg)[1])
        if opcode == STATFS:
            return struct.pack("<QQQQQIIII24x", 0, 0, 0, 0, 0, 4096, 255, 4096, 0)
        if opcode == OPENDIR:
            return struct.pack("<QIi", 0, 0, 0)
        if opcode in (FLUSH, RELEASE, RELEASEDIR, FSYNCDIR, ACCESS, DESTROY):
            return b""
        raise OSError(errno.ENOSYS, f"opcode {opcode}")

    def _readdir(self, offset: int) -> bytes:
        out = b""
        names = sorted(self.files())
        for i, name in enumerate(names[offset:], start=offset + 1):
            ino = self._inode(name)
            raw = name.encode()
            out += struct.pack("<QQII", ino, i, len(raw), stat.S_IFREG >> 12) + raw
            out += b"\0" * (-len(out) % 8)
        return out
