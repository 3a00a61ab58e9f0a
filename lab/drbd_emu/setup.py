# SPDX-License-Identifier: GPL-2.0-or-later
"""An emulated DRBD resource for the lab: its drbd.conf (two nodes, or a mesh of up to four with diskless
clients), and its state as after the initial full sync.

What every lab user of the emulator does before its cluster boots (then `install.lab_hooks(emu_dir, conf)`):

    fresh_dir(emu_dir)
    conf = emu_dir / "drbd.conf"
    conf.write_text(two_node_conf(net=config.net, minor=9250, fencing="resource-only", handlers={...}))
    initial_sync(emu_dir, conf)   # UpToDate on both nodes, resource down, as the cluster expects to find it

The nodes are node1, node2, ... at NET.1, NET.2, ... (the lab's addresses), node-ids 0, 1, ...
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.drbd_emu.config import load

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
    """drbd.conf text for `res` on node1/node2 (see `mesh_conf`)."""
    return mesh_conf(
        net=net, minor=minor, res=res, dual=dual, fencing=fencing, handlers=handlers, comment=comment
    )


def mesh_conf(
    *,
    net: str,
    minor: int,
    res: str = "r0",
    nodes: Sequence[str] = NODES,
    clients: Sequence[str] = (),
    dual: bool = False,
    fencing: str | None = None,
    handlers: Mapping[str, str] | None = None,
    options: Mapping[str, str] | None = None,
    sections: str = "",
    comment: str = "",
) -> str:
    """drbd.conf text for `res` on `nodes` (node-ids 0.., addresses NET.1..): protocol C, allow-two-primaries
    if `dual`, the fencing policy and handlers ({"fence-peer": path, ...}) if given, resource `options`
    ({"quorum": "majority", ...}), one volume /dev/drbdMINOR on /dev/lab/RES; `clients` are intentional
    diskless nodes (`disk none`). More than two nodes get a `connection-mesh` (UG9: drbdadm adds the
    connections by itself only for two hosts). `sections`, if given, are the resource's net/options lines as
    written (a README's block), instead of those made from `dual`, `fencing` and `options`."""
    net_opts = ["protocol C;", *(["allow-two-primaries yes;"] if dual else [])]
    net_opts += [f"fencing {fencing};"] if fencing else []
    lines = [f"# {comment}"] if comment else []
    lines.append(f"resource {res} {{")
    if sections:
        lines += [f"  {line}" for line in sections.strip().splitlines()]
    else:
        lines.append(f"  net {{ {' '.join(net_opts)} }}")
    if options and not sections:
        lines.append(f"  options {{ {' '.join(f'{k} {v};' for k, v in options.items())} }}")
    if handlers:
        lines += ["  handlers {", *(f'    {name} "{cmd}";' for name, cmd in handlers.items()), "  }"]
    lines.append(f"  volume 0 {{ device /dev/drbd{minor}; disk /dev/lab/{res}; meta-disk internal; }}")
    for i, n in enumerate(nodes):
        client = " volume 0 { disk none; }" if n in clients else ""
        lines.append(f"  on {n} {{ node-id {i}; address {net}.{i + 1}:7789;{client} }}")
    if len(nodes) > 2:
        lines.append(f"  connection-mesh {{ hosts {' '.join(nodes)}; }}")
    return "\n".join([*lines, "}"]) + "\n"


def initial_sync(
    emu_dir: Path,
    conf: Path,
    res: str = "r0",
    *,
    resync_kib_s: float | None = None,
    kernel: str | None = None,
    reconcile_s: float | None = None,
) -> None:
    """Fresh emulator state in `emu_dir` with `res` UpToDate on its data nodes and down (UG9 "Initial device
    synchronization": up on all, `primary --force` on one, the full sync, then secondary and down), run on
    the host with the fakes (no emulator kernel, no /dev/drbdN). `resync_kib_s` sets the resync speed used
    from then on (the initial sync runs at the default speed); `kernel` the emulated DRBD release (9.2.19
    holds a survivor of a Primary loss at Consistent) and `reconcile_s` how long that hold lasts."""
    from lab.drbd_emu import engine
    from lab.drbd_emu.install import write_wrappers

    bindir = write_wrappers(emu_dir, devices="")
    base = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_EMU_")}

    def host(node: str, prog: str, *args: str) -> None:
        env = {**base, "TANDEM_EMU_DIR": str(emu_dir), "TANDEM_EMU_NODE": node, "TANDEM_EMU_DEVICES": ""}
        subprocess.run([str(bindir / prog), *args], env=env, check=True, capture_output=True, timeout=60)

    hosts = load(conf)[res].hosts
    data = [n for n, h in hosts.items() if any(v.disk != "none" for v in h.volumes.values())]
    host(data[0], "drbd-emu", "init", *(("--kernel", kernel) if kernel else ()))
    for n in hosts:
        host(n, "drbdadm", "-c", str(conf), "up", res)
    host(data[0], "drbdadm", "-c", str(conf), "primary", "--force", res)
    for n in data[1:]:
        host(n, "drbdadm", "-c", str(conf), "wait-sync", res)
    for n in hosts:
        host(n, "drbdadm", "-c", str(conf), "secondary", res)
        host(n, "drbdadm", "-c", str(conf), "down", res)
    with engine.Store(emu_dir).locked() as st:
        metas = [engine.meta_for(st, n, res, "0") for n in data]
        if any(m["disk"] != "UpToDate" or m["tag"] != metas[0]["tag"] for m in metas):
            raise RuntimeError(f"the emulated initial sync of {res} did not complete: {metas}")
        if resync_kib_s is not None:
            st["resync_kib_s"] = resync_kib_s
        if reconcile_s is not None:
            st["reconcile_s"] = reconcile_s
