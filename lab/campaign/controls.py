# SPDX-License-Identifier: GPL-2.0-or-later
"""The checkers' controls: sabotage the campaign never schedules, done by hand to a running cluster, that
the data-safety checkers must flag (tests/lab/test_campaign.py runs them as real runs).

- `second-qemu` (S1): vm1's domain started by hand with virsh on the node that does not run it.
- `forced-primary` (S3, S4, S5): the careless operator. The node without the VM is demoted and
  disconnected (a Secondary leaving outdates itself), a fencing constraint like ours forbids its
  promotion, and it is promoted with `drbdadm primary --force` although the VM's node has written since,
  writes, and connects again: a promotion of stale data against the constraint, then a split brain.
  Repaired as an operator would: secondary, `connect --discard-my-data`, constraint removed.

S2 (a lost acknowledged write) has its control in tests/lab/test_data_plane.py: the guest booted on the
stale side by hand.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lab.campaign.schedule import Kind
from lab.cluster import LabError, poll
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
    from lab.scenarios import CLONE, DOMAIN_XML, RES

    run = vc.lab.node(node).run
    if kind == "second-qemu":
        run(["virsh", "-c", "qemu:///system", "create", DOMAIN_XML], timeout=60)
        return
    vm_node = next(n.name for n in vc.lab.nodes if n.name != node)
    demote = f"ctl-demote-{node}"
    rule = f"location {demote} {CLONE} rule $role=Promoted -inf: #uname eq {node}\ncommit\n"
    vc.lab.crm("configure", input=rule)
    poll(lambda: _role(vc, node) == "Secondary" or None, 60, f"{node} demoted")
    # the demotion's post-notification over too: the agent's notify reconnects a disconnected resource
    vc.lab.run(vm_node, ["crm_resource", "--wait", "--timeout=60"], timeout=70)
    run(["drbdadm", "disconnect", RES], timeout=60)  # a Secondary leaving: Outdated, no fencing needed
    # a constraint as fence-peer places it (the agent keeps it while a peer is away), then the demotion
    # lifted: from here on only the fencing constraint keeps the node from being promoted
    fence = f"location {constraint_id(RES)} {CLONE} rule $role=Promoted -inf: #uname ne {vm_node}\ncommit\n"
    vc.lab.crm("configure", input=fence)
    vc.lab.crm("configure", "delete", demote)
    time.sleep(2)  # the guest writes on on the VM's node: the disconnected copy is now stale
    run(["drbdadm", "primary", "--force", RES], timeout=60)
    run([str(vc.emu_dir / "bin" / "drbd-emu"), "write", RES, "0", "3"], timeout=60)
    run(["drbdadm", "connect", RES], timeout=60)


def repair(vc: VmCluster, kind: str, node: str) -> None:
    from lab.scenarios import RES, VM

    target = vc.lab.node(node)
    if target.is_on():  # fenced meanwhile, it comes back with its DRBD down: nothing to undo there
        if kind == "second-qemu":
            target.run(["virsh", "-c", "qemu:///system", "destroy", VM], timeout=60, check=False)
            return
        for argv in (["disconnect", RES], ["secondary", RES], ["connect", "--discard-my-data", RES]):
            target.run(["drbdadm", *argv], timeout=60, check=False)
    if kind == "forced-primary":
        # gone already when the resync ended in time: unfence-peer removes a constraint of this id
        vc.lab.first_live().run(["crm", "configure", "delete", constraint_id(RES)], timeout=60, check=False)


def _role(vc: VmCluster, node: str) -> str | None:
    from lab.scenarios import RES

    r = vc.emu_state()["nodes"].get(node, {}).get(RES)  # type: ignore[attr-defined]
    if r is None:
        raise LabError(f"{RES} is down on {node}")
    return str(r["role"])
