"""Block devices for emulated minors: /dev/drbdN in each node is a loop device over a per-volume backing file
shared by all nodes (so QEMU guests on either node see the same data, as with a replicated disk).

Works only inside a private mount namespace (a lab node, or `unshare -m` in agent tests) and only when
TANDEM_EMU_DEVICES=bind: a block node for the loop device is made under the emulator directory and
bind-mounted
onto the configured device path while the resource is up (the RA checks `test -b /dev/drbdN`). On the host the
path stays an empty placeholder file, so `test -b` is false there and in nodes where the resource is down.
`/dev/drbd/by-res/<res>/<vol>` symlinks (as udev makes them) point at the device path.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from lab.drbd_emu import engine
from lab.drbd_emu.config import ResourceConfig


def enabled() -> bool:
    return os.environ.get("TANDEM_EMU_DEVICES") == "bind"


def backing_file(res: str, vol: int) -> Path:
    return engine.emu_dir() / "backing" / f"{res}-{vol}.img"


def loop_for(path: Path) -> str:
    """The loop device over `path`, set up once and shared (losetup -j finds an existing one)."""
    out = subprocess.run(["losetup", "-j", str(path)], capture_output=True, text=True, check=False).stdout
    if out.strip():
        return out.split(":", 1)[0]
    return subprocess.run(
        ["losetup", "--find", "--show", str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()


def _mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def ensure(cfg: ResourceConfig, node: str, res: str) -> None:
    if not enabled():
        return
    for v in cfg.host(node).volumes.values():
        backing = backing_file(res, v.number)
        backing.parent.mkdir(parents=True, exist_ok=True)
        if not backing.exists():
            with open(backing, "wb") as f:
                f.truncate(engine.DEFAULT_SIZE_KIB * 1024)
        loop = loop_for(backing)
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
            link.symlink_to(dev)


def remove(node: str, res: str) -> None:
    if not enabled():
        return
    node_dir = engine.emu_dir() / "nodes" / node / "dev"
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for m in mounts:
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
    """Detach the loop devices over this emulator directory's backing files (also ones already deleted)."""
    out = subprocess.run(
        ["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    prefix = str(emu_dir / "backing") + "/"
    gone = []
    for line in out.splitlines():
        name, _, back = line.strip().partition(" ")
        if back.strip().startswith(prefix):
            subprocess.run(["losetup", "-d", name], check=False)
            gone.append(name)
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
