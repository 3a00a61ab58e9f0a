# SPDX-License-Identifier: GPL-2.0-or-later
"""The campaign's verdicts: safety (S1-S6) and liveness (L1-L3) checkers over one run's recorded history.

Everything here is pure: a `History` (frozen samples of ground truth, taken by the runner: the nodes' power,
the guest's QEMU processes from /proc, the emulated DRBD's roles, disks, connections and split-brain flags,
the fencing constraints in the CIB; plus the cluster's actions from its logs and the guest's serial console)
goes in, `Violation`s come out. So each checker is tested on synthetic histories that must fail it.

S1 two QEMUs of the guest outside a migration window; S2 an acknowledged generation missing from the disk the
guest boots from; S3 a Primary without UpToDate data (local or through a connected peer), or promoted on
non-UpToDate data; S4 a split brain; S5 a promotion the fencing constraint forbids; S6 the node running the
VM lost the fence race of a partition; L1 not healed within reboot delay + 60 s of the last heal, or a
failed action left that needs `crm resource cleanup` (but for a real failure the fault caused); L2 the VM
not running again within fencing + 5 s of losing its node; L3 more than 30 s with no cluster action while
the cluster is not in its goal state and no fault is active.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lab.campaign.schedule import KINDS

L1_GRACE = 60.0
L2_AFTER_FENCING = 5.0
L2_WINDOW = 60.0  # a node loss counts for L2 when another node stays on this long after it
L3_STALL = 30.0
MIGRATION_GRACE = 3.0  # the source's QEMU ends a moment after the stop that closes the window is logged
# S6: a fence race the VM's node must win (a fence-peer fault cuts the replication network too, and the
# race is then run by the DRBD monitors that finish the freeze: tandem-19702)
SPLIT_KINDS = ("partition", "cluster-cut", "repl-cut", "fence-peer-hang", "fence-peer-fail")
# the README's priority-fencing-delay (tandem-fence-peer keeps the same head start): the VM's node's lead
PRIORITY_FENCING_DELAY = 10.0
NODE_LOSS_KINDS = ("power-cut", "reboot")  # L2
SURVIVOR_LOSS_KINDS = (*NODE_LOSS_KINDS, "stop-start", "crash-corosync")  # a node out of the cluster


@dataclass(frozen=True)
class DrbdView:
    node: str
    role: str  # Primary / Secondary
    disk: str  # UpToDate, Outdated, Inconsistent, ...
    connected: frozenset[str]  # peers in Connected state
    peer_disks: tuple[tuple[str, str], ...]  # (peer, its disk state as this node sees it)
    split_brain: bool
    client: bool = False  # an intentional diskless client (`disk none;`): Diskless is its normal state

    def serving(self) -> list[str]:
        """Connected peers with UpToDate data: where a client's (or a failed disk's) I/O goes."""
        return [p for p, d in self.peer_disks if p in self.connected and d == "UpToDate"]

    def served(self) -> bool:
        return bool(self.serving())


@dataclass(frozen=True)
class Sample:
    t: float  # epoch seconds
    on: frozenset[str]  # nodes powered on
    qemu: tuple[str, ...]  # node of every QEMU process of the guest
    drbd: tuple[DrbdView, ...]  # nodes whose DRBD resource is up
    fence: frozenset[str] | None  # nodes a fencing constraint allows to be Primary; None: no constraint
    gens: tuple[tuple[str, int], ...] = ()  # every node's data generation on its disk (the emulator's meta)
    behind: frozenset[str] = frozenset()  # nodes lacking blocks a peer wrote (in the peer's bitmap for it)
    fence_at: float | None = None  # when the CIB query that read `fence` started (None: not recorded)

    def view(self, node: str) -> DrbdView | None:
        return next((v for v in self.drbd if v.node == node), None)


@dataclass(frozen=True)
class Injection:
    t: float
    kind: str
    node: str  # the node hit, "" for link and cluster-wide faults
    undo: bool
    note: str  # e.g. "skipped: node off"


@dataclass(frozen=True)
class Boot:
    """A look at the guest's disk: the last generation the guest had reported written before, and the
    generation on the disk (as the guest found it at boot, or as the node running it reads its device)."""

    t: float
    acked: int
    found: int | None  # None: no generation record ("fresh")
    where: str = "at boot"
    missing: str = ""  # the journal check's finding on that copy (lab.guest.disk.journal_check), if any
    error: str = ""  # the boot's read failed (e.g. device-error): it saw no data, old or new, and writes none


@dataclass(frozen=True)
class FailedAction:
    op: str  # e.g. vm1_monitor_10000
    node: str
    reason: str
    at: float = 0.0  # its last-rc-change (epoch seconds; 0: unknown)

    def __str__(self) -> str:
        return f"{self.op} on {self.node}: {self.reason}"


@dataclass(frozen=True)
class History:
    nodes: tuple[str, ...]
    samples: tuple[Sample, ...]
    injections: tuple[Injection, ...]
    actions: tuple[
        float, ...
    ]  # times of the cluster's actions (operations, fencing, membership) from its logs
    migrations: tuple[tuple[float, float], ...]  # migrate_to initiated → the source's stop done
    fenced: tuple[tuple[float, str], ...]  # (completed, target) of every fencing, from the logs
    boots: tuple[Boot, ...]
    healed_at: float  # the last fault undone
    end: float
    reboot_delay: float
    failed_actions: tuple[FailedAction, ...]  # crm_mon's at the end
    failure_timeout: float | None = None  # the resources' failure-timeout (rsc_defaults) in s; None: none
    # (started, joined, node): a node's controller started or respawned → joined (record.log_facts)
    joining: tuple[tuple[float, float, str], ...] = ()


@dataclass(frozen=True)
class Violation:
    checker: str
    t: float
    detail: str


PROMOTED_MAX = 2  # the README's configurations, two nodes or three


def goal(s: Sample, nodes: Sequence[str]) -> bool:
    """The configured state: every node on, one QEMU, no fencing constraint, DRBD connected everywhere,
    UpToDate on the data nodes (Diskless on a client), and Primary on promoted-max nodes, the VM's among
    them: data nodes, or the client that runs the VM (on purpose, or because the data nodes failed its
    start: README, three nodes) and one data node."""
    if s.on != frozenset(nodes) or len(s.qemu) != 1 or s.fence is not None or len(s.drbd) != len(nodes):
        return False
    data = {v.node for v in s.drbd if not v.client}
    primaries = {v.node for v in s.drbd if v.role == "Primary"}
    return (
        all(
            v.disk == ("Diskless" if v.client else "UpToDate") and v.connected == frozenset(nodes) - {v.node}
            for v in s.drbd
        )
        and len(primaries) == PROMOTED_MAX
        and s.qemu[0] in primaries
        and primaries <= data | {s.qemu[0]}
    )


def settled(samples: Sequence[Sample], nodes: Sequence[str], since: float) -> bool:
    """The last sample shows the goal and was taken after `since` (the heal): one begun before a fault
    that ended the schedule (a QEMU killed the moment before the heal) must not end the settling
    (tandem-17855: the run was judged 3 s after the heal, before Pacemaker's first monitor could see it)."""
    return bool(samples) and samples[-1].t >= since and goal(samples[-1], nodes)


def _stretches(
    samples: Sequence[Sample], bad: Callable[[Sample], str | None]
) -> Iterator[tuple[Sample, str]]:
    """The first sample (and what was wrong) of every run of consecutive bad samples."""
    inside = False
    for s in samples:
        why = bad(s)
        if why is not None and not inside:
            yield s, why
        inside = why is not None


def s1_two_copies(h: History) -> list[Violation]:
    def bad(s: Sample) -> str | None:
        if len(s.qemu) < 2:
            return None
        if any(a <= s.t <= b + MIGRATION_GRACE for a, b in h.migrations):
            return None
        return f"{len(s.qemu)} QEMUs of vm1 on {', '.join(s.qemu)} outside any migration window"

    return [Violation("S1", s.t, why) for s, why in _stretches(h.samples, bad)]


def s2_lost_write(h: History) -> list[Violation]:
    lost = [
        Violation(
            "S2", b.t, f"the guest had written generation {b.acked}, found {b.found} on its disk {b.where}"
        )
        for b in h.boots
        if not b.error and ((b.found is None and b.acked > 0) or (b.found is not None and b.found < b.acked))
    ]
    return lost + [Violation("S2", b.t, b.missing) for b in h.boots if b.missing]


def _served_stale(v: DrbdView) -> bool:
    """Primary on local data that is not UpToDate, with no UpToDate peer to serve it. A Primary without a
    disk (Diskless, Failed) and no such peer serves nothing: its I/O fails or waits (on-no-data-accessible),
    which the guest sees, and S2 judges what it finds after. Nor does one whose disk is Inconsistent (a new
    disk put under a Diskless Primary, tandem-17416): DRBD never reads an Inconsistent disk."""
    if v.role != "Primary" or v.disk in ("UpToDate", "Diskless", "Failed", "Inconsistent"):
        return False
    return not v.served()


def s3_stale_primary(h: History) -> list[Violation]:
    found = []
    for prev, s in zip((None, *h.samples), h.samples, strict=False):
        for v in s.drbd:
            was = prev.view(v.node) if prev is not None else None
            promoted = v.role == "Primary" and (was is None or was.role != "Primary") and prev is not None
            gens = dict(s.gens)
            if v.client:  # no copy of its own: it reads and writes through its connected UpToDate peers
                gens[v.node] = max((gens.get(p, 0) for p in v.serving()), default=0)
            newer = sorted(  # a connected peer's higher count is a write in flight: protocol C delivers it
                n for n, g in gens.items() if n not in (v.node, *v.connected) and g > gens.get(v.node, g)
            )
            # a disk that failed as the promotion ran (a sample apart): DRBD serves that Primary's I/O
            # through its UpToDate peer, as it does a client's (tandem-16317)
            diskless = v.client or v.disk in ("Diskless", "Failed")
            if promoted and v.disk != "UpToDate" and not (diskless and v.served()):
                found.append(Violation("S3", s.t, f"{v.node} promoted with {v.disk} data"))
            elif (
                promoted
                and not v.client
                and prev is not None
                and v.node in prev.behind
                and v.node in s.behind
            ):
                found.append(Violation("S3", s.t, f"{v.node} promoted without blocks a peer wrote"))
            elif promoted and newer:
                mine = gens[v.node]
                where = ", ".join(f"{n} has {gens[n]}" for n in newer)
                found.append(Violation("S3", s.t, f"{v.node} promoted with generation {mine} while {where}"))
            elif _served_stale(v) and not (was is not None and _served_stale(was)):
                found.append(Violation("S3", s.t, f"{v.node} Primary on {v.disk} data with no UpToDate peer"))
    return found


def s4_split_brain(h: History) -> list[Violation]:
    def bad(s: Sample) -> str | None:
        nodes = [v.node for v in s.drbd if v.split_brain]
        return f"split brain detected by {', '.join(nodes)}" if nodes else None

    return [Violation("S4", s.t, why) for s, why in _stretches(h.samples, bad)]


def s5_promotion_against_fencing(h: History) -> list[Violation]:
    """A node became Primary while the constraint forbade it: before the promotion, at it, and as the CIB
    read after it says (the CIB is polled apart from the other samples, so a constraint removed just before
    a promotion, e.g. by the resync's after-resync-target, may still show in the samples around it)."""
    found = []
    for k, (prev, s) in enumerate(zip(h.samples, h.samples[1:], strict=False), start=1):
        if prev.fence is None or s.fence is None:
            continue
        after = next((x for x in h.samples[k:] if x.fence_at is not None and x.fence_at >= s.t), None)
        for v in s.drbd:
            was = prev.view(v.node)
            forbidden = v.node not in prev.fence and v.node not in s.fence
            if after is not None and (after.fence is None or v.node in after.fence):
                forbidden = False  # lifted by the time of the promotion
            if v.role == "Primary" and (was is None or was.role != "Primary") and forbidden:
                allowed = ", ".join(sorted(prev.fence)) or "no node"
                found.append(
                    Violation("S5", s.t, f"{v.node} promoted while the fencing constraint allows {allowed}")
                )
    return found


# who lost the fence race of a split (split_outcomes); only the first is a violation (S6)
VM_NODE_FENCED = "the VM's node fenced (S6)"
PEER_FENCED = "the VM's node kept, a peer fenced"
NONE_FENCED = "no node fenced"
NOT_JUDGED = "not judged"
SPLIT_OUTCOMES = (PEER_FENCED, NONE_FENCED, VM_NODE_FENCED, NOT_JUDGED)


@dataclass(frozen=True)
class Split:
    cut: Injection
    outcome: str  # one of SPLIT_OUTCOMES
    t: float  # when the loser was seen off (the cut's time when no node was fenced or not judged)
    vm_node: str = ""


def split_outcomes(h: History) -> list[Split]:
    """Each split of the nodes (SPLIT_KINDS) and how its fence race ended: the first node to go off while
    a node stayed on, the one that ran the VM or another. Not judged: a split inside a live migration (until
    migrate_to's result is recorded the cluster counts the VM on the source, although the guest may already
    run on the target: the report's limits say so), with no single QEMU before it, or where the node that
    went off was hit by a fault of its own meanwhile (a power fault is no fence race), a split that began
    while an earlier one still held (its race began with the earlier split, which is judged instead; unless
    a node was off when the earlier one began: no race then, tandem-18877), one begun while a node was off,
    or a race whose fence device failed until the VM's node's head start was over (tandem-18165: both fencers
    then wait for the device, and whichever reaches it first when it returns wins, by Pacemaker's design), or
    a split in which another node's controller was joining before the VM's node's loss could be seen
    (_joining_in), or one whose outcome a fault of the VM's node's own had decided before it
    (_hit_before)."""
    found = []
    splits = [i for i in h.injections if i.kind in SPLIT_KINDS and not i.undo and not i.note]
    races = [cut for cut in splits if _all_on(h, cut.t)]
    for cut in splits:
        before = [s for s in h.samples if s.t <= cut.t]
        ongoing = any(other.t < cut.t <= _undone(h, other) for other in races if other is not cut)
        if (
            ongoing
            or cut not in races
            or any(a <= cut.t <= b for a, b in h.migrations)
            or len(before[-1].qemu) != 1
        ):
            found.append(Split(cut, NOT_JUDGED, cut.t))
            continue
        vm_node = before[-1].qemu[0]
        undo = _undone(h, cut)
        window = [s for s in h.samples if cut.t < s.t <= undo + 10 and len(s.on) > 0]
        # the race ends with the first node to go off: a later loss of the VM's node is another story
        # (tandem-19935: the peer fenced 5 s into the split, the VM's node lost 19 s later to a split of
        # its own, inside a migration)
        first_off = next((s for s in window if set(h.nodes) - s.on), None)
        lost = first_off if first_off is not None and vm_node not in first_off.on else None
        peer_off = None if lost is not None else first_off
        if (
            (lost is not None and _own_fault(h, {vm_node}, cut.t, lost.t))
            or (lost is not None and _hit_before(h, vm_node, cut.t))
            or (lost is not None and _joining_in(h, cut.t, vm_node))
            or _no_head_start(h, cut.t)
            or (
                lost is None
                and peer_off is not None
                and _own_fault(h, set(h.nodes) - peer_off.on, cut.t, peer_off.t)
            )
        ):
            found.append(Split(cut, NOT_JUDGED, cut.t, vm_node))
        elif lost is not None:
            found.append(Split(cut, VM_NODE_FENCED, lost.t, vm_node))
        elif peer_off is not None:
            found.append(Split(cut, PEER_FENCED, peer_off.t, vm_node))
        else:
            found.append(Split(cut, NONE_FENCED, cut.t, vm_node))
    return found


def _all_on(h: History, t: float) -> bool:
    """Every node was on at `t` (the last sample before it says so)."""
    before = [s for s in h.samples if s.t <= t]
    return bool(before) and not set(h.nodes) - before[-1].on


def _undone(h: History, cut: Injection) -> float:
    """When a split was healed (the run's end if it never was)."""
    return next((i.t for i in h.injections if i.undo and i.kind == cut.kind and i.t >= cut.t), h.end)


def _no_head_start(h: History, cut: float) -> bool:
    """The fence device failed from before the head start of the VM's node ran out until after it."""
    end = cut + PRIORITY_FENCING_DELAY
    failed = [i for i in h.injections if i.kind == "fence-fail" and not i.undo and not i.note]
    return any(i.t < end < _undone(h, i) for i in failed)


# Faults that take a node out of the membership by themselves, and how long the others take to see it lost
# (corosync's token, 1 s in the lab, and consensus, 1.2 s), with a margin.
MEMBERSHIP_FAULTS = ("power-cut", "reboot", "stop-start", "crash-corosync")
MEMBERSHIP_LOSS = 3.0
# Those of them after which the others fence the node, and how long that may take (the loss seen, the
# priority-fencing-delay of the VM's node, a margin)
FENCED_AFTER = ("power-cut", "reboot", "crash-corosync")
FENCING_DUE = MEMBERSHIP_LOSS + PRIORITY_FENCING_DELAY + 5.0


def _joining_in(h: History, cut: float, vm_node: str) -> bool:
    """A node other than the VM's had its controller joining (just started, or respawned) at some time
    between the split and MEMBERSHIP_LOSS after it, before it could see the VM's node lost. It then
    becomes DC of its side with a join round that never saw that node: after a start its CIB holds no
    resource history of the others (Pacemaker discards the status it starts with, tandem-18505), and
    after a respawn Pacemaker 2.1.5 writes expected="down" for the lost peer (join_make_offer) and fences
    it as "thought to be active there", which takes no priority-fencing-delay (tandem-18881). Either way no
    fence delay can favour the VM's node. A window without its node's name (recorded before e676d09) counts
    as it did when recorded: when it holds the split's start."""
    return any(
        (a < cut + MEMBERSHIP_LOSS and b > cut) if node else a <= cut < b  # unnamed: 53f7f66's rule
        for a, b, node in h.joining
        if node != vm_node
    )


def _hit_before(h: History, node: str, cut: float) -> bool:
    """A fault of the node's own decided its fate before the split: one that took it out of the membership
    shortly before (tandem-18538: corosync crashed there 1.2 s before the cluster cut, and the node was
    lost, and fenced, 2.1 s after the crash) or whose fencing was still due (tandem-19328: corosync crashed
    on the VM's node 7 s before the split, and the other node's scheduler fenced it after its
    priority-fencing-delay, 12 s after the crash), or a failed disk not yet replaced (the side that lost its
    own disk, which S6 exempts by definition: tandem-18559, whose disk failed in the same second as the
    replication link)."""
    for i in h.injections:
        if i.node != node or i.undo or i.note or i.t > cut:
            continue
        if i.kind in MEMBERSHIP_FAULTS and cut - MEMBERSHIP_LOSS <= i.t:
            return True
        fenced = any(target == node and i.t <= t <= cut for t, target in h.fenced)
        if i.kind in FENCED_AFTER and cut - FENCING_DUE <= i.t and not fenced:
            return True
        if i.kind == "disk-fail":
            replaced = next(
                (u.t for u in h.injections if u.undo and u.kind == i.kind and u.node == node and u.t >= i.t),
                h.end,
            )
            if cut <= replaced:
                return True
    return False


def _own_fault(h: History, nodes: set[str], since: float, until: float) -> bool:
    """A fault of their own hit these nodes between the split and their going off."""
    return any(i.node in nodes and since <= i.t <= until for i in h.injections)


def s6_partition_survivor(h: History) -> list[Violation]:
    """The node that ran the VM when the nodes were split lost the fence race (split_outcomes)."""
    return [
        Violation("S6", s.t, f"{s.cut.kind}: {s.vm_node} ran vm1 and was fenced")
        for s in split_outcomes(h)
        if s.outcome == VM_NODE_FENCED
    ]


def recovery(h: History) -> float | None:
    """Seconds from the last heal to the first goal state after it (None: never reached)."""
    first = next((s.t for s in h.samples if s.t >= h.healed_at and goal(s, h.nodes)), None)
    return None if first is None else round(first - h.healed_at, 1)


def l1_healed(h: History) -> list[Violation]:
    found = []
    took = recovery(h)
    budget = h.reboot_delay + L1_GRACE
    if took is None or took > budget:
        last = h.samples[-1] if h.samples else None
        state = (
            ""
            if last is None
            else f" (last: on {sorted(last.on)}, QEMU on {list(last.qemu)}, "
            + ", ".join(f"{v.node} {v.role}/{v.disk}" for v in last.drbd)
            + (f", fencing constraint allows {sorted(last.fence)}" if last.fence is not None else "")
            + ")"
        )
        found.append(Violation("L1", h.healed_at, f"not healthy within {budget:.0f}s of the heal{state}"))
    boot = next((b for b in reversed(h.boots) if b.where == "at boot"), None)
    if boot is not None and boot.error:  # QEMU runs, the guest has no disk: not healthy, whatever crm says
        found.append(Violation("L1", boot.t, f"the guest's last boot could not read its disk ({boot.error})"))
    found += [
        Violation("L1", h.end, f"failed action needs cleanup: {a}")
        for a in h.failed_actions
        if not expires(a, h.failure_timeout, h.end, h.samples[0].t if h.samples else h.end)
    ]
    return found


EXPIRY_SLACK = 20.0  # Pacemaker rechecks an expired failure at the expiry, plus a transition


def expires(a: FailedAction, failure_timeout: float | None, now: float, since: float) -> bool:
    """The failure goes away by itself (failure-timeout), so it needs no cleanup, unless it should have
    gone already. A failure without its time happened after `since` (each run starts with a cleanup)."""
    return failure_timeout is not None and now - (a.at or since) < failure_timeout + EXPIRY_SLACK


def node_losses(h: History) -> Iterator[tuple[Injection, float | None, tuple[float, str]]]:
    """Each loss of the VM's node with a survivor (another node on for L2_WINDOW s after it, with UpToDate
    data the fencing constraint, if any, does not forbid), when QEMU first ran on another node (None:
    never), and its L2 clock (_l2_clock). A survivor with outdated or resyncing data rightly waits for the
    lost node."""
    for cut in (i for i in h.injections if i.kind in NODE_LOSS_KINDS and not i.undo and not i.note):
        before = [s for s in h.samples if s.t <= cut.t]
        if not before or list(before[-1].qemu) != [cut.node]:
            continue
        during = [s for s in h.samples if cut.t < s.t <= cut.t + L2_WINDOW]
        fence = before[-1].fence
        others = frozenset(h.nodes) - {cut.node} if fence is None else fence - {cut.node}
        others &= {v.node for v in before[-1].drbd if v.disk == "UpToDate"}  # a resyncing one must wait
        if not any(all(n in s.on for s in during) for n in others):
            continue  # no survivor (a second fault took the other node too): nowhere to recover to
        clock = _l2_clock(h, cut)
        due = clock[0] + L2_AFTER_FENCING + 1.0  # when vm1 is due back elsewhere
        if len(h.nodes) >= 3 and (  # two nodes keep quorum alone (two_node): they fence each other instead
            _no_quorum_anywhere(h, cut.t, due) or _survivors_a_minority(h, before[-1], cut, due)
        ):
            continue  # the survivors may not act: L1 judges the recovery after the heal (tandem-17005)
        if len(h.nodes) == 2 and not others - _out_of_cluster(h, cut.t, due):
            continue  # the survivor's corosync restarted alone: two_node's wait_for_all (tandem-19568)
        back = next((s.t for s in h.samples if s.t > cut.t and s.qemu and cut.node not in s.qemu), None)
        yield cut, back, clock


ISOLATING_KINDS = ("cluster-cut", "partition", "repl-cut")  # every link of a network cut, between all nodes


def _no_quorum_anywhere(h: History, start: float, end: float) -> bool:
    """Whether every cluster or replication link was cut at some time in [start, end] (three nodes or more):
    each node alone, no partition has quorum, in the cluster or in DRBD (tandem-17005, 17432)."""
    cuts = sorted((i for i in h.injections if i.kind in ISOLATING_KINDS and not i.note), key=lambda i: i.t)
    for cut in (i for i in cuts if not i.undo and i.t <= end):
        undo = next((i.t for i in cuts if i.undo and i.kind == cut.kind and i.t >= cut.t), h.end)
        if undo >= start:
            return True
    return False


def _survivors_a_minority(h: History, before: Sample, cut: Injection, due: float) -> bool:
    """(Three nodes or more.) The nodes left to recover vm1 are no majority: another node was off, or
    its DRBD down (starting again, tandem-17516), already, or a fault took another one out of the cluster
    before vm1 was due back (tandem-17103, 17213). They have no quorum, and DRBD's tiebreaker, back
    later, does not give a lost quorum back."""
    left = (before.on & {v.node for v in before.drbd}) - {cut.node} - _out_of_cluster(h, cut.t, due)
    return 2 * len(left) <= len(h.nodes)  # (left: on, with DRBD up)


def _out_of_cluster(h: History, since: float, until: float) -> set[str]:
    """The nodes a fault took out of the cluster in (since, until], or before `since` and not back in it
    then (their controller joined again only after it: tandem-19420, corosync crashed 0.03 s before the
    peer's power cut). On two nodes such a survivor gets no quorum back until the lost node returns:
    votequorum's wait_for_all, which two_node implies, holds for a corosync that starts while its peer is
    gone (the scheduler then neither fences nor starts)."""

    def back_in(node: str, after: float) -> float:
        return next((a for a, _, n in sorted(h.joining) if n == node and a >= after), h.end)

    return {
        i.node
        for i in h.injections
        if i.kind in SURVIVOR_LOSS_KINDS
        and not i.undo
        and not i.note
        and i.t <= until
        and (since < i.t or back_in(i.node, i.t) > since)
    }


def _fenced_at(h: History, cut: Injection) -> float | None:
    """When the lost node was fenced."""
    return next((t for t, target in h.fenced if target == cut.node and t >= cut.t - 1), None)


def _l2_clock(h: History, cut: Injection) -> tuple[float, str]:
    """When the cluster knew the lost node's fate, and how: its fencing; or, back unfenced before its
    fencing was due, its controller's join again (the DC schedules vm1 only after that join:
    tandem-21172); else the fault."""
    fenced = _fenced_at(h, cut)
    if fenced is not None:
        return fenced, "its fencing"
    rejoined = [b for a, b, n in h.joining if n == cut.node and cut.t < a <= cut.t + FENCING_DUE]
    if rejoined:
        return min(rejoined), "its join again (not fenced)"
    return cut.t, "the fault (no fencing logged)"


def l2_node_loss(h: History) -> list[Violation]:
    """Losing the VM's node: QEMU must run elsewhere within L2_AFTER_FENCING of that node's fencing (or
    of what told the cluster its fate: _l2_clock)."""
    found = []
    for cut, back, (start, via) in node_losses(h):
        if back is None or back > start + L2_AFTER_FENCING + 1.0:  # log stamps: whole seconds in crm_mon
            after = "never" if back is None else f"{back - cut.t:.1f}s after the fault"
            found.append(
                Violation("L2", cut.t, f"{cut.kind} of {cut.node}: vm1 back {after}, {via} +5 s allowed")
            )
    return found


def l2_seconds(h: History) -> list[float]:
    """For each loss of the VM's node: seconds until QEMU ran on another node (the report's L2 numbers)."""
    return [round(back - cut.t, 1) for cut, back, _ in node_losses(h) if back is not None]


def active_faults(h: History, t: float) -> bool:
    """Some lasting fault (injected, not undone yet) at time t, or a node powered off by a fault."""
    open_ = 0
    for i in sorted(h.injections, key=lambda i: i.t):
        if i.t > t:
            break
        if i.note:
            continue
        if i.undo:
            open_ -= 1
        elif (kind := KINDS.get(i.kind)) is None or kind.hold is not None:  # a control lasts too
            open_ += 1
    return open_ > 0


def l3_stall(h: History) -> list[Violation]:
    """A stretch over L3_STALL s without a cluster action, out of goal, no fault active, and every node on
    (a fenced node's reboot delay is the hardware's time, not a stall)."""
    found = []
    floor = h.samples[0].t if h.samples else 0.0
    for s in h.samples:
        if goal(s, h.nodes) or active_faults(h, s.t) or s.on != frozenset(h.nodes):
            floor = s.t
            continue
        start = max([floor, *(a for a in h.actions if a <= s.t)])
        if s.t - start > L3_STALL:
            found.append(Violation("L3", start, f"no cluster action for {s.t - start:.0f}s out of goal"))
            floor = s.t  # one report per stall
    return found


CHECKERS: tuple[Callable[[History], list[Violation]], ...] = (
    s1_two_copies,
    s2_lost_write,
    s3_stale_primary,
    s4_split_brain,
    s5_promotion_against_fencing,
    s6_partition_survivor,
    l1_healed,
    l2_node_loss,
    l3_stall,
)


def check(h: History) -> list[Violation]:
    return sorted((v for c in CHECKERS for v in c(h)), key=lambda v: (v.t, v.checker))


def history_to_json(h: History) -> str:
    """The history as JSON (kept beside runs.jsonl, so that verdicts can be recomputed)."""
    return json.dumps(asdict(h), default=sorted)


def history_from_json(text: str) -> History:
    raw: dict[str, Any] = json.loads(text)

    def sample(s: dict[str, Any]) -> Sample:
        drbd = tuple(
            DrbdView(
                v["node"],
                v["role"],
                v["disk"],
                frozenset(v["connected"]),
                tuple((p, d) for p, d in v["peer_disks"]),
                v["split_brain"],
                v.get("client", False),
            )
            for v in s["drbd"]
        )
        fence = None if s["fence"] is None else frozenset(s["fence"])
        gens = tuple((n, g) for n, g in s.get("gens", ()))
        behind = frozenset(s.get("behind", ()))
        on, qemu = frozenset(s["on"]), tuple(s["qemu"])
        return Sample(s["t"], on, qemu, drbd, fence, gens, behind, s.get("fence_at"))

    return History(
        nodes=tuple(raw["nodes"]),
        samples=tuple(sample(s) for s in raw["samples"]),
        injections=tuple(Injection(**i) for i in raw["injections"]),
        actions=tuple(raw["actions"]),
        migrations=tuple((a, b) for a, b in raw["migrations"]),
        fenced=tuple((t, n) for t, n in raw["fenced"]),
        boots=tuple(Boot(**b) for b in raw["boots"]),
        healed_at=raw["healed_at"],
        end=raw["end"],
        reboot_delay=raw["reboot_delay"],
        failed_actions=tuple(FailedAction(**a) for a in raw["failed_actions"]),
        failure_timeout=raw.get("failure_timeout"),
        joining=tuple((w[0], w[1], w[2] if len(w) > 2 else "") for w in raw.get("joining", ())),
    )
