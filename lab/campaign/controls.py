# SPDX-License-Identifier: GPL-2.0-or-later
"""The checkers' controls: sabotage the campaign never schedules, done by hand to a running cluster, that
the data-safety checkers must flag (tests/lab/test_campaign.py runs them as real runs).

- `second-qemu` (S1): vm1's domain started by hand with virsh on the node that does not run it.
- `forced-primary` (S3, S4, S5): the careless operator. With Pacemaker told to leave DRBD alone
  (`crm resource unmanage`), the node without the VM is made Secondary and disconnected (a Secondary
  leaving outdates itself), a fencing constraint like ours forbids its promotion, and once the guest has
  written on the VM's node it is promoted with `drbdadm primary --force`, writes, and connects again: a
  promotion of stale data against the constraint, then a split brain (the VM's node then fences it).
  Repaired as an operator would: DRBD managed again, the forced node's data discarded once it is back,
  the survivor reconnected, the constraint removed.

S2 (a lost acknowledged write) has its control in tests/lab/test_data_plane.py: the guest booted on the
stale side by hand.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab.campaign.schedule import Kind
from lab.cluster import poll
from tandem.fence import constraint_id

if TYPE_CHECKING:
    from lab.scenarios import VmCluster

CONTROLS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("second-qemu", ("other",), (6.0, 6.0), "control (S1): vm1 started by hand on the other node"),
        Kind(
            "forced-primary",
            ("other",),
            (6.0, 6.0),
            "control (S3, S4, S5): the other node forced Primary on stale data, against the constraint",
        ),
    )
}


def sabotage(vc: VmCluster, kind: str, node: str) -> None:
    from lab.campaign.record import behind
    from lab.scenarios import CLONE, DOMAIN_XML, RES

    run = vc.lab.node(node).run
    if kind == "second-qemu":
        run(["virsh", "-c", "qemu:///system", "create", DOMAIN_XML], timeout=60)
        return
    vm_node = _other(vc, node)
    vc.lab.crm("resource", "unmanage", CLONE)  # DRBD left to the careless operator: Pacemaker looks on
    run(["drbdadm", "secondary", RES], timeout=60)
    run(["drbdadm", "disconnect", RES], timeout=60)  # a Secondary leaving: Outdated, no fencing needed
    # a constraint as fence-peer places it (the agent keeps it while a peer is away)
    fence = f"location {constraint_id(RES)} {CLONE} rule $role=Promoted -inf: #uname ne {vm_node}\ncommit\n"
    vc.lab.crm("configure", input=fence)
    time.sleep(2)  # seen Secondary and disconnected by the recorder (it samples every 0.5 s)
    nodes = [n.name for n in vc.lab.nodes]
    poll(lambda: node in behind(vc.emu_state(), nodes) or None, 30, f"the guest's writes missing on {node}")
    run(["drbdadm", "primary", "--force", RES], timeout=60)
    run([str(vc.emu_dir / "bin" / "drbd-emu"), "write", RES, "0", "3"], timeout=60)
    run(["drbdadm", "connect", RES], timeout=60)  # both have new data: a split brain


def repair(vc: VmCluster, kind: str, node: str) -> None:
    """As an operator would: the second QEMU destroyed; after the forced promotion, the forced node's data
    discarded (once it is back, if the split brain got it fenced), the survivor reconnected, Pacemaker
    managing DRBD again and the constraint removed."""
    from lab.scenarios import CLONE, RES, VM

    target = vc.lab.node(node)
    if kind == "second-qemu":
        if target.is_on():
            target.run(["virsh", "-c", "qemu:///system", "destroy", VM], timeout=60, check=False)
        return
    vc.lab.crm("resource", "manage", CLONE)  # a fenced node's DRBD is started again by Pacemaker
    poll(lambda: _up(vc, node) or None, 120, f"{node} on with {RES} up")
    for argv in (["disconnect", RES], ["secondary", RES], ["connect", "--discard-my-data", RES]):
        target.run(["drbdadm", *argv], timeout=60, check=False)
    vc.lab.node(_other(vc, node)).run(["drbdadm", "connect", RES], timeout=60, check=False)
    # gone already when the resync ended in time: unfence-peer removes a constraint of this id
    vc.lab.first_live().run(["crm", "configure", "delete", constraint_id(RES)], timeout=60, check=False)


def _other(vc: VmCluster, node: str) -> str:
    return next(n.name for n in vc.lab.nodes if n.name != node)


def _up(vc: VmCluster, node: str) -> bool:
    from lab.scenarios import RES

    return vc.lab.node(node).is_on() and RES in vc.emu_state()["nodes"].get(node, {})  # type: ignore[attr-defined]
