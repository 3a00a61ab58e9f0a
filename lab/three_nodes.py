# SPDX-License-Identifier: GPL-2.0-or-later
"""The README's three-node clusters (issue #13) and their scenarios, on lab.scenarios' VmCluster.

TiebreakerCluster   node1 and node2 with data, node3 an intentional diskless client and DRBD's quorum
                    tiebreaker, DRBD quorum instead of fence-peer handlers (README "Three nodes")
ThreeDataCluster    the same blocks, node3 with a disk of its own
HeldSurvivorCluster three data nodes, one Promoted instance, DRBD 9.2.19's hold after a Primary loss
client_round_trip, storage_loss_under_client, partition_2_1, vm_node_shutdown, primary_loss_while_held:
the scenarios, each returning what it measured and raising ScenarioError when the cluster does not do what
it should
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lab.cluster import poll
from lab.crm import ClusterState
from lab.netns import TOP
from lab.scenarios import (
    CLONE,
    MINOR,
    README,
    RES,
    VM,
    WAIT,
    Move,
    ScenarioError,
    VmCluster,
    check_boot,
    crm_block,
    guest_log,
    healthy,
    mark,
    moves_of,
    power_back,
    promoted,
    say_copies,
    settled,
    wait_fenced,
    wait_resync,
)

DRBD_3NODE = TOP / "lab" / "config" / "drbd-3node.txt"
CRM_3NODE = TOP / "lab" / "config" / "crm-3node.txt"
CLIENT = "node3"


class TiebreakerCluster(VmCluster):
    """The README's three-node cluster: node1 and node2 with data, node3 an intentional diskless client and
    DRBD's quorum tiebreaker, DRBD quorum instead of fence-peer handlers (README "Three nodes")."""

    node_count: ClassVar[int] = 3
    clients: ClassVar[tuple[str, ...]] = (CLIENT,)

    @classmethod
    def drbd_conf(cls, net: str) -> str:
        from lab.drbd_emu.setup import mesh_conf

        return mesh_conf(
            net=net,
            minor=MINOR,
            res=RES,
            nodes=("node1", "node2", CLIENT),
            clients=cls.clients,
            sections=cls.drbd_sections(),
            comment=f"lab drbd.conf (emulated DRBD 9): three nodes, diskless {cls.clients or 'none'}, quorum",
        )

    @classmethod
    def drbd_sections(cls) -> str:
        return readme_block("drbd-3node", DRBD_3NODE)

    @classmethod
    def crm(cls) -> str:
        return readme_block("crm-config-3node", CRM_3NODE)


class ThreeDataCluster(TiebreakerCluster):
    """The README's other three-node shape: the same blocks, node3 with a disk of its own."""

    clients: ClassVar[tuple[str, ...]] = ()


class HeldSurvivorCluster(ThreeDataCluster):
    """Three data nodes with one Promoted instance (the anchor's only shape) on DRBD 9.2.19, which holds a
    Secondary that lost the Primary at Consistent until it has reconciled with the other survivors; the
    hold is stretched to `reconcile_s` (a real one takes round trips) so that the promotion meets it."""

    promoted_max: ClassVar[int] = 1
    kernel: ClassVar[str | None] = "9.2.19"
    reconcile_s: ClassVar[float | None] = 10.0

    @classmethod
    def crm(cls) -> str:
        return single_primary(ThreeDataCluster.crm())


def single_primary(crm: str) -> str:
    """One Promoted instance, and no live migration (it needs the VM's source and target Promoted at once:
    with allow-migrate Pacemaker plans one anyway, and the transition waits forever for a demote that
    waits for the VM's stop)."""
    if "promoted-max=2" not in crm or "allow-migrate=true" not in crm:
        raise ValueError("the crm block has no promoted-max=2 and allow-migrate=true to turn off")
    return crm.replace("promoted-max=2", "promoted-max=1").replace(
        "allow-migrate=true", "allow-migrate=false"
    )


def without_handlers(sections: str) -> str:
    """A resource's sections without its `handlers { ... }` (tandem's, which an anchor does not have)."""
    return re.sub(r"handlers\s*\{[^}]*\}\s*", "", sections)


def readme_block(name: str, fallback: Path) -> str:
    return crm_block(README, fallback, (f"<!-- {name} -->", f"<!-- /{name} -->"))


CLIENT_PROMOTED = "drbd-r0-promoted-on-" + CLIENT  # the README's location constraint


def promote_client(vc: VmCluster, beside: str) -> None:
    """The README's first step to run vm1 on the client: node3 Promoted beside vm1's node (the other data
    node demoted), vm1 untouched. Pacemaker does not live-migrate in the transition that also changes the
    clone's roles (it logs "Move vm1 ... due to unrunnable drbd-r0-clone demote"), hence two steps."""
    mark(vc, f"crm configure location {CLIENT_PROMOTED}: {CLIENT} Promoted beside {beside}")
    vc.lab.crm(
        "configure",
        "location",
        CLIENT_PROMOTED,
        CLONE,
        "rule",
        "role=Promoted",
        "inf:",
        "#uname",
        "eq",
        CLIENT,
    )
    vc.wait(lambda s: promoted(s) == {beside, CLIENT}, f"drbd-r0-clone Promoted on {beside} and {CLIENT}")


def release_client(vc: VmCluster) -> None:
    """The README's last step: the location gone, Pacemaker demotes the client and promotes the data node."""
    mark(vc, f"crm configure delete {CLIENT_PROMOTED}")
    vc.lab.crm("configure", "delete", CLIENT_PROMOTED)
    vc.wait(lambda s: CLIENT not in promoted(s) and len(promoted(s)) == 2, "both data nodes Promoted again")


def relocate(vc: VmCluster, target: str) -> None:
    """With one Promoted instance (promoted_max 1, the anchor's only three-node shape) the Promoted role
    follows vm1: `crm resource move vm1 TARGET` stops it, moves the role and starts it there."""
    mark(vc, f"crm resource move {VM} {target}")
    vc.lab.crm("resource", "move", VM, target)


def client_round_trip(vc: VmCluster) -> list[Move]:
    """vm1 live-migrates from its data node onto the diskless client and back (README "Three nodes")."""
    home = vc.vm_node(healthy(vc, "a healthy cluster before the migrations"))
    booted = guest_log(vc).boots
    promote_client(vc, home)
    moves = moves_of(vc, home, [CLIENT, home], clear=False)
    vc.lab.crm("resource", "clear", VM)
    release_client(vc)
    settled(vc, booted, "the migrations onto the client and back")
    return moves


@dataclass(frozen=True)
class Restart:
    """vm1 moved by a stop and a start: with one Promoted instance the VM follows it."""

    source: str
    target: str
    outage_s: float  # the constraint change until the guest's first heartbeat on the target
    gen_found: int  # what the guest found on its disk there (checked: ≥ the last acknowledged)


def restarted_onto(vc: VmCluster, change: Callable[[], None], source: str) -> Restart:
    """`change()` (a constraint that moves the Promoted instance), then until vm1 runs again elsewhere, the
    guest booted from a copy with every acknowledged write."""
    from lab.guest import serial

    gen_before = vc.last_gen()
    at = serial.size(vc.serial)
    t0 = time.time()
    change()
    state = vc.wait(
        lambda s: bool(s.locations(VM)) and s.locations(VM) != {source}, f"vm1 away from {source}"
    )
    target = vc.vm_node(state)
    found = serial.wait_for(vc.serial, r"disk gen=(\d+) boots=(\d+)", after=at, timeout=WAIT)
    vc.wait_guest_running(after=at)
    outage = time.time() - t0
    check_boot(vc, target, int(found.group(1)), gen_before)
    mark(vc, f"vm1 restarted {source} → {target}: {outage:.1f}s without the guest")
    return Restart(source, target, outage, int(found.group(1)))


def client_round_trip_by_restarts(vc: VmCluster) -> list[Restart]:
    """The same trip with one Promoted instance: vm1 stops on its data node and starts on the client, and
    back (what the anchor's only three-node shape can do)."""
    home = vc.vm_node(healthy(vc, "a healthy cluster before moving vm1 to the client"))
    there = restarted_onto(vc, lambda: relocate(vc, CLIENT), home)
    back = restarted_onto(vc, lambda: relocate(vc, home), CLIENT)
    vc.lab.crm("resource", "clear", VM)
    healthy(vc, "a healthy cluster after the round trip")
    say_copies(vc, "after the round trip")
    return [there, back]


@dataclass(frozen=True)
class StorageLoss:
    victim: str  # the data node powered off while vm1 ran on the client
    survivor: str
    gens_while_down: int  # generations the guest wrote while the victim was off (all on the survivor)
    resync_kib: int  # what DRBD resynced to the victim when it came back
    copies: dict[str, int]  # node → the generation its own copy held at the end


def storage_loss_under_client(vc: VmCluster) -> StorageLoss:
    """vm1 runs on the diskless client; a data node loses power: the VM keeps running (no restart), its
    writes go on to the surviving data node, the victim is fenced and comes back, and DRBD resyncs to it
    what it missed; then vm1 goes home."""
    from lab import faults
    from lab.guest import serial

    home = vc.vm_node(healthy(vc, "a healthy cluster before moving vm1 to the client"))
    live = vc.promoted_max > 1
    if live:
        booted = guest_log(vc).boots
        promote_client(vc, home)
        moves_of(vc, home, [CLIENT], clear=False)
    else:
        restarted_onto(vc, lambda: relocate(vc, CLIENT), home)
        booted = guest_log(vc).boots
    victim = home
    survivor = next(n.name for n in vc.lab.nodes if n.name not in (victim, CLIENT))
    gen_before = vc.last_gen()
    at = serial.size(vc.serial)
    t0 = mark(vc, f"power cut of {victim} (vm1 on {CLIENT}; last generation written {gen_before})")
    faults.kill(vc.lab, victim)
    who, when = wait_fenced(vc, t0)
    if who != victim:
        raise ScenarioError(f"{who} was fenced, not the node that lost power ({victim})")
    mark(vc, f"{victim} fenced ({when - t0:.0f}s after the cut); vm1 still on {CLIENT}")
    power_back(vc, victim)
    vc.wait(lambda s: victim in s.online(), f"{victim} back online")
    gens_while_down = vc.last_gen() - gen_before
    mark(vc, f"{victim} back online ({time.time() - t0:.1f}s after the cut); DRBD reconnects")
    kib = wait_resync(vc, t0)
    mark(vc, f"DRBD resynced {kib} KiB {survivor} → {victim}: {vc.drbd_summary()}")
    log = guest_log(vc, at)
    if guest_log(vc).boots != booted or len(log.heartbeat_gaps()) > 5:
        raise ScenarioError(f"vm1 did not keep running on {CLIENT}: {guest_log(vc).boots - booted} restarts")
    copies = say_copies(vc, f"after {victim} returned")
    if live:
        moves_of(vc, CLIENT, [survivor])  # the Promoted data node: the victim came back Unpromoted
        release_client(vc)
        settled(vc, booted, f"the loss of {victim} under vm1 on {CLIENT}")
    else:
        restarted_onto(vc, lambda: relocate(vc, survivor), CLIENT)
        vc.lab.crm("resource", "clear", VM)
        healthy(vc, f"a healthy cluster after the loss of {victim}")
    return StorageLoss(victim, survivor, gens_while_down, kib, copies)


@dataclass(frozen=True)
class Leave:
    leaver: str  # the data node shut down cleanly while vm1 ran there
    target: str  # the Promoted data node vm1 live-migrated to
    spare: str  # the node promoted into the freed Primary slot once vm1 had left
    shutdown_s: float  # the shutdown request until the node was off (a looping transition: minutes)
    heartbeat_gaps: int  # lost guest heartbeats across it (a live migration loses none)


def vm_node_shutdown(vc: VmCluster) -> Leave:
    """A clean shutdown of the data node that runs vm1 (README "Three nodes"): vm1 live-migrates to the other
    Promoted data node, the leaver is demoted and stopped, and the spare is promoted into the freed slot
    (with a promotion score while the slots were full it would be promoted in the shutdown's own transition,
    whose graph loops: campaign run tandem-15101, where the shutdown hung). Then the node is powered on
    again and the cluster is healthy."""
    from lab import faults
    from lab.guest import serial

    state = healthy(vc, "a healthy cluster before the shutdown")
    leaver, before = vc.vm_node(state), promoted(state)
    spare = next(n.name for n in vc.lab.nodes if n.name not in before)
    booted, at = guest_log(vc).boots, serial.size(vc.serial)
    t0 = mark(vc, f"clean shutdown of {leaver} (vm1 there; {spare} the spare)")
    faults.stop(vc.lab, leaver)
    off = time.time()
    vc.migration_windows.append((t0, off))
    mark(vc, f"{leaver} off {off - t0:.1f}s after the request")
    state = vc.wait(
        lambda s: spare in promoted(s) and bool(s.locations(VM)), f"{spare} promoted, vm1 running"
    )
    target = vc.vm_node(state)
    if target in (leaver, spare):
        raise ScenarioError(f"vm1 went to {target}, not to the other Promoted data node")
    gaps = len(guest_log(vc, at).heartbeat_gaps())
    mark(vc, f"vm1 live-migrated {leaver} → {target}, {gaps} heartbeats lost; {spare} promoted after")
    faults.start(vc.lab, leaver)
    vc.wait(lambda s: leaver in s.online(), f"{leaver} back online")
    settled(vc, booted, f"the shutdown of {leaver}")
    return Leave(leaver, target, spare, off - t0, gaps)


@dataclass(frozen=True)
class HeldLoss:
    victim: str  # the one Primary, vm1's node, powered off
    promoted: str  # the survivor Pacemaker promoted
    held: tuple[str, ...]  # the survivors seen held at Consistent after the loss
    waited: bool  # the promote met the hold and waited for UpToDate (its own log line)
    restarted_s: float  # power cut → vm1 started on the promoted survivor
    gen_before: int
    gen_found: int  # what the guest found there (checked: ≥ the last acknowledged)


def primary_loss_while_held(vc: VmCluster) -> HeldLoss:
    """DRBD 9.2.19+ (HeldSurvivorCluster): the one Primary, vm1's node, loses power; both survivors are held
    at Consistent until they have reconciled. They keep the promotion scores they had (a score keyed on
    UpToDate would vanish for the window), Pacemaker promotes one once the victim is fenced, its promote
    waits for UpToDate, and vm1 restarts there from a copy with every acknowledged write. The victim then
    returns and resyncs."""
    from lab import faults
    from lab.guest import serial

    victim = vc.vm_node(healthy(vc, "a healthy cluster before the power cut"))
    at = serial.size(vc.serial)
    t0 = mark(vc, f"power cut of {victim} (the one Primary, vm1 there)")
    faults.kill(vc.lab, victim)
    gen_before = vc.last_gen()  # read after the cut: every write the guest acknowledged before it
    held: set[str] = set()

    def restarted(s: ClusterState) -> bool:
        held.update(_held(vc))
        return bool(s.locations(VM)) and victim not in s.locations(VM)

    state = vc.wait(restarted, "vm1 started on a survivor")
    promoted_on = vc.vm_node(state)
    started = mark(vc, f"vm1 started on {promoted_on}; survivors seen held at Consistent: {sorted(held)}")
    failed = [r.id for r in state.instances(CLONE) if r.failed]
    if failed:
        raise ScenarioError(f"a DRBD action failed during the hold: {failed}")
    found = serial.wait_for(vc.serial, r"disk gen=(\d+) boots=(\d+)", after=at, timeout=WAIT)
    check_boot(vc, promoted_on, int(found.group(1)), gen_before)
    log = vc.lab.node(promoted_on).dir / "var-log-pacemaker" / "pacemaker.log"
    waited = "is Consistent after a Primary loss: waiting for UpToDate" in log.read_text(errors="replace")
    power_back(vc, victim)
    vc.wait(lambda s: victim in s.online(), f"{victim} back online")
    kib = wait_resync(vc, t0)
    mark(vc, f"DRBD resynced {kib} KiB to {victim}")
    healthy(vc, "a healthy cluster after the Primary loss")
    say_copies(vc, "after the Primary loss")
    return HeldLoss(
        victim, promoted_on, tuple(sorted(held)), waited, started - t0, gen_before, int(found.group(1))
    )


def _held(vc: VmCluster) -> list[str]:
    """The nodes whose DRBD holds r0 at Consistent after a Primary loss (engine: reconcile_until)."""
    nodes: dict[str, dict[str, dict[str, object]]] = vc.emu_state()["nodes"]  # type: ignore[assignment]
    return [n for n, rs in nodes.items() if RES in rs and "reconcile_until" in rs[RES]]


@dataclass(frozen=True)
class Minority:
    isolated: str  # the data node cut off alone, running vm1 before the partition
    fenced: bool  # the majority fenced it (STONITH); else it stopped vm1 itself (no-quorum-policy)
    restarted_s: float  # partition → vm1 started on the majority side
    quorum_lost_s: float  # partition → DRBD on the isolated node without quorum
    minority_primary: bool  # the isolated node was ever DRBD Primary with quorum during the partition
    gen_before: int
    gen_found: int  # the generation the guest found when it booted on the majority side


def partition_2_1(vc: VmCluster) -> Minority:
    """The node running vm1 (a data node) is cut off from both others: its DRBD loses quorum and fails I/O
    (`on-no-quorum io-error`), the majority (the other data node and the tiebreaker) keeps quorum, fences
    the isolated node when STONITH is on, and restarts vm1 on the other data node from its copy; the
    isolated node never writes without quorum. Healing brings it back as a SyncTarget."""
    from lab import faults
    from lab.guest import serial

    lone = vc.vm_node(healthy(vc, "a healthy cluster before the partition"))
    rest = [n.name for n in vc.lab.nodes if n.name != lone]
    gen_before = vc.last_gen()
    at = serial.size(vc.serial)
    t0 = mark(vc, f"network partition {lone} | {' '.join(rest)} (vm1 on {lone}; generation {gen_before})")
    faults.partition(vc.lab, [lone], rest)
    vc.emu_links([(lone, other) for other in rest], cut=True)
    lost = poll(lambda: _quorum_lost(vc, lone), WAIT, f"DRBD on {lone} without quorum", interval=0.2)
    mark(vc, f"DRBD on {lone} lost quorum ({lost - t0:.1f}s after the partition)")
    primary_with_quorum = False

    def restarted(s: ClusterState) -> bool:
        nonlocal primary_with_quorum
        primary_with_quorum = primary_with_quorum or _writes_without_majority(vc, lone)
        return bool(s.locations(VM)) and s.locations(VM) <= set(rest)

    state = vc.wait(restarted, f"vm1 started on the majority side {rest}")
    started = mark(vc, f"vm1 started on {vc.vm_node(state)}")
    found = serial.wait_for(vc.serial, r"disk gen=(\d+) boots=(\d+)", after=at, timeout=WAIT)
    check_boot(vc, vc.vm_node(state), int(found.group(1)), gen_before)
    fenced = bool(state.fenced(lone, t0))
    if fenced:
        power_back(vc, lone)
    faults.heal(vc.lab)
    vc.emu_links([(lone, other) for other in rest], cut=False)
    healed = mark(vc, "network healed")
    kib = wait_resync(vc, healed)
    mark(vc, f"DRBD resynced {kib} KiB to {lone}")
    healthy(vc, "a healthy cluster after the partition")
    say_copies(vc, "after the partition")
    return Minority(
        lone, fenced, started - t0, lost - t0, primary_with_quorum, gen_before, int(found.group(1))
    )


def _quorum_lost(vc: VmCluster, node: str) -> float | None:
    from lab.drbd_emu import engine

    st = vc.emu_state()
    r = st["nodes"].get(node, {}).get(RES)  # type: ignore[attr-defined]
    return time.time() if r is None or not engine.has_quorum(st, node, RES) else None


def _writes_without_majority(vc: VmCluster, node: str) -> bool:
    """The isolated node is DRBD Primary and could write (quorum, no I/O error): what must never be."""
    from lab.drbd_emu import engine

    st = vc.emu_state()
    r = st["nodes"].get(node, {}).get(RES)  # type: ignore[attr-defined]
    return bool(r and r["role"] == "Primary" and engine.io_failure(st, node, RES) is None)
