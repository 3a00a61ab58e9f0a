# SPDX-License-Identifier: GPL-2.0-or-later
"""A real QEMU guest under libvirt live-migrates between two lab nodes and keeps its memory and its disk.

One 2-node cluster for the module, every node starting its own libvirtd at boot (lab.libvirt.boot_hook).
The guest's disk is a loop device over a file in the lab's directory: both nodes see the same data, as
with dual-primary DRBD, and with cache='none' libvirt migrates it live without --unsafe. About 25 s.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from lab.accel import detect
from lab.cluster import Lab, LabConfig
from lab.guest import serial
from lab.guest.build import ensure_built
from lab.guest.disk import GenRecord, read_generation, read_generation_on
from lab.libvirt import GuestSpec, Libvirtd, boot_hook, domain_xml, migrate

from lab import faults
from tests.lab.conftest import record

VM = "labvm"


@pytest.fixture(scope="module")
def lab_config(lab_defaults: LabConfig) -> LabConfig:
    return lab_defaults.with_hooks(boot=[boot_hook()])


@pytest.fixture
def shared_disk(lab: Lab) -> Iterator[str]:
    """A loop device over a zeroed 16 MiB file: the same block device for every node."""
    image = lab.root / "labvm-disk.img"
    image.write_bytes(bytes(16 << 20))
    loop = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()
    yield loop
    subprocess.run(["losetup", "--detach", loop], check=False)


def test_guest_live_migrates_between_nodes(cluster: Lab, shared_disk: str) -> None:
    accel = detect()
    print(accel.describe())
    one, two = Libvirtd(cluster.nodes[0]), Libvirtd(cluster.nodes[1])
    for lv in (one, two):
        lv.start()  # started at boot: this only checks that it answers
    two.stop()
    record("libvirtd start (warm capability cache)", two.start())
    for lv in (one, two):
        pid = lv.pid()
        assert pid is not None
        print(f"libvirtd RSS on {lv.node.name}: {lv.rss_kib(pid)} KiB")

    log = cluster.root / "labvm.serial"
    spec = GuestSpec(VM, ensure_built(), log, shared_disk)
    t0 = time.monotonic()
    one.create(domain_xml(spec, accel.domain_type))
    serial.wait_for(log, r"tandem-guest: running")
    record("guest: virsh create to 'running'", time.monotonic() - t0)
    qemu = one.qemu_pid(VM)
    assert qemu is not None
    print(f"QEMU RSS on {one.node.name}: {one.rss_kib(qemu)} KiB")
    serial.wait_for(log, r"verify=ok", timeout=60)
    before = serial.parse(serial.read(log))
    assert before.disk == ("fresh",) and before.gens

    for src, dst in ((one, two), (two, one)):
        moved = migrate(src, dst, VM)
        record(f"migrate {src.node.name}->{dst.node.name}: virsh wall", moved.wall_s)
        print(f"migrate {src.node.name}->{dst.node.name}: {moved}")
        assert dst.domstate(VM) == "running"
        assert src.domstate(VM) == ""  # transient: gone from the source
        assert dst.qemu_pid(VM) is not None and src.qemu_pid(VM) is None
        mark = serial.size(log)
        # written by the destination's QEMU: the guest re-verified its memory there and kept writing
        serial.wait_for(log, r"verify=ok", after=mark, timeout=60)
        serial.wait_for(log, r"alive t=\d+ gen=\d+", after=mark, timeout=60)

    after = serial.parse(serial.read(log))
    assert after.boots == 1  # one run of the guest, never restarted
    assert after.corrupt == ()
    assert after.heartbeat_gaps() == []
    assert list(after.gens) == sorted(set(after.gens))  # the generation only went up
    assert after.gens[-1] > before.gens[-1]

    # graceful stop: the guest obeys the ACPI power button and its last generation is on the shared disk
    one.virsh("shutdown", VM)
    one.wait_state(VM, ["", "shut off"], timeout=60)
    final = serial.parse(serial.read(log))
    assert final.poweroffs == 1
    expected = GenRecord(final.gens[-1], 1, final.heartbeats[-1])
    assert read_generation(shared_disk) == expected
    assert read_generation_on(cluster.nodes[1], shared_disk) == expected


def test_guest_restarts_from_the_shared_disk_after_its_node_dies(cluster: Lab, shared_disk: str) -> None:
    one, two = Libvirtd(cluster.nodes[0]), Libvirtd(cluster.nodes[1])
    for lv in (one, two):
        lv.start()
    log = cluster.root / "labvm-failover.serial"
    xml = domain_xml(GuestSpec(VM, ensure_built(), log, shared_disk), detect().domain_type)
    one.create(xml)
    serial.wait_for(log, r"alive t=2 gen=\d+", timeout=60)

    faults.kill(cluster, cluster.nodes[0])  # power cut: its QEMU dies mid-run
    assert not cluster.nodes[0].is_on()
    printed = serial.parse(serial.read(log)).gens[-1]
    on_disk = read_generation(shared_disk)
    # each generation is written (and flushed) before it is printed; the cut may fall in between
    assert on_disk is not None and on_disk.boots == 1 and on_disk.gen in (printed, printed + 1)

    mark = serial.size(log)
    two.create(xml)
    found = serial.wait_for(log, r"disk gen=(\d+) boots=(\d+)", after=mark, timeout=60)
    assert (int(found.group(1)), int(found.group(2))) == (on_disk.gen, 1)
    serial.wait_for(log, r"alive t=1 gen=\d+", after=mark, timeout=60)
    rerun = serial.parse(serial.read(log, after=mark))
    assert rerun.boots == 1 and min(rerun.gens) > on_disk.gen
    two.virsh("destroy", VM)
