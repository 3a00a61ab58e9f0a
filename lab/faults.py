# SPDX-License-Identifier: GPL-2.0-or-later
"""Fault hooks: what can go wrong with a lab node or its links, on purpose.

Power faults go through the lab supervisor (serialised with fencing); link faults act on the nodes' network
namespaces from the host, so they outlive node reboots like a cut cable would. This kernel has no netem:
`slow` shapes bandwidth with HTB (which also queues, so latency grows under load); `delay_ms` needs netem
and fails with a clear error where it is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterable
from pathlib import Path

from lab.cluster import Lab, LabError, sh
from lab.netns import Node


def kill(lab: Lab, node: str | int | Node) -> None:
    """Hard power cut: every process of the node dies at once, its /run and /dev/shm are gone."""
    lab.power("off", node)


def stop(lab: Lab, node: str | int | Node) -> None:
    """Clean shutdown: pacemaker stops its resources and leaves, corosync leaves, then the node powers off."""
    lab.power("shutdown", node)


def start(lab: Lab, node: str | int | Node) -> None:
    """Power on (boots the cluster services); a node that is on is left alone."""
    lab.power("on", node)


def reboot(lab: Lab, node: str | int | Node) -> None:
    lab.power("reboot", node)


def partition(lab: Lab, *groups: Iterable[str | int | Node]) -> None:
    """Cut every link between nodes of different groups (both ways); nodes in no group form one more group."""
    sides = [{lab.node(n).name for n in group} for group in groups]
    rest = {n.name for n in lab.nodes} - set().union(*sides)
    if rest:
        sides.append(rest)
    for i, side in enumerate(sides):
        for other in sides[i + 1 :]:
            for a in side:
                for b in other:
                    _blackhole(lab.node(a), lab.node(b))
                    _blackhole(lab.node(b), lab.node(a))


def isolate(lab: Lab, node: str | int | Node) -> None:
    partition(lab, [node])


def _blackhole(src: Node, dst: Node) -> None:
    sh(["ip", "-n", src.netns, "route", "replace", "blackhole", f"{dst.address}/32"])


def heal(lab: Lab) -> None:
    """Undo every partition."""
    for node in lab.nodes:
        routes = json.loads(
            sh(["ip", "-n", node.netns, "-j", "route", "show", "type", "blackhole"]).stdout or "[]"
        )
        for route in routes:
            sh(["ip", "-n", node.netns, "route", "del", "blackhole", route["dst"]])


def slow(
    lab: Lab,
    node: str | int | Node,
    peer: str | int | Node | None = None,
    rate: str = "1mbit",
    delay_ms: int = 0,
) -> None:
    """Shape the node's link (to `peer` only, both ways, if given) to `rate`, plus `delay_ms` with netem."""
    a = lab.node(node)
    ends = [(a, lab.node(peer)), (lab.node(peer), a)] if peer is not None else [(a, None)]
    for src, dst in ends:
        _shape(src, dst, rate, delay_ms)


def _shape(src: Node, dst: Node | None, rate: str, delay_ms: int) -> None:
    tc = ["tc", "-n", src.netns]
    sh([*tc, "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb", "default", "10"])
    sh([*tc, "class", "replace", "dev", "eth0", "parent", "1:", "classid", "1:10", "htb", "rate", "10gbit"])
    sh([*tc, "class", "replace", "dev", "eth0", "parent", "1:", "classid", "1:20", "htb", "rate", rate])
    if delay_ms:
        done = sh(
            [*tc, "qdisc", "replace", "dev", "eth0", "parent", "1:20", "netem", "delay", f"{delay_ms}ms"],
            check=False,
        )
        if done.returncode != 0:
            raise LabError(f"delay needs netem, which this kernel lacks ({done.stderr.strip()}); use rate")
    target = ["match", "ip", "dst", f"{dst.address}/32"] if dst is not None else ["match", "u32", "0", "0"]
    match = [*target, "flowid", "1:20"]
    sh(
        [
            *tc,
            "filter",
            "replace",
            "dev",
            "eth0",
            "parent",
            "1:",
            "protocol",
            "ip",
            "prio",
            "1",
            "u32",
            *match,
        ]
    )


def unslow(lab: Lab, node: str | int | Node | None = None) -> None:
    """Remove shaping from one node's link, or from every node's."""
    for n in [lab.node(node)] if node is not None else lab.nodes:
        sh(["tc", "-n", n.netns, "qdisc", "del", "dev", "eth0", "root"], check=False)


def crash_daemon(lab: Lab, node: str | int | Node, daemon: str, sig: int = signal.SIGKILL) -> list[int]:
    """Send `sig` (default SIGKILL) to the node's processes running program `daemon` (e.g. corosync,
    pacemaker-controld); only that node's processes are looked at. Returns the host pids signalled."""
    target = lab.node(node)
    hit = [pid for pid in target.pids() if programs(pid) & {daemon, daemon[:15]}]
    if not hit:
        raise LabError(f"no {daemon} runs on {target.name}")
    for pid in hit:
        os.kill(pid, sig)
    return hit


def programs(pid: int) -> set[str]:
    """The names a process goes by: its executable's file name and its comm (15 characters at most)."""
    found = set()
    with contextlib.suppress(OSError):
        found.add(Path(os.readlink(f"/proc/{pid}/exe")).name)
    with contextlib.suppress(OSError):
        found.add(Path(f"/proc/{pid}/comm").read_text().strip())
    return found
