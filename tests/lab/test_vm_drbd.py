"""A guest whose disk is the DRBD emulator's /dev/drbdN live-migrates between two dual-primary lab nodes.

The emulator (lab.drbd_emu) bind-mounts a block node over /dev/drbdN in each node while the resource is up,
both over one loop device, so both Primaries see the same data as with allow-two-primaries. libvirt treats
the block device as shared storage (no --unsafe). Own cluster (~5 s up), about 15 s in all.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.accel import detect
from lab.cluster import Lab, LabConfig
from lab.drbd_emu.install import lab_hooks, write_wrappers
from lab.guest import serial
from lab.guest.build import ensure_built
from lab.guest.disk import read_generation_on
from lab.libvirt import GuestSpec, Libvirtd, boot_hook, domain_xml, migrate

DEVICE = "/dev/drbd9241"
CONF = """resource r0 {{
  net {{ protocol C; allow-two-primaries yes; }}
  volume 0 {{ device {device}; disk /dev/lab/r0; meta-disk internal; }}
  on node1 {{ node-id 0; address {net}.1:7789; }}
  on node2 {{ node-id 1; address {net}.2:7789; }}
}}
"""


def emu_dir(config: LabConfig) -> Path:
    return Path(f"/tmp/{config.prefix}-vm-drbd-emu")


@pytest.fixture(scope="module")
def lab_config(lab_defaults: LabConfig) -> Iterator[LabConfig]:
    """r0 UpToDate on both nodes (as after the initial sync); the emulator and libvirtd in every node."""
    d = emu_dir(lab_defaults)
    subprocess.run(["rm", "-rf", str(d)], check=True)
    d.mkdir(parents=True)
    conf = d / "drbd.conf"
    conf.write_text(CONF.format(device=DEVICE, net=lab_defaults.net))
    bindir = write_wrappers(d, devices="")

    def host(node: str, prog: str, *args: str) -> None:
        env = {**os.environ, "TANDEM_EMU_DIR": str(d), "TANDEM_EMU_NODE": node, "TANDEM_EMU_DEVICES": ""}
        subprocess.run([str(bindir / prog), *args], env=env, check=True, capture_output=True)

    host("node1", "drbd-emu", "init")
    for n in ("node1", "node2"):
        host(n, "drbdadm", "-c", str(conf), "up", "r0")
    host("node1", "drbdadm", "-c", str(conf), "primary", "--force", "r0")
    host("node2", "drbdadm", "-c", str(conf), "wait-sync", "r0")
    for n in ("node1", "node2"):
        host(n, "drbdadm", "-c", str(conf), "down", "r0")
    yield lab_defaults.with_hooks(**lab_hooks(d, conf)).with_hooks(boot=[boot_hook()])  # type: ignore[arg-type]
    # after the lab is down: the loop devices the emulator set up over its backing files, then its state
    for image in (d / "backing").glob("*.img"):
        attached = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True, check=False)
        for line in attached.stdout.splitlines():
            subprocess.run(["losetup", "-d", line.split(":", 1)[0]], check=False)
    subprocess.run(["rm", "-rf", str(d)], check=False)


def test_guest_on_emulated_drbd_migrates_live(cluster: Lab, lab_config: LabConfig) -> None:
    env = dict(lab_config.env)
    for node in cluster.nodes:
        node.run(["drbdadm", "up", "r0"], env=env)
    for node in cluster.nodes:
        node.run(["drbdadm", "primary", "r0"], env=env)
        assert node.run(["test", "-b", DEVICE], check=False).returncode == 0
    one, two = Libvirtd(cluster.nodes[0]), Libvirtd(cluster.nodes[1])
    for lv in (one, two):
        lv.start()

    log = cluster.root / "drbdvm.serial"
    one.create(domain_xml(GuestSpec("drbdvm", ensure_built(), log, DEVICE), detect().domain_type))
    serial.wait_for(log, r"verify=ok", timeout=60)
    for src, dst in ((one, two), (two, one)):
        print(migrate(src, dst, "drbdvm"))
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
