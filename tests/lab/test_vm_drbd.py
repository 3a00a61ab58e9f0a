# SPDX-License-Identifier: GPL-2.0-or-later
"""A guest whose disk is the DRBD emulator's /dev/drbdN live-migrates between two dual-primary lab nodes.

The emulator (lab.drbd_emu) bind-mounts a block node over /dev/drbdN in each node while the resource is up,
each node's over its own copy, replicated with protocol C, so both Primaries see the same data as with
allow-two-primaries. libvirt treats the block device as shared storage (no --unsafe). Own cluster (~5 s up),
about 15 s in all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lab.accel import detect
from lab.cluster import Lab, LabConfig, poll
from lab.guest import serial
from lab.guest.build import ensure_built
from lab.guest.disk import read_generation_on
from lab.libvirt import GuestSpec, Libvirtd, domain_xml, migrate

from tests.lab.conftest import emulated_drbd_vm_lab

MINOR = 9241
DEVICE = f"/dev/drbd{MINOR}"


def emu_dir(config: LabConfig) -> Path:
    return Path(f"/tmp/{config.prefix}-vm-drbd-emu")


@pytest.fixture(scope="module")
def lab_config(lab_defaults: LabConfig) -> Iterator[LabConfig]:
    """r0 UpToDate on both nodes (as after the initial sync); the emulator and libvirtd in every node."""
    with emulated_drbd_vm_lab(lab_defaults, emu_dir(lab_defaults), MINOR) as config:
        yield config


def test_guest_on_emulated_drbd_migrates_live(cluster: Lab, lab_config: LabConfig) -> None:
    env = dict(lab_config.env)
    for node in cluster.nodes:
        node.run(["drbdadm", "up", "r0"], env=env)
    for node in cluster.nodes:  # promoted apart, each would start new data: a split brain on connect
        node.run(["drbdsetup", "wait-connect-resource", "--wfc-timeout=30", "r0"], env=env)
    for node in cluster.nodes:
        node.run(["drbdadm", "primary", "r0"], env=env)
        assert node.run(["test", "-b", DEVICE], check=False).returncode == 0
    one, two = Libvirtd(cluster.nodes[0]), Libvirtd(cluster.nodes[1])
    for lv in (one, two):
        lv.start()

    log = cluster.root / "drbdvm.serial"
    one.create(domain_xml(GuestSpec("drbdvm", ensure_built(), log, DEVICE), detect().domain_type))
    serial.wait_for(log, r"verify=ok", timeout=60)

    def held_open() -> list[str]:
        """The nodes whose DRBD open count (status --json) is up: where QEMU runs."""
        shown = {
            n.name: json.loads(n.run(["drbdsetup", "status", "--json", "r0"], env=env).stdout)
            for n in cluster.nodes
        }
        return [name for name, res in shown.items() if res[0]["devices"][0]["open"]]

    def only_on(node: str) -> Callable[[], bool | None]:
        return lambda: held_open() == [node] or None

    assert held_open() == [cluster.nodes[0].name]
    for src, dst in ((one, two), (two, one)):
        print(migrate(src, dst, "drbdvm"))
        poll(only_on(dst.node.name), 20, "the source's QEMU gone, its device closed")
        assert dst.domstate("drbdvm") == "running"
        serial.wait_for(log, r"verify=ok", after=serial.size(log), timeout=60)

    one.virsh("shutdown", "drbdvm")
    one.wait_state("drbdvm", ["", "shut off"], timeout=60)
    run = serial.parse(serial.read(log))
    assert run.boots == 1 and run.poweroffs == 1 and not run.corrupt and run.heartbeat_gaps() == []
    # both Primaries read the guest's last generation through their own /dev/drbdN
    seen = {node.name: read_generation_on(node, DEVICE) for node in cluster.nodes}
    assert {rec.gen if rec else None for rec in seen.values()} == {run.gens[-1]}, seen
    for node in cluster.nodes:
        node.run(["drbdadm", "down", "r0"], env=env)
