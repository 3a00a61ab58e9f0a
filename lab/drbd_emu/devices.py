# SPDX-License-Identifier: GPL-2.0-or-later
"""Block devices for emulated minors: /dev/drbdN in each node is a loop device over that node's own copy,
served by the node's data plane (replica.py: a FUSE file nodes/NODE/data/RES-VOL, replicated to the peers).

Works only inside a private mount namespace (a lab node, or `unshare -m` in agent tests), only when
TANDEM_EMU_DEVICES=bind, and only while the node's emulator kernel runs (it serves the FUSE file system).
A block node for the loop device is made under the emulator directory and bind-mounted onto the configured
device path while the resource is up (the RA checks `test -b /dev/drbdN`). On the host the path stays an
empty placeholder file, so `test -b` is false there and in nodes where the resource is down; `detach_loops`
removes it when the lab is down.
`/dev/drbd/by-res/<res>/<vol>` symlinks (as udev makes them) point at the device path.

The loop devices a node set up are listed in nodes/NODE/loops (one per copy, kept across down/up); a
(re)booted node's kernel detaches its earlier ones, whose FUSE server died with the node, and
`detach_loops` detaches all of an emulator directory's.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from lab.drbd_emu import engine, replica
from lab.drbd_emu.config import ResourceConfig

MOUNT_WAIT = 10.0


def enabled() -> bool:
    return os.environ.get("TANDEM_EMU_DEVICES") == "bind"


@contextmanager
def _loops(node: str, emu_dir: Path | None = None) -> Iterator[dict[str, str]]:
    """The node's loop registry {copy name: /dev/loopN}, locked while the caller changes it."""
    path = (emu_dir or engine.emu_dir()) / "nodes" / node / "loops"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        text = f.read()
        loops: dict[str, str] = json.loads(text) if text.strip() else {}
        before = dict(loops)
        yield loops
        if loops != before:
            f.seek(0)
            f.truncate()
            f.write(json.dumps(loops))


def _loop_over(path: Path) -> str | None:
    """The loop device of the registry that still serves `path`'s current file (not a dead mount's)."""
    st = os.stat(path)
    out = subprocess.run(
        ["losetup", "--list", "--noheadings", "--output", "NAME,BACK-INO,BACK-MAJ:MIN", "-j", str(path)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for line in out.splitlines():
        name, ino, majmin = line.split()
        if int(ino) == st.st_ino and majmin == f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}":
            return name
    return None


def loop_for(node: str, name: str) -> str:
    """The node's loop device over its copy `name` (RES-VOL), set up on first use."""
    mount = replica.mountpoint(node)
    end = time.monotonic() + MOUNT_WAIT
    while not os.path.ismount(mount):
        if time.monotonic() > end:
            raise RuntimeError(f"no data plane at {mount}: is the node's drbd-emu kernel running?")
        time.sleep(0.1)
    path = mount / name
    with _loops(node) as loops:
        loop = _loop_over(path)
        if loop is None:
            loop = subprocess.run(
                ["losetup", "--find", "--show", str(path)], capture_output=True, text=True, check=True
            ).stdout.strip()
        loops[name] = loop
        return loop


def detach_node_loops(node: str, emu_dir: Path | None = None) -> list[str]:
    """Detach the loop devices the node set up before (at its kernel's start: their server is gone)."""
    with _loops(node, emu_dir) as loops:
        gone = list(loops.values())
        for loop in gone:
            subprocess.run(["losetup", "-d", loop], check=False, capture_output=True)
        loops.clear()
    return gone


def _points_in(mountinfo: Path) -> list[str]:
    """The mount points a mountinfo file lists (its fifth field)."""
    return [line.split()[4] for line in mountinfo.read_text().splitlines()]


def _mounted(path: str) -> bool:
    return path in _points_in(Path("/proc/self/mountinfo"))


def ensure(cfg: ResourceConfig, node: str, res: str) -> None:
    if not enabled():
        return
    for v in cfg.host(node).volumes.values():
        replica.ensure_backing(replica.backing(node, res, str(v.number)))
        loop = loop_for(node, f"{res}-{v.number}")
        node_dir = engine.emu_dir() / "nodes" / node / "dev"
        node_dir.mkdir(parents=True, exist_ok=True)
        blk = node_dir / Path(v.device).name
        rdev = os.stat(loop).st_rdev
        if not blk.exists() or os.stat(blk).st_rdev != rdev:
            blk.unlink(missing_ok=True)
            os.mknod(blk, stat.S_IFBLK | 0o660, rdev)
        dev = Path(v.device)
        dev.parent.mkdir(parents=True, exist_ok=True)
        if not dev.exists():
            dev.touch()
        if not _mounted(str(dev)):
            subprocess.run(["mount", "--bind", str(blk), str(dev)], check=True)
        link = Path(f"/dev/drbd/by-res/{res}/{v.number}")
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            with suppress(FileExistsError):  # the nodes share /dev and may bring the resource up together
                link.symlink_to(dev)


def remove(node: str, res: str) -> None:
    if not enabled():
        return
    node_dir = engine.emu_dir() / "nodes" / node / "dev"
    for m in _points_in(Path("/proc/self/mountinfo")):
        if m.startswith("/dev/drbd") and (node_dir / Path(m).name).exists() and _res_of(m) in (res, None):
            subprocess.run(["umount", m], check=False)


def _res_of(device: str) -> str | None:
    base = Path("/dev/drbd/by-res")
    if not base.is_dir():
        return None
    for res_dir in base.iterdir():
        for link in res_dir.iterdir():
            if os.readlink(link) == device:
                return res_dir.name
    return None


def detach_loops(emu_dir: Path) -> list[str]:
    """Detach every loop device the nodes of this emulator directory set up (autoclear when still open),
    and remove what its devices left in the host's /dev (remove_placeholders)."""
    nodes = emu_dir / "nodes"
    gone: list[str] = []
    for node in sorted(p.name for p in nodes.iterdir()) if nodes.is_dir() else []:
        gone += detach_node_loops(node, emu_dir)
    remove_placeholders(emu_dir)
    return gone


def mount_points(proc: Path = Path("/proc")) -> set[str]:
    """The mount points of every mount namespace on the host, each namespace read once: another lab's nodes
    bind their devices over the same /dev paths, and unlinking one of those here would detach their mounts
    (Linux >= 3.18), taking a running lab's disk away (tandem-18180)."""
    namespaces: set[str] = set()
    points: set[str] = set()
    for pid in proc.iterdir():
        if not pid.name.isdigit():
            continue
        try:
            ns = os.readlink(pid / "ns" / "mnt")
            if ns in namespaces:
                continue
            points.update(_points_in(pid / "mountinfo"))
        except OSError:  # gone meanwhile, or a kernel thread's
            continue
        namespaces.add(ns)
    return points


def remove_placeholders(emu_dir: Path, dev: Path = Path("/dev"), proc: Path = Path("/proc")) -> list[Path]:
    """The empty placeholder files of this emulator's device paths and their by-res links, left in the
    host's /dev (the nodes share it), once no mount namespace mounts over them (another lab's nodes may use
    the same paths): the host is left as it was."""
    mounted = mount_points(proc)
    names = {p.name for p in (emu_dir / "nodes").glob("*/dev/*") if str(dev / p.name) not in mounted}
    gone: list[Path] = []
    for name in sorted(names):
        path = dev / name
        if path.is_file() and not path.is_symlink() and path.stat().st_size == 0:
            path.unlink()
            gone.append(path)
    by_res = dev / "drbd" / "by-res"
    for link in sorted(by_res.glob("*/*")):
        if link.is_symlink() and Path(os.readlink(link)).name in names:
            link.unlink()
            gone.append(link)
    for empty in (*by_res.glob("*"), by_res, dev / "drbd"):
        with suppress(OSError):  # only directories left empty
            empty.rmdir()
    return gone


def real_openers(devices: dict[str, str]) -> dict[str, int]:
    """vol -> how many processes of this mount namespace hold the device open (as a QEMU guest does);
    `devices` maps vol -> device path. Only with TANDEM_EMU_DEVICES=bind (the paths are then ours)."""
    counts = dict.fromkeys(devices, 0)
    if not enabled():
        return counts
    rdevs: dict[int, str] = {}
    for vol, path in devices.items():
        try:
            st = os.stat(path)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            rdevs[st.st_rdev] = vol
    if not rdevs:
        return counts
    me = os.readlink("/proc/self/ns/mnt")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/ns/mnt") != me:
                continue
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        seen: set[str] = set()
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            held = rdevs.get(st.st_rdev) if stat.S_ISBLK(st.st_mode) else None
            if held is not None and held not in seen:
                seen.add(held)
                counts[held] += 1
    return counts
