# SPDX-License-Identifier: GPL-2.0-or-later
"""A two-node emulated DRBD resource for the lab: its drbd.conf, and its state as after the initial full sync.

What every lab user of the emulator does before its cluster boots (then `install.lab_hooks(emu_dir, conf)`):

    fresh_dir(emu_dir)
    conf = emu_dir / "drbd.conf"
    conf.write_text(two_node_conf(net=config.net, minor=9250, fencing="resource-only", handlers={...}))
    initial_sync(emu_dir, conf)   # UpToDate on both nodes, resource down, as the cluster expects to find it

The nodes are node1 and node2 at NET.1 and NET.2 (the lab's addresses), node-ids 0 and 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

NODES = ("node1", "node2")


def fresh_dir(emu_dir: Path) -> None:
    """An empty emulator directory: the loop devices over its old backing files detached, old state gone."""
    from lab.drbd_emu.devices import detach_loops

    detach_loops(emu_dir)
    if emu_dir.exists():
        shutil.rmtree(emu_dir)
    emu_dir.mkdir(parents=True)


def two_node_conf(
    *,
    net: str,
    minor: int,
    res: str = "r0",
    dual: bool = False,
    fencing: str | None = None,
    handlers: Mapping[str, str] | None = None,
    comment: str = "",
) -> str:
    """drbd.conf text for `res` on node1/node2: protocol C, allow-two-primaries if `dual`, the fencing
    policy and handlers ({"fence-peer": path, ...}) if given, one volume /dev/drbdMINOR on /dev/lab/RES."""
    options = ["protocol C;", *(["allow-two-primaries yes;"] if dual else [])]
    options += [f"fencing {fencing};"] if fencing else []
    lines = [f"# {comment}"] if comment else []
    lines += [f"resource {res} {{", f"  net {{ {' '.join(options)} }}"]
    if handlers:
        lines += ["  handlers {", *(f'    {name} "{cmd}";' for name, cmd in handlers.items()), "  }"]
    lines.append(f"  volume 0 {{ device /dev/drbd{minor}; disk /dev/lab/{res}; meta-disk internal; }}")
    lines += [f"  on {n} {{ node-id {i}; address {net}.{i + 1}:7789; }}" for i, n in enumerate(NODES)]
    return "\n".join([*lines, "}"]) + "\n"


def initial_sync(emu_dir: Path, conf: Path, res: str = "r0", *, resync_kib_s: float | None = None) -> None:
    """Fresh emulator state in `emu_dir` with `res` UpToDate on both nodes and down (UG9 "Initial device
    synchronization": up on both, `primary --force` on one, the full sync, then secondary and down), run on
    the host with the fakes (no emulator kernel, no /dev/drbdN). `resync_kib_s` sets the resync speed used
    from then on (the initial sync runs at the default speed)."""
    from lab.drbd_emu import engine
    from lab.drbd_emu.install import write_wrappers

    bindir = write_wrappers(emu_dir, devices="")
    base = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_EMU_")}

    def host(node: str, prog: str, *args: str) -> None:
        env = {**base, "TANDEM_EMU_DIR": str(emu_dir), "TANDEM_EMU_NODE": node, "TANDEM_EMU_DEVICES": ""}
        subprocess.run([str(bindir / prog), *args], env=env, check=True, capture_output=True, timeout=60)

    first, second = NODES
    host(first, "drbd-emu", "init")
    for n in NODES:
        host(n, "drbdadm", "-c", str(conf), "up", res)
    host(first, "drbdadm", "-c", str(conf), "primary", "--force", res)
    host(second, "drbdadm", "-c", str(conf), "wait-sync", res)
    for n in NODES:
        host(n, "drbdadm", "-c", str(conf), "secondary", res)
        host(n, "drbdadm", "-c", str(conf), "down", res)
    with engine.Store(emu_dir).locked() as st:
        one, two = (engine.meta_for(st, n, res, "0") for n in NODES)
        if not (one["disk"] == two["disk"] == "UpToDate" and one["tag"] == two["tag"]):
            raise RuntimeError(f"the emulated initial sync of {res} did not complete: {one} / {two}")
        if resync_kib_s is not None:
            st["resync_kib_s"] = resync_kib_s
