# SPDX-License-Identifier: GPL-2.0-or-later
"""The emulated DRBD's data plane in a real lab cluster: each node's /dev/drbdN is its own copy.

Shown on the copies themselves (each node's backing file, and what its /dev/drbdN returns): replication
while connected; divergence while the replication link is cut (the cluster network stays up); a resync of
exactly the changed blocks, from the node that wrote them; a Diskless Primary reading through its peer; and
the guest-level data check with its negative control: a careless `drbdadm primary --force` on the stale side
starts the guest on old data, and the check flags the lost writes, while the same move after the resync
passes; and the journal check with its control for LINBIT/drbd#145 (a returning node taken as in sync
without the resync). No Pacemaker resources: DRBD and libvirt are driven by hand, as an operator would.
About 90 s.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.accel import detect
from lab.cluster import Lab, LabConfig, poll
from lab.drbd_emu import engine
from lab.drbd_emu.replica import backing
from lab.drbd_emu.tool import device_write_blocks
from lab.guest import serial
from lab.guest.build import ensure_built
from lab.guest.disk import (
    GenRecord,
    data_check,
    journal_check,
    journal_missing,
    read_copy_on,
    read_generation_on,
)
from lab.libvirt import GuestSpec, Libvirtd, domain_xml
from lab.netns import Node

from tests.lab.conftest import emulated_drbd_vm_lab

MINOR = 9243
DEVICE = f"/dev/drbd{MINOR}"


def emu_dir(config: LabConfig) -> Path:
    return Path(f"/tmp/{config.prefix}-data-plane-emu")


@pytest.fixture(scope="module")
def lab_config(lab_defaults: LabConfig) -> Iterator[LabConfig]:
    """As test_vm_drbd, with a resync slow enough (16 KiB/s) to look at one while it runs."""
    with emulated_drbd_vm_lab(lab_defaults, emu_dir(lab_defaults), MINOR, resync_kib_s=16) as config:
        yield config


class Drbd:
    """r0 on the lab's two nodes, driven with the emulator's tools inside the nodes."""

    def __init__(self, lab: Lab, config: LabConfig) -> None:
        self.lab, self.env, self.dir = lab, dict(config.env), emu_dir(config)
        self.one, self.two = lab.nodes[0], lab.nodes[1]

    def run(self, node: Node, *argv: str) -> subprocess.CompletedProcess[str]:
        return node.run(list(argv), env=self.env, check=False, timeout=60)

    def emu(self, node: Node, *args: str) -> dict[str, object]:
        done = self.run(node, str(self.dir / "bin" / "drbd-emu"), *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def state(self) -> engine.State:
        return engine.Store(self.dir).read()

    def disk(self, node: Node) -> str:
        r = engine.res_state(self.state(), node.name, "r0")
        return "down" if r is None else str(r["disks"]["0"]["state"])

    def connected(self) -> bool:
        r = engine.res_state(self.state(), self.one.name, "r0")
        return r is not None and all(c["state"] == "Connected" for c in r["conns"].values())

    def copy(self, node: Node, block: int) -> bytes:
        with open(backing(node.name, "r0", "0", self.dir), "rb") as f:
            f.seek(block * engine.BLOCK_BYTES)
            return f.read(engine.BLOCK_BYTES)

    def write(self, node: Node, count: int) -> list[int]:
        """`count` 4 KiB writes through the node's /dev/drbdN; the blocks they went to."""
        gen = int(self.emu(node, "data", "r0")["gen"])  # type: ignore[call-overload]
        self.emu(node, "write", "r0", "0", str(count))
        return device_write_blocks(gen, count)

    def read(self, node: Node, block: int) -> bytes:
        out = self.dir / f"read-{node.name}"
        args = ["bs=4096", "count=1", f"skip={block}", "iflag=direct", "status=none"]
        done = self.run(node, "dd", f"if={DEVICE}", f"of={out}", *args)
        assert done.returncode == 0, done.stderr
        return out.read_bytes()

    def cut(self, *, heal: bool = False) -> None:
        self.emu(self.one, "heal" if heal else "cut", self.one.name, self.two.name)
        poll(lambda: self.connected() is heal or None, 30, "replication link " + ("up" if heal else "down"))

    def roles(self, one: str, two: str) -> None:
        for node, role in ((self.one, one), (self.two, two)):
            done = self.run(node, "drbdadm", role, "r0")
            assert done.returncode == 0, done.stderr


@pytest.fixture
def drbd(cluster: Lab, lab_config: LabConfig) -> Iterator[Drbd]:
    """Both nodes up, connected, UpToDate, node1 Primary."""
    d = Drbd(cluster, lab_config)
    for node in (d.one, d.two):
        assert d.run(node, "drbdadm", "up", "r0").returncode == 0
    poll(lambda: d.connected() or None, 30, "r0 connected")
    d.roles("primary", "secondary")
    yield d
    for node in (d.one, d.two):
        d.run(node, "drbdadm", "secondary", "r0")
        d.run(node, "drbdadm", "down", "r0")


def test_replication_divergence_and_the_resync_of_exactly_the_changed_blocks(drbd: Drbd) -> None:
    one, two = drbd.one, drbd.two
    for block in drbd.write(one, 3):  # connected: on both copies before the write completed
        assert drbd.copy(one, block).startswith(f"{one.name} gen ".encode())
        assert drbd.copy(two, block) == drbd.copy(one, block) == drbd.read(two, block)
    drbd.cut()
    apart = drbd.write(one, 5)
    assert drbd.emu(one, "data", "r0")["oos"] == {two.name: 5}
    assert all(drbd.copy(two, b) != drbd.copy(one, b) for b in apart)
    drbd.cut(heal=True)
    resyncs = drbd.state().get("resyncs", {})
    assert list(resyncs) == [f"r0/0/{one.name}/{two.name}"]  # from the writer to the node that was away
    (rs,) = resyncs.values()
    assert rs["blocks"] == sorted(apart) and rs["total_kib"] == 5 * engine.KIB_PER_WRITE
    poll(lambda: drbd.disk(two) == "UpToDate" or None, 60, "the resync done")
    assert all(drbd.copy(two, b) == drbd.copy(one, b) for b in apart)
    assert drbd.emu(one, "data", "r0")["oos"] == {}


def test_the_data_check_catches_a_forced_promotion_of_the_stale_side(
    drbd: Drbd, lab_config: LabConfig
) -> None:
    """Negative control: vm1 writes on node1 while the replication link is down; a careless operator then
    runs `drbdadm primary --force` on node2 and boots the guest there: the guest finds an older generation
    than it had acknowledged, and the data check says so. Positive control: the same after the resync."""
    one, two = drbd.one, drbd.two
    drbd.run(two, "drbdadm", "primary", "r0")  # dual primary, as for live migration
    lv = {n.name: Libvirtd(n) for n in (one, two)}
    for daemon in lv.values():
        daemon.start()
    log = drbd.lab.root / "data-vm.serial"
    xml = domain_xml(GuestSpec("datavm", ensure_built(), log, DEVICE), detect().domain_type)

    def boot_on(node: Node, after: int) -> int:
        lv[node.name].create(xml)
        found = serial.wait_for(log, r"disk (?:fresh|gen=(\d+))", after=after, timeout=60)
        return int(found.group(1) or 0)

    def acked() -> int:
        return serial.parse(serial.read(log)).gens[-1]

    boot_on(one, 0)
    serial.wait_for(log, r"alive t=\d+ gen=\d+", timeout=60)
    drbd.run(two, "drbdadm", "secondary", "r0")
    drbd.cut()
    at = serial.size(log)
    serial.wait_for(log, r"alive t=\d+ gen=\d+", after=at, timeout=60)
    serial.wait_for(log, r"alive t=\d+ gen=\d+", after=serial.size(log), timeout=60)
    lv[one.name].virsh("destroy", "datavm")
    written = acked()
    stale = drbd.run(two, "drbdadm", "primary", "--force", "r0")
    assert stale.returncode == 0, stale.stderr
    found = boot_on(two, serial.size(log))
    lv[two.name].virsh("destroy", "datavm")
    problem = data_check(GenRecord(found, 0, 0), written, f"the disk the guest booted from on {two.name}")
    assert problem is not None and f"holds generation {found}" in problem, (found, written)
    assert f"acknowledged generation {written}" in problem
    assert (
        data_check(read_generation_on(one, DEVICE), written, "node1's copy") is None
    )  # the writes are there

    # the same move done right: node2 back to Secondary, its stale data discarded, resynced, then the boot
    drbd.run(two, "drbdadm", "secondary", "r0")
    drbd.run(two, "drbdadm", "disconnect", "r0")
    drbd.run(two, "drbdadm", "connect", "--discard-my-data", "r0")
    drbd.cut(heal=True)
    drbd.run(one, "drbdadm", "connect", "r0")
    poll(lambda: drbd.disk(two) == "UpToDate" or None, 60, f"{two.name} resynced")
    drbd.run(two, "drbdadm", "primary", "r0")
    found = boot_on(two, serial.size(log))
    lv[two.name].virsh("destroy", "datavm")
    assert (
        data_check(GenRecord(found, 0, 0), written, f"the disk the guest booted from on {two.name}") is None
    )


@pytest.mark.parametrize("bug", [False, True], ids=["resync", "drbd-145"])
def test_the_journal_check_catches_a_return_taken_as_in_sync(drbd: Drbd, bug: bool) -> None:
    """LINBIT/drbd#145's class of bug: a node that missed writes is marked UpToDate without the resync.
    node2 is cut off while the guest writes on node1, then comes back; with the bug emulated (`no-resync`)
    it is taken as in sync, and the guest's later writes reach its sector 0, so the generation check passes
    there: the journal check names the writes its copy lacks. Without the bug the resync brings them."""
    one, two = drbd.one, drbd.two
    libvirtd = Libvirtd(one)
    libvirtd.start()
    log = drbd.lab.root / f"journal-vm-{bug}.serial"
    name = f"journalvm{int(bug)}"
    libvirtd.create(domain_xml(GuestSpec(name, ensure_built(), log, DEVICE), detect().domain_type))

    def gens(count: int) -> int:
        for _ in range(count):
            serial.wait_for(log, r"alive t=\d+ gen=\d+", after=serial.size(log), timeout=60)
        return serial.parse(serial.read(log)).gens[-1]

    try:
        gens(1)
        if bug:
            drbd.emu(one, "no-resync", "on")
        drbd.cut()
        missed = gens(3)
        drbd.cut(heal=True)
        poll(
            lambda: (drbd.disk(two) == "UpToDate" and not drbd.state().get("resyncs")) or None, 60, "in sync"
        )
        acked = gens(2)
        rec, journal = read_copy_on(two, DEVICE)
    finally:
        libvirtd.virsh("destroy", name, check=False)
        drbd.emu(one, "no-resync", "off")
    assert data_check(rec, acked, "node2's copy") is None  # sector 0 is current either way
    lacking = journal_missing(journal, acked)
    assert (missed in lacking) is bug, lacking  # the last write made while it was away
    assert (journal_check(journal, acked, "node2's copy") is None) is not bug


def test_a_diskless_primary_reads_through_its_peer(drbd: Drbd) -> None:
    """Last in the module: node1's failed disk would need a full resync to come back."""
    one, two = drbd.one, drbd.two
    (block,) = drbd.write(one, 1)
    drbd.emu(one, "fail-disk", one.name, "r0")
    poll(lambda: drbd.disk(one) == "Diskless" or None, 30, f"{one.name} Diskless")
    assert drbd.read(one, block) == drbd.copy(two, block)
    (later,) = drbd.write(one, 1)  # the write goes on through the peer; the failed disk is not touched
    assert drbd.copy(two, later).startswith(f"{one.name} gen ".encode()) and drbd.copy(
        one, later
    ) != drbd.copy(two, later)
