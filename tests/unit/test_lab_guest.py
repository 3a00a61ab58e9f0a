# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab guest's host-side pieces: the disk generation record and the serial log parser."""

from __future__ import annotations

import json
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
    printed = json.loads(capsys.readouterr().out)
    assert printed["record"] is None and set(printed["journal"].values()) == {None}
    assert disk.main([str(tmp_path / "missing")]) == 1


def journal_image(path: Path, gens: range, *, missing: range = range(0)) -> None:
    """A disk as the guest leaves it after writing `gens`, except that the writes of `missing` never
    reached this copy (sector 0 holds the last generation all the same)."""
    sectors = bytearray(bytes((1 + disk.JOURNAL) * disk.SECTOR + 4096))
    for g in gens:
        if g in missing:
            continue
        slot = 1 + g % disk.JOURNAL
        sectors[slot * disk.SECTOR : (slot + 1) * disk.SECTOR] = disk.encode(disk.GenRecord(g, 1, g))
    sectors[: disk.SECTOR] = disk.encode(disk.GenRecord(gens[-1], 1, gens[-1]))
    path.write_bytes(bytes(sectors))


def test_the_journal_shows_writes_a_copy_missed_that_sector_0_hides(tmp_path: Path) -> None:
    whole, stale = tmp_path / "whole.img", tmp_path / "stale.img"
    journal_image(whole, range(1, 101))
    journal_image(stale, range(1, 101), missing=range(80, 91))  # taken as in sync without the resync
    for img in (whole, stale):
        rec, _ = disk.read_copy(str(img))
        assert disk.data_check(rec, 100, "copy") is None  # sector 0 is current on both
    assert disk.journal_check(disk.read_copy(str(whole))[1], 100, "copy") is None
    problem = disk.journal_check(disk.read_copy(str(stale))[1], 100, "node2's copy")
    assert problem == (
        "node2's copy lacks 11 acknowledged write(s) of the guest's last 63 (generations 80-90; "
        "acknowledged up to 100)"
    )
    # older than the journal reaches: rewritten since, nothing to see (the check says so only in its window)
    assert disk.journal_check(disk.read_copy(str(stale))[1], 160, "copy") is not None
    journal_image(stale, range(1, 161), missing=range(80, 91))
    assert disk.journal_check(disk.read_copy(str(stale))[1], 160, "copy") is None


def test_a_slot_from_another_run_of_generations_does_not_count(tmp_path: Path) -> None:
    """Generation 70's slot holds 134 (a run of generations before a boot from an older copy): not 70."""
    img = tmp_path / "mixed.img"
    journal_image(img, range(1, 135))
    journal_image(tmp_path / "now.img", range(1, 101))
    mixed = disk.read_copy(str(img))[1] | {
        slot: rec for slot, rec in disk.read_copy(str(tmp_path / "now.img"))[1].items() if slot != 1 + 70 % 64
    }
    assert disk.journal_missing(mixed, 100) == [70]


def test_a_torn_journal_slot_counts_as_empty(tmp_path: Path) -> None:
    img = tmp_path / "torn.img"
    journal_image(img, range(1, 11))
    data = bytearray(img.read_bytes())
    data[11 * disk.SECTOR + 9] ^= 1  # generation 10's slot
    img.write_bytes(bytes(data))
    assert disk.journal_check(disk.read_copy(str(img))[1], 10, "copy") == (
        "copy lacks 1 acknowledged write(s) of the guest's last 63 (generations 10; acknowledged up to 10)"
    )


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
