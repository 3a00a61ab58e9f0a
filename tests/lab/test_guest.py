# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab's test guest on a bare QEMU (TCG, no libvirt, no cluster): what the VM tests rely on.

About 10 s: four short boots of the 8 KiB guest.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lab.guest import disk, serial
from lab.guest.build import ensure_built
from lab.guest.qemu import qemu_argv, qmp

from lab import accel


@pytest.fixture(scope="module")
def kernel() -> Path:
    return ensure_built()


class Guest:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, sock: Path, started: float) -> None:
        self.proc, self.log, self.sock, self.started = proc, log, sock, started


@pytest.fixture
def boot(kernel: Path, tmp_path: Path) -> Iterator[Callable[..., Guest]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, cmdline: str, image: Path | None = None) -> Guest:
        log, sock = tmp_path / f"{name}.serial", tmp_path / f"{name}.qmp"
        argv = qemu_argv(kernel, log, cmdline=cmdline, disk=image, qmp=sock)
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        procs.append(proc)
        return Guest(proc, log, sock, started)

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_guest_counts_generations_on_its_disk_and_obeys_the_power_button(
    boot: Callable[..., Guest], tmp_path: Path
) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(1 << 20))

    first = boot("first", "fill_mb=4 dirty_kb=256 verify_s=1 gen_s=1", image)
    serial.wait_for(first.log, r"tandem-guest: running")
    print(f"guest boot (qemu exec to 'running', TCG): {time.monotonic() - first.started:.2f}s")
    serial.wait_for(first.log, r"alive t=3 gen=\d+")
    qmp(first.sock, "system_powerdown")
    assert first.proc.wait(timeout=30) == 0
    log = serial.parse(serial.read(first.log))
    assert log.poweroffs == 1
    assert log.disk == ("fresh",)
    assert log.verified >= 2 and not log.corrupt
    # gen= is printed only after that generation was written and flushed: the disk holds the last one
    assert disk.read_generation(str(image)) == disk.GenRecord(log.gens[-1], 1, log.heartbeats[-1])
    assert (
        disk.journal_check(disk.read_copy(str(image))[1], log.gens[-1], "the image") is None
    )  # each in its slot

    second = boot("second", "fill_mb=4 dirty_kb=256 gen_s=1", image)
    serial.wait_for(second.log, r"alive t=2 gen=\d+")
    log2 = serial.parse(serial.read(second.log))
    assert log2.disk == (f"gen={log.gens[-1]} boots=1",)
    assert min(log2.gens) > log.gens[-1]
    again = disk.read_generation(str(image))
    assert again is not None and again.boots == 2


def test_memory_checks_detect_damage(boot: Callable[..., Guest]) -> None:
    guest = boot("corrupt", "fill_mb=4 dirty_kb=256 verify_s=1 corrupt_s=2")
    m = serial.wait_for(guest.log, r"verify=CORRUPT .*fill_bad=(\d+) dirty_bad=(\d+)")
    assert (m.group(1), m.group(2)) == ("1", "1")
    before = serial.read(guest.log)[: m.start()]
    assert re.search(r"verify=ok t=1", before)
    assert "disk none" in before


def test_accelerator_probe_sees_a_running_guest() -> None:
    # the probe that decides KVM on hosts with real KVM; TCG always runs the guest
    assert accel.probe("tcg")
    print(accel.detect().describe())
