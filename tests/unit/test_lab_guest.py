# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab guest's host-side pieces: the disk generation record and the serial log parser."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lab.guest import disk, serial

u32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(u32, u32, u32)
def test_record_round_trip(gen: int, boots: int, uptime: int) -> None:
    rec = disk.GenRecord(gen, boots, uptime)
    sector = disk.encode(rec)
    assert len(sector) == disk.SECTOR
    assert disk.decode(sector) == rec


def test_record_layout_matches_the_guest() -> None:
    # bytes as guest.c writes them: "TANDGEN1", gen=5, boots=1, uptime_s=4, FNV-1a (seen on a real disk)
    head = b"TANDGEN1" + struct.pack("<III", 5, 1, 4)
    assert disk.fnv1a(head) == 0x79FC8C1D
    assert disk.decode(head + bytes.fromhex("1d8cfc79")) == disk.GenRecord(5, 1, 4)


def test_blank_disk_has_no_record() -> None:
    assert disk.decode(bytes(512)) is None


@given(st.integers(min_value=8, max_value=23), st.integers(min_value=1, max_value=255))
def test_any_damaged_byte_is_detected(offset: int, flip: int) -> None:
    sector = bytearray(disk.encode(disk.GenRecord(41, 3, 17)))
    sector[offset] ^= flip
    with pytest.raises(disk.CorruptRecord):
        disk.decode(bytes(sector))


def test_short_read_is_an_error() -> None:
    with pytest.raises(ValueError):
        disk.decode(b"TANDGEN1")


def test_read_generation_from_an_image(tmp_path: Path) -> None:
    img = tmp_path / "disk.img"
    img.write_bytes(disk.encode(disk.GenRecord(7, 2, 9)) + bytes(4096))
    assert disk.read_generation(str(img)) == disk.GenRecord(7, 2, 9)


def test_disk_script_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(8192))
    assert disk.main([str(img)]) == 0
    assert capsys.readouterr().out.strip() == "null"
    assert disk.main([str(tmp_path / "missing")]) == 1


LOG = """\r
tandem-guest: booted mem=63MiB fill=16MiB dirty=4096KiB pm=0x0600\r
tandem-guest: disk fresh\r
tandem-guest: running\r
tandem-guest: alive t=1 gen=2\r
tandem-guest: alive t=2 gen=3\r
tandem-guest: verify=ok t=2 pass=1\r
tandem-guest: alive t=4 gen=5\r
tandem-guest: verify=CORRUPT t=4 pass=2 fill_bad=1 dirty_bad=1\r
tandem-guest: poweroff reason=acpi-power-button\r
\x00
tandem-guest: booted mem=63MiB fill=16MiB dirty=4096KiB pm=0x0600\r
tandem-guest: disk gen=5 boots=1\r
tandem-guest: alive t=1 gen=7\r
"""


def test_parse_serial_log() -> None:
    log = serial.parse(LOG)
    assert log.boots == 2
    assert log.heartbeats == (1, 2, 4, 1)
    assert log.gens == (2, 3, 5, 7)
    assert log.verified == 1
    assert log.corrupt == ("verify=CORRUPT t=4 pass=2 fill_bad=1 dirty_bad=1",)
    assert log.disk == ("fresh", "gen=5 boots=1")
    assert log.poweroffs == 1
    assert log.running
    # t=2 -> t=4 lost a second; t=4 -> t=1 is a new boot, not a gap
    assert log.heartbeat_gaps() == [(2, 4)]


def test_wait_for_reads_past_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_text(LOG)
    mark = LOG.index("tandem-guest: alive t=4")
    assert serial.wait_for(log, r"alive t=(\d+)", after=mark).group(1) == "4"
    with pytest.raises(serial.SerialTimeout, match="alive t=1 gen=7"):
        serial.wait_for(log, r"verify=ok", after=mark, timeout=0.2)
    assert serial.size(tmp_path / "missing") == 0
    assert serial.read(tmp_path / "missing") == ""
