# SPDX-License-Identifier: GPL-2.0-or-later
"""The guest's generation record in sector 0 of its disk, read from the host side.

Tests use it to prove which data reached which device: the guest prints `gen=N` only after the write
of N completed with a FLUSH, so the disk must then hold N or more.

Layout (little-endian, the rest of the sector is zero; guest.c writes the same):
    0  8  magic  b"TANDGEN1"
    8  4  gen       incremented by every write
   12  4  boots     incremented at every boot
   16  4  uptime_s  seconds since that boot at the time of the write
   20  4  check     FNV-1a of bytes 0..19

Sectors 1..JOURNAL are the journal: generation g is written to sector 1 + g % JOURNAL before sector 0, so a
copy that missed writes (a node taken as in sync without the resync: LINBIT/drbd#145) still shows it after
later writes have reached sector 0 there.

Run as a script (`python3 lab/guest/disk.py DEVICE`) inside a lab node to read a device that exists only
in that node's mount namespace; it prints `{"record": ..., "journal": {slot: ...}}` as JSON (`null` for a
sector never written).
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this file also runs by path inside nodes, with no lab package to import
    from lab.libvirt import NodeLike

MAGIC = b"TANDGEN1"
SECTOR = 512
JOURNAL = 64  # journal slots, sectors 1..64 (guest.c)
_FMT = "<8sIII"


class CorruptRecord(ValueError):
    """The sector carries the magic but its checksum does not match: a torn or mixed-up write."""


@dataclass(frozen=True)
class GenRecord:
    gen: int
    boots: int
    uptime_s: int


def fnv1a(data: bytes) -> int:
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def encode(rec: GenRecord) -> bytes:
    """A whole sector as the guest would write it (used to seed disks and in tests)."""
    head = struct.pack(_FMT, MAGIC, rec.gen, rec.boots, rec.uptime_s)
    return (head + struct.pack("<I", fnv1a(head))).ljust(SECTOR, b"\0")


def decode(sector: bytes) -> GenRecord | None:
    """None for a disk the guest never wrote (no magic)."""
    if len(sector) < 24:
        raise ValueError(f"need 24 bytes of sector 0, got {len(sector)}")
    magic, gen, boots, uptime = struct.unpack_from(_FMT, sector)
    if magic != MAGIC:
        return None
    (check,) = struct.unpack_from("<I", sector, 20)
    if check != fnv1a(sector[:20]):
        raise CorruptRecord(f"generation record checksum {check:#x} does not match")
    return GenRecord(gen, boots, uptime)


def read_sectors(path: str, count: int = 1) -> bytes:
    """The first `count` sectors, with O_DIRECT where the file system allows it.

    Two loop devices over one shared file (the lab's dual-primary stand-in) each have their own page
    cache; a buffered read could return what this host read earlier, not what the guest wrote since.
    """
    size = -(-count * SECTOR // 4096) * 4096
    buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT needs
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:  # tmpfs and some others refuse O_DIRECT; their page cache is the only copy anyway
        fd = os.open(path, os.O_RDONLY)
    try:
        n = os.preadv(fd, [buf], 0)
    finally:
        os.close(fd)
    return bytes(buf[: min(n, count * SECTOR)])


def read_generation(path: str) -> GenRecord | None:
    return decode(read_sectors(path))


Journal = dict[int, "GenRecord | None"]  # slot (its sector) → the record there


def read_copy(path: str) -> tuple[GenRecord | None, Journal]:
    """Sector 0's record and the journal's."""
    data = read_sectors(path, 1 + JOURNAL)
    return decode(data[:SECTOR]), {slot: _slot(data, slot) for slot in range(1, 1 + JOURNAL)}


def _slot(data: bytes, slot: int) -> GenRecord | None:
    """A journal slot; a torn one (a write cut short) counts as empty."""
    try:
        return decode(data[slot * SECTOR : (slot + 1) * SECTOR])
    except (CorruptRecord, ValueError):
        return None


def journal_missing(journal: Journal, acked: int) -> list[int]:
    """The acknowledged generations of the guest's last JOURNAL - 1 that `journal` lacks. Generation g's
    slot may hold g, or a later generation of the same slot written since `acked` was read (at most half
    a journal later); anything else (older, or from another run of generations) is missing. The oldest
    slot is left out: the guest may be rewriting it with acked + 1 as it is read."""
    missing = []
    for g in range(max(1, acked - JOURNAL + 2), acked + 1):
        rec = journal.get(1 + g % JOURNAL)
        if rec is None or rec.gen < g or (rec.gen - g) % JOURNAL or rec.gen > acked + JOURNAL // 2:
            missing.append(g)
    return missing


def journal_check(journal: Journal, acked: int, where: str) -> str | None:
    """Every generation the guest acknowledged among its last ones must be in its slot: a copy that missed
    writes fails here even when later writes put a current record in sector 0. None when it holds; else
    the violation, with the generations missing."""
    missing = journal_missing(journal, acked)
    if not missing:
        return None
    return (
        f"{where} lacks {len(missing)} acknowledged write(s) of the guest's last {JOURNAL - 1} "
        f"(generations {_ranges(missing)}; acknowledged up to {acked})"
    )


def _ranges(values: list[int]) -> str:
    """[3, 4, 5, 9] → "3-5, 9"."""
    out: list[str] = []
    start = prev = values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(out)


def data_check(found: GenRecord | None, acked: int, where: str) -> str | None:
    """The guest-level data check: `where` (a node's copy, or the disk a restarted guest booted from) must
    hold every generation the guest acknowledged, i.e. printed after its FLUSH completed. None when it does;
    else the violation, with both numbers."""
    have = found.gen if found is not None else 0
    if have >= acked:
        return None
    return (
        f"{where} holds generation {have}, but the guest had acknowledged generation {acked}: "
        f"{acked - have} acknowledged write(s) lost"
    )


def read_generation_on(node: NodeLike, device: str) -> GenRecord | None:
    """The record as `node` sees `device` (e.g. the DRBD emulator's /dev/drbd0, which exists only there)."""
    return read_copy_on(node, device)[0]


def read_copy_on(node: NodeLike, device: str) -> tuple[GenRecord | None, Journal]:
    """Sector 0's record and the journal as `node` sees `device`."""
    out = node.run([sys.executable, str(Path(__file__).resolve()), device], timeout=30).stdout
    raw = json.loads(out)

    def rec(value: dict[str, int] | None) -> GenRecord | None:
        return None if value is None else GenRecord(**value)

    return rec(raw["record"]), {int(slot): rec(value) for slot, value in raw["journal"].items()}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: disk.py DEVICE|IMAGE", file=sys.stderr)
        return 2
    try:
        rec, journal = read_copy(argv[0])
    except (OSError, ValueError) as exc:
        print(f"disk.py: {argv[0]}: {exc}", file=sys.stderr)
        return 1

    def plain(r: GenRecord | None) -> dict[str, int] | None:
        return None if r is None else asdict(r)

    print(json.dumps({"record": plain(rec), "journal": {slot: plain(r) for slot, r in journal.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
