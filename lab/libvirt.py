# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt + QEMU on lab nodes: one libvirtd per node, started without systemd, and guest helpers.

Each node gets its own /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt, bind-mounted
in the node's mount namespace from `node.dir/libvirt/`; /run/libvirt is already private (the node's /run).
libvirtd listens with plain TCP (no auth, no TLS) on the node's address only, which exists only inside
the lab, and each node has its own host UUID (libvirt refuses to migrate to "the same host" otherwise).

Choices that make it work here, measured on these machines (see ../shared/recipes/vm-migration-recipe.md):
- `stdio_handler = "file"`: no virtlogd is needed (libvirt writes QEMU's output to /var/log/libvirt/qemu).
- `migration_host` = the node's address: the destination announces an address, not its hostname, so
  migration works whatever resolves the node names.
- `namespaces = [ ]`: QEMU sees the node's own /dev (where the DRBD emulator's device paths live), not a
  private copy; `user = "root"` and `security_driver = "none"`: nothing relabels or chowns shared files.
- `cgroup_controllers = [ ]`: no systemd or machined here; two nodes never collide on a machine cgroup.
- QEMU's capability probe (about 1.5 s per cold libvirtd) is seeded from the last probe (lab/build/);
  libvirt itself throws the seed away when QEMU, libvirt or the kernel differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lab.guest.qemu import DEFAULT_CMDLINE
from lab.netns import TOP, children, finished, proc_starttime

BUILD = Path(__file__).resolve().parent / "build"
CAPS_SEED = BUILD / "libvirt-caps"
URI = "qemu:///system"
# The directories a libvirt host keeps to itself (the node's /run is already private).
PRIVATE_DIRS = {
    "etc": "/etc/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}
_UUID_NS = uuid.UUID("6f0c1d7e-4a51-4c4e-9a8b-7a6e64656d00")


class LibvirtError(RuntimeError):
    """libvirtd did not come up, or a virsh command failed; the message says which and why."""


def host_uuid(node_name: str) -> str:
    """Stable per node name, different for every node (SMBIOS is unreadable here, so libvirt needs it)."""
    return str(uuid.uuid5(_UUID_NS, node_name))


def libvirtd_conf(address: str, node_name: str) -> str:
    return (
        f"# lab node {node_name}: written by lab/libvirt.py\n"
        "listen_tls = 0\n"
        "listen_tcp = 1\n"
        f'listen_addr = "{address}"\n'
        'auth_tcp = "none"\n'
        f'host_uuid = "{host_uuid(node_name)}"\n'
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
    )


def qemu_conf(address: str) -> str:
    return (
        "# lab node: written by lab/libvirt.py\n"
        'stdio_handler = "file"\n'
        'user = "root"\n'
        'group = "root"\n'
        'security_driver = "none"\n'
        "namespaces = [ ]\n"
        "cgroup_controllers = [ ]\n"
        "remember_owner = 0\n"
        f'migration_host = "{address}"\n'
    )


@dataclass(frozen=True)
class GuestSpec:
    """A lab guest: the tandem-guest kernel, its serial log, and optionally a block device as its disk."""

    name: str
    kernel: Path
    serial: Path  # a path every node sees (under /tmp): all QEMUs of the guest append to it
    disk: str | None = None  # a block device path inside the nodes, e.g. /dev/drbd0
    memory_mib: int = 64
    cmdline: str = DEFAULT_CMDLINE


def domain_xml(spec: GuestSpec, domain_type: str = "qemu") -> str:
    """The domain definition (`domain_type` from lab.accel: "qemu" is TCG, "kvm" is KVM).

    The disk is a raw block device with cache='none' (O_DIRECT, io='native'): like a DRBD device, libvirt
    treats it as shared storage, so it migrates live without --unsafe. It sits on IDE because the guest
    drives it with ATA PIO.
    """
    from lxml import etree

    def el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        child = etree.SubElement(parent, tag, attrs)
        child.text = text
        return child

    dom = etree.Element("domain", type=domain_type)
    el(dom, "name", spec.name)
    el(dom, "memory", str(spec.memory_mib), unit="MiB")
    el(dom, "vcpu", "1")
    os_el = el(dom, "os")
    el(os_el, "type", "hvm", arch="x86_64", machine="pc")
    el(os_el, "kernel", str(spec.kernel))
    el(os_el, "cmdline", spec.cmdline)
    el(el(dom, "features"), "acpi")
    el(dom, "clock", offset="utc")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        el(dom, event, action)
    devices = el(dom, "devices")
    el(devices, "emulator", "/usr/bin/qemu-system-x86_64")
    if spec.disk is not None:
        disk = el(devices, "disk", type="block", device="disk")
        el(disk, "driver", name="qemu", type="raw", cache="none", io="native")
        el(disk, "source", dev=spec.disk)
        el(disk, "target", dev="hda", bus="ide")
    el(devices, "controller", type="usb", model="none")
    serial = el(devices, "serial", type="file")
    el(serial, "source", path=str(spec.serial), append="on")
    el(serial, "target", port="0")
    el(devices, "memballoon", model="none")
    return etree.tostring(dom, pretty_print=True, encoding="unicode")


@dataclass(frozen=True)
class JobStats:
    """The numbers of a completed migration job (`virsh domjobinfo --completed` on the destination)."""

    elapsed_ms: int
    downtime_ms: int | None
    data_mib: float | None


_UNITS = {"B": 1.0, "KiB": 2.0**10, "MiB": 2.0**20, "GiB": 2.0**30, "TiB": 2.0**40}


def parse_jobinfo(text: str) -> JobStats:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    if "Time elapsed" not in fields:
        raise ValueError(f"no 'Time elapsed' in domjobinfo output: {text.strip()[:200]!r}")

    def number(key: str) -> float | None:
        m = re.match(r"([0-9.]+)\s*(\S*)", fields.get(key, ""))
        return float(m.group(1)) * _UNITS.get(m.group(2), 1.0) if m else None

    elapsed = number("Time elapsed")
    downtime = number("Total downtime")
    data = number("Data processed")
    mib = None if data is None else round(data / 2**20, 3)
    return JobStats(int(elapsed or 0), None if downtime is None else int(downtime), mib)


@dataclass(frozen=True)
class Migration:
    wall_s: float  # what `virsh migrate` took on the source
    job: JobStats


class NodeLike(Protocol):
    """What libvirt needs of a node: lab.netns.Node from the host, ThisNode from inside a node."""

    @property
    def name(self) -> str: ...
    @property
    def dir(self) -> Path: ...
    @property
    def address(self) -> str: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = ...,
        input: str | None = ...,
        env: Mapping[str, str] | None = ...,
        check: bool = ...,
    ) -> subprocess.CompletedProcess[str]: ...

    def spawn(self, argv: Sequence[str], *, log: Path | str, env: Mapping[str, str] | None = ...) -> int: ...


@dataclass(frozen=True)
class ThisNode:
    """The lab node this process already runs in (a boot hook): commands run directly.

    A boot hook runs while the node's init waits for it and reaps nothing, yet a cold libvirtd probes QEMU
    and waits for those orphaned QEMUs to vanish: so the hook becomes their subreaper and reaps them while
    its commands run (never the command itself, whose exit status `run` needs).
    """

    name: str
    dir: Path
    address: str

    @staticmethod
    def become_subreaper() -> None:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    @staticmethod
    def reap(keep: int) -> None:
        """Reap our zombie children, except `keep` (the command being run)."""
        for pid in children(os.getpid()):
            if pid != keep and proc_starttime(pid) is None:  # None: a zombie (or gone)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        end = time.monotonic() + timeout
        stdin = subprocess.PIPE if input is not None else subprocess.DEVNULL
        pipe = subprocess.PIPE
        with subprocess.Popen(list(argv), stdin=stdin, stdout=pipe, stderr=pipe, text=True, env=env) as proc:
            while True:
                try:
                    out, err = proc.communicate(input, timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    self.reap(keep=proc.pid)
                    if time.monotonic() > end:
                        proc.kill()
                        proc.communicate()
                        raise subprocess.TimeoutExpired(list(argv), timeout) from None
        return finished(argv, proc.returncode, out, err, check=check)

    def spawn(self, argv: Sequence[str], *, log: Path | str, env: Mapping[str, str] | None = None) -> int:
        from lab.init import spawn

        return spawn(list(argv), str(log), None if env is None else dict(env))


class Libvirtd:
    """The libvirt daemon of one lab node. It lives until `stop()` or until the node powers off."""

    def __init__(self, node: NodeLike) -> None:
        self.node = node
        self.root = node.dir / "libvirt"

    # ---- set-up -------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Per-node directories and configuration (idempotent; kept across node reboots, like a disk)."""
        for sub in PRIVATE_DIRS:
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "log" / "qemu").mkdir(exist_ok=True)
        (self.root / "etc" / "libvirtd.conf").write_text(libvirtd_conf(self.node.address, self.node.name))
        (self.root / "etc" / "qemu.conf").write_text(qemu_conf(self.node.address))
        caps = self.root / "cache" / "qemu" / "capabilities"
        if CAPS_SEED.is_dir() and not any(caps.glob("*.xml")):
            caps.mkdir(parents=True, exist_ok=True)
            for f in CAPS_SEED.glob("*.xml"):
                shutil.copy2(f, caps / f.name)

    def mount(self) -> None:
        """Bind the private directories over the host's, inside the node's mount namespace only."""
        for sub, target in PRIVATE_DIRS.items():
            if self.node.run(["mountpoint", "-q", target], check=False).returncode != 0:
                self.node.run(["mount", "-n", "--bind", str(self.root / sub), target])

    def start(self, timeout: float = 120.0) -> float:
        """Start libvirtd (if it is not running) and wait until it answers; returns the seconds it took."""
        t0 = time.monotonic()
        pid = self.pid()
        if pid is None:
            self.prepare()
            self.mount()
            pid = self.node.spawn(["libvirtd", "--listen"], log="/var/log/libvirt/libvirtd.out")
        end = t0 + timeout
        while not self.ready():
            gone = self.node.run(["kill", "-0", str(pid)], check=False).returncode != 0
            if gone or time.monotonic() > end:
                why = "it exited" if gone else f"not ready after {timeout}s"
                raise LibvirtError(f"libvirtd on {self.node.name}: {why}: {self._log_tail()}")
            time.sleep(0.1)
        took = time.monotonic() - t0
        self._save_caps_seed()
        return took

    def ready(self) -> bool:
        try:
            return self.virsh("version", check=False, timeout=30).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def pid(self) -> int | None:
        """Node-local pid of the running libvirtd (from its pid file in the node's /run)."""
        res = self.node.run(["cat", "/run/libvirtd.pid"], check=False)
        if res.returncode != 0 or not res.stdout.strip().isdigit():
            return None
        pid = res.stdout.strip()
        comm = self.node.run(["cat", f"/proc/{pid}/comm"], check=False).stdout.strip()
        return int(pid) if comm == "libvirtd" else None

    def stop(self, timeout: float = 60.0, destroy: bool = True) -> None:
        """Stop libvirtd; with `destroy`, its running guests first (libvirtd leaves them running)."""
        if destroy:
            for name in self.domains():
                self.virsh("destroy", name, check=False)
        pid = self.pid()
        if pid is None:
            return
        self.node.run(["kill", "-TERM", str(pid)], check=False)
        end = time.monotonic() + timeout
        while self.pid() is not None:
            if time.monotonic() > end:
                raise LibvirtError(f"libvirtd on {self.node.name} (pid {pid}) ignored SIGTERM for {timeout}s")
            time.sleep(0.1)

    def _save_caps_seed(self) -> None:
        caps = sorted((self.root / "cache" / "qemu" / "capabilities").glob("*.xml"))
        if caps and not CAPS_SEED.is_dir():
            tmp = CAPS_SEED.with_name(f"{CAPS_SEED.name}.{self.node.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for f in caps:
                shutil.copy2(f, tmp / f.name)
            try:
                tmp.rename(CAPS_SEED)
            except OSError:  # another node seeded it first
                shutil.rmtree(tmp, ignore_errors=True)

    def _log_tail(self) -> str:
        lines: list[str] = []
        for name in ("libvirtd.out", "libvirtd.log"):
            with contextlib.suppress(OSError):
                lines += (self.root / "log" / name).read_text(errors="replace").splitlines()[-3:]
        return " | ".join(lines) or "no log"

    # ---- virsh ----------------------------------------------------------------------------------
    def virsh(
        self, *args: str, check: bool = True, timeout: float = 120.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """virsh against this node's libvirtd, run inside the node (as agents run it)."""
        res = self.node.run(["virsh", "-q", "-c", URI, *args], check=False, timeout=timeout, input=input)
        if check and res.returncode != 0:
            raise LibvirtError(
                f"{self.node.name}: virsh {' '.join(args)}: rc {res.returncode}: {res.stderr.strip()}"
            )
        return res

    def create(self, xml: str) -> None:
        """Start a transient domain from XML (handed over on stdin: no file needs to exist in the node)."""
        self.virsh("create", "/dev/stdin", input=xml)

    def domains(self) -> list[str]:
        """Names of the running domains."""
        return [n for n in self.virsh("list", "--name", check=False).stdout.split() if n]

    def domstate(self, name: str) -> str:
        """e.g. "running", "shut off", or "" when this node does not know the domain."""
        res = self.virsh("domstate", name, check=False)
        return res.stdout.strip() if res.returncode == 0 else ""

    def wait_state(self, name: str, states: Sequence[str], timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        while (state := self.domstate(name)) not in states:
            if time.monotonic() > end:
                raise LibvirtError(f"{self.node.name}: {name} is {state or 'unknown'!r}, not {list(states)}")
            time.sleep(0.1)
        return state

    def qemu_pid(self, name: str) -> int | None:
        """Node-local pid of the QEMU running `name` here."""
        res = self.node.run(["cat", f"/run/libvirt/qemu/{name}.pid"], check=False)
        return int(res.stdout.strip()) if res.returncode == 0 and res.stdout.strip().isdigit() else None

    def rss_kib(self, pid: int) -> int:
        """Resident memory of a node-local pid (libvirtd's or a QEMU's)."""
        status = self.node.run(["cat", f"/proc/{pid}/status"]).stdout
        m = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
        return int(m.group(1)) if m else 0


def migrate(src: Libvirtd, dst: Libvirtd, name: str, *options: str, timeout: float = 300.0) -> Migration:
    """`virsh migrate --live` from src to dst over qemu+tcp on the lab's addresses, as VirtualDomain runs
    it with migration_transport=tcp; returns the wall time and the destination's job statistics."""
    t0 = time.monotonic()
    src.virsh("migrate", "--live", *options, name, f"qemu+tcp://{dst.node.address}/system", timeout=timeout)
    wall = time.monotonic() - t0
    info = dst.virsh("domjobinfo", "--completed", "--keep-completed", name)
    return Migration(wall, parse_jobinfo(info.stdout))


def boot_hook() -> tuple[str, ...]:
    """A `LabConfig.boot` entry: every node starts its libvirtd at boot, before the cluster stack, as
    systemd orders libvirtd before pacemaker on a real host (so it also comes back after fencing)."""
    return ("env", f"PYTHONPATH={TOP}", sys.executable, "-m", "lab.libvirt", "node-boot", "{dir}")


def eth0_address() -> str:
    out = subprocess.run(
        ["ip", "-j", "-4", "addr", "show", "dev", "eth0"], capture_output=True, text=True, check=True
    ).stdout
    return str(json.loads(out)[0]["addr_info"][0]["local"])


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "node-boot":
        print("usage: python3 -m lab.libvirt node-boot NODE_DIR   (inside a lab node)", file=sys.stderr)
        return 2
    node = ThisNode(socket.gethostname(), Path(argv[1]), eth0_address())
    node.become_subreaper()
    took = Libvirtd(node).start()
    print(f"libvirtd on {node.name} ready after {took:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
