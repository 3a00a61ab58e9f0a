# SPDX-License-Identifier: GPL-2.0-or-later
"""The benchmark's lab: 2 nodes with STONITH, the DRBD emulator, a libvirtd per node, both agent pairs.

Built from the lab's own hooks (lab.drbd_emu.install.lab_hooks, lab.libvirt.boot_hook), like the lab tests.
What it adds:
- a private `tandem install` of this checkout, bind-mounted over /usr/lib/ocf/resource.d/tandem and
  /usr/lib/ocf/lib/tandem in the nodes only: the agents run from their installed paths, and another
  session installing tandem on the host meanwhile cannot change what is measured;
- one drbd.conf for everything: r0 (the resource both DRBD agents monitor), vm0 (the guest's disk, two
  primaries allowed) and s001..s099 (the extra resources of the scaling runs), UpToDate on both nodes;
- the guest's libvirt XML, on /dev/drbd<vm0>, for both domain agents.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from lab.cluster import Lab, LabConfig, poll, teardown
from lab.drbd_emu import engine
from lab.drbd_emu.install import lab_hooks, write_wrappers
from lab.libvirt import GuestSpec, Libvirtd, boot_hook, domain_xml
from lab.netns import Node

OCF = Path("/usr/lib/ocf")
R0_MINOR = 100
VM_MINOR = 101
FIXED = {"r0": (R0_MINOR, 7789), "vm0": (VM_MINOR, 7790)}  # minor, port
SCALE_MINOR = 200
SCALE_MAX = 100  # r0 plus s001..s099
VM = "tlbvm"


def scale_names(count: int) -> list[str]:
    """The extra resources that make `count` resources in all, r0 included."""
    return [f"s{i:03d}" for i in range(1, count)]


def drbd_conf(net: str, names: Sequence[str]) -> str:
    """The bench's drbd.conf holding exactly these resources (r0, vm0 and scale names); nodes node1/node2
    as in the lab. r0 and vm0 allow two primaries (vm0 for live migration, r0 for promoted-max=2 runs)."""

    def resource(name: str) -> str:
        if name in FIXED:
            minor, port = FIXED[name]
        else:
            minor, port = SCALE_MINOR + int(name[1:]), 7800 + int(name[1:])
        dual = "allow-two-primaries yes; " if name in FIXED else ""
        return (
            f"resource {name} {{\n"
            f"  net {{ protocol C; {dual}}}\n"
            f"  volume 0 {{ device /dev/drbd{minor}; disk /dev/lab/{name}; meta-disk internal; }}\n"
            f"  on node1 {{ node-id 0; address {net}.1:{port}; }}\n"
            f"  on node2 {{ node-id 1; address {net}.2:{port}; }}\n"
            "}\n"
        )

    return "# tandem bench (written by bench/testbed.py)\n" + "".join(resource(n) for n in names)


@dataclass(frozen=True)
class Bed:
    lab: Lab
    work: Path  # our files: emulator state, the private install, the guest's XML and serial log

    @property
    def emu(self) -> Path:
        return self.work / "emu"

    @property
    def conf(self) -> Path:
        return self.emu / "drbd.conf"

    @property
    def vm_xml(self) -> Path:
        return self.work / f"{VM}.xml"

    @property
    def serial(self) -> Path:
        return self.work / f"{VM}.serial"

    def node(self, which: str | int) -> Node:
        return self.lab.node(which)

    def daemon_env(self, node: Node) -> dict[str, str]:
        """The environment pacemaker-execd runs agents with: its own (read from /proc), which is the node's
        daemon environment (base env + the lab's hooks: the /proc/drbd shim, the emulator's directory)."""
        pid = node.run(["pidof", "pacemaker-execd"], check=False).stdout.split()
        if pid:
            raw = node.run(["cat", f"/proc/{pid[0]}/environ"]).stdout
            env = dict(kv.split("=", 1) for kv in raw.split("\0") if "=" in kv)
            if env:
                return env
        plan = self.lab.boot_plan(node)
        return dict(plan["env"])

    def drbdadm(self, node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return node.run(["drbdadm", *args], env=self.daemon_env(node), check=check, timeout=300)

    def libvirtd(self, node: Node) -> Libvirtd:
        return Libvirtd(node)

    def host_emu(self, node: str, prog: str, *args: str) -> None:
        _host_emu(self.work, node, prog, *args)

    def set_conf(self, names: Sequence[str]) -> None:
        """Rewrite drbd.conf in place (the nodes see it through a bind mount of this very file)."""
        with open(self.conf, "r+") as fh:
            fh.truncate(0)
            fh.write(drbd_conf(self.lab.config.net, names))

    def scale_up(self, names: Sequence[str]) -> None:
        """More resources up on both nodes, UpToDate, Primary on node1 like r0 (without block devices: no
        agent under test opens them; r0's device stays as it is)."""
        if not names:
            return
        conf = str(self.conf)
        for n in ("node1", "node2"):
            self.host_emu(n, "drbdadm", "-c", conf, "up", *names)
        self.host_emu("node1", "drbdadm", "-c", conf, "primary", "--force", *names)
        _wait_synced(lambda: self.host_emu("node2", "drbdsetup", "status"), self.work, names)

    def scale_down(self, names: Sequence[str]) -> None:
        conf = str(self.conf)
        for n in ("node2", "node1"):
            if names:
                self.host_emu(n, "drbdadm", "-c", conf, "down", *names)


def work_dir(prefix: str) -> Path:
    return Path(f"/tmp/{prefix}-bench")


def _host_emu(work: Path, node: str, prog: str, *args: str) -> None:
    """An emulator command run on the host as `node` (no block devices: they exist in nodes only)."""
    env = {
        **os.environ,
        "TANDEM_EMU_DIR": str(work / "emu"),
        "TANDEM_EMU_NODE": node,
        "TANDEM_EMU_DEVICES": "",
    }
    subprocess.run([str(work / "emu" / "bin" / prog), *args], env=env, check=True, capture_output=True)


def _synced(work: Path, names: Sequence[str]) -> bool | None:
    st = engine.Store(work / "emu").read()
    meta = st.get("meta", {})
    for name in names:
        one, two = meta.get(f"node1/{name}/0", {}), meta.get(f"node2/{name}/0", {})
        if one.get("disk") != "UpToDate" or two.get("disk") != "UpToDate" or one.get("tag") != two.get("tag"):
            return None
    return True


def _wait_synced(settle: Callable[[], object], work: Path, names: Sequence[str]) -> None:
    """The emulator moves a resync on at each call of a fake tool: call one until every copy is UpToDate."""

    def check() -> bool | None:
        settle()
        return _synced(work, names)

    poll(check, 300, "initial sync of the bench's DRBD resources")


def prepare_emulator(work: Path, net: str) -> dict[str, object]:
    """Fresh emulator state with UpToDate data on both nodes for every resource (the initial sync done on
    the host, as the lab's DRBD tests do), everything down again; returns the lab hooks."""
    from lab.drbd_emu.setup import fresh_dir

    emu = work / "emu"
    fresh_dir(emu)
    conf = emu / "drbd.conf"
    names = list(FIXED)
    conf.write_text(drbd_conf(net, names))
    write_wrappers(emu, devices="")
    _host_emu(work, "node1", "drbd-emu", "init", "--resync-kib-s", "100000000")
    for n in ("node1", "node2"):
        _host_emu(work, n, "drbdadm", "-c", str(conf), "up", *names)
    _host_emu(work, "node1", "drbdadm", "-c", str(conf), "primary", "--force", *names)
    _wait_synced(lambda: _host_emu(work, "node2", "drbdsetup", "status"), work, names)
    _host_emu(work, "node1", "drbdadm", "-c", str(conf), "secondary", *names)
    for n in ("node2", "node1"):
        _host_emu(work, n, "drbdadm", "-c", str(conf), "down", *names)
    return lab_hooks(emu, conf)


def install_agents(work: Path) -> list[tuple[str, str]]:
    """This checkout's agents and library in a private OCF root; the binds that put them in place."""
    from tandem.install import install

    root = work / "ocf"
    shutil.rmtree(root, ignore_errors=True)
    install(root, work / "sbin", None)
    binds = []
    for sub in ("resource.d/tandem", "lib/tandem"):
        (OCF / sub).mkdir(parents=True, exist_ok=True)  # the mount point (empty unless tandem is installed)
        binds.append((str(root / sub), str(OCF / sub)))
    return binds


def config(prefix: str) -> LabConfig:
    base = LabConfig.from_env(prefix=prefix)
    work = work_dir(prefix)
    work.mkdir(parents=True, exist_ok=True)
    hooks = prepare_emulator(work, base.net)
    binds = cast(list[tuple[str, str]], hooks["binds"])
    boot = cast(list[list[str]], hooks["boot"])
    return base.with_hooks(
        binds=[*binds, *install_agents(work)],
        boot=[*boot, boot_hook()],
        # connections that do not follow the network: nothing here cuts it, and with many resources the
        # probes (one per resource and second, in the same busy kernel) would let connections flap
        env={**cast(dict[str, str], hooks["env"]), "TANDEM_EMU_NET": "off"},
    )


def up(prefix: str) -> Bed:
    """A fresh bench lab (whatever this prefix left behind is torn down first)."""
    cfg = LabConfig.from_env(prefix=prefix)
    teardown(cfg)
    cfg = config(prefix)
    lab = Lab(cfg)
    lab.up()
    bed = Bed(lab, work_dir(prefix))
    from lab.accel import detect
    from lab.guest.build import ensure_built

    spec = GuestSpec(VM, ensure_built(), bed.serial, f"/dev/drbd{VM_MINOR}")
    bed.vm_xml.write_text(domain_xml(spec, detect().domain_type))
    for node in lab.nodes:
        Libvirtd(node).start()
    return bed


def down(bed: Bed) -> None:
    """The lab, and the loop devices the emulator set up over our backing files (it never detaches them)."""
    from lab.drbd_emu.devices import detach_loops

    bed.lab.down()
    detach_loops(bed.emu)
