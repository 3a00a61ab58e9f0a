# SPDX-License-Identifier: GPL-2.0-or-later
"""The monitor verdict: DRBD state in, an OCF code and a one-line reason out. Pure.

* 7   not running;
* 0/8 healthy Secondary/Primary;
* 9   Primary but failed: I/O suspended (user, quorum), or a peer Primary that the clone's promoted-max
      does not allow;
* 190/191 degraded Secondary/Primary: quorum lost, a peer disconnected or StandAlone (split-brain or an
      admin's disconnect), a resync running, a local or peer disk not UpToDate (a Primary's lost disk
      whose I/O a peer serves too), I/O frozen while the fence-peer handler runs, and a Primary without
      data: no local disk (lost, or an intentional diskless client) and no connected UpToDate peer
      (its I/O fails, or DRBD suspends it as "no-data").

A Primary without data is degraded, not failed, although its guest gets I/O errors: its promotion score is
gone, so Pacemaker stops its users and demotes it, which is the remedy; the stop and start that 9 asks for
cannot give it data back. And 9 there meets a Pacemaker defect (2.1.5 to 3.0): the demote cancels that
failed monitor, and when a new DC does it (the peer that served the data is often the DC that just died),
the cancel is never confirmed and the transition waits out the monitor timeout plus cluster-delay (135 s).

An intentional diskless client (DRBD 9 ``disk none``, client:yes) has no local disk to report: it is healthy
while every volume has a connected UpToDate peer and quorum holds. A Diskless disk with client:no is a
diskful node whose disk failed, judged as before.

``ocf:linbit:drbd`` reports all of these as plain 0/8. Pacemaker (>= 2.0.5) treats 190/191 as success but
shows them as degraded, so reporting them costs no failover and tells the admin what is wrong.

Also here: the pure checks of the clone's meta attributes and of ``drbdadm dump`` output that dual-primary
needs (``allow-two-primaries``, the fencing policy).
"""

from __future__ import annotations

from tandem.drbd.model import ConnState, DiskState, Resource, Role, data_peer, is_client, peer_name
from tandem.ocf.codes import Rc
from tandem.record import NamedTuple
from tandem.regex import lazy

# Disk states under which a Primary has no local data left to serve from.
NO_DISK = frozenset({DiskState.DISKLESS, DiskState.FAILED, DiskState.DETACHING})
# The freeze while the fence-peer handler runs is not a failure, and neither is no-data (a Primary without
# data, degraded). Every other reason (user, quorum, and "unknown" from /proc/drbd, which does not say why)
# fails a Primary.
TRANSIENT_SUSPEND = "fencing"
# DRBD's suspension of a Primary without data (on-no-data-accessible suspend-io): reported as no data.
NO_DATA_SUSPEND = "no-data"
# The largest dual-primary clone the agents support (and the lab tests).
MAX_DUAL_PRIMARY_NODES = 4


def frozen_for_fencing(res: Resource) -> list[str | None]:
    """The lost peers a Primary's frozen I/O waits for (suspended:fencing with connections down; None for a
    peer DRBD 8.4 does not name); empty when I/O runs or every peer is connected. Here, not in tandem.fence,
    so that a monitor can ask without importing the handlers."""
    if TRANSIENT_SUSPEND not in res.suspended or res.role is not Role.PRIMARY:
        return []
    return [c.peer for c in res.connections if c.connection is not ConnState.CONNECTED]


class Verdict(NamedTuple):
    rc: Rc
    reason: str  # empty when healthy

    @property
    def healthy(self) -> bool:
        return self.rc in (Rc.SUCCESS, Rc.RUNNING_PROMOTED)


def failures(res: Resource, promoted_max: int) -> list[str]:
    """Why a Primary must be recovered (monitor 9). A lost disk is not one of them: the Primary loses its
    promotion score, so Pacemaker moves its users away (a VM live, while a peer serves its I/O) and demotes
    it, instead of recovering it under a running VM."""
    found: list[str] = []
    fatal = [s for s in res.suspended if s not in (TRANSIENT_SUSPEND, NO_DATA_SUSPEND)]
    if fatal:
        found.append(f"I/O suspended ({', '.join(fatal)})")
    peers = [peer_name(c) for c in res.connections if c.peer_role is Role.PRIMARY]
    if len(peers) > max(0, promoted_max - 1):
        found.append(f"unexpected peer Primary: {', '.join(peers)} (promoted-max={promoted_max})")
    return found


def degradations(res: Resource) -> list[str]:
    """Why the resource runs but not as it should (monitor 190/191)."""
    found: list[str] = []
    if not res.quorum:
        found.append("quorum lost")
    if TRANSIENT_SUSPEND in res.suspended:
        found.append("I/O frozen while the peer is being fenced")
    client = is_client(res)
    primary = res.role is Role.PRIMARY
    if not client:
        bad_local = sorted({str(d.disk) for d in res.devices if d.disk is not DiskState.UP_TO_DATE})
        if bad_local:
            found.append(f"local disk {'/'.join(bad_local)}")
    if client or primary:
        role = " Primary" if primary else ""
        what = f"diskless client{role}" if client else "no data under a Primary"
        found += [
            f"{what} without a connected UpToDate peer (volume {d.volume})"
            for d in res.devices
            if d.disk in NO_DISK and data_peer(res, d.volume) is None
        ]
    if NO_DATA_SUSPEND in res.suspended:
        found.append("I/O suspended (no-data)")
    if res.role is Role.PRIMARY and not client:
        served = {peer for d in res.devices if d.disk in NO_DISK and (peer := data_peer(res, d.volume))}
        found += [f"I/O served by peer {peer}" for peer in sorted(served)]
    if not res.connections:
        found.append("no peer connection")
    for conn in res.connections:
        name = peer_name(conn)
        if conn.connection is ConnState.STANDALONE:
            found.append(f"StandAlone towards {name} (split-brain or disconnected by hand)")
            continue
        if conn.connection is not ConnState.CONNECTED:
            found.append(f"peer {name} disconnected ({conn.connection})")
            continue
        for pd in conn.peer_devices:
            if pd.replication.resyncing:
                done = f" {pd.done:.1f}%" if pd.done is not None else ""
                found.append(f"resync {pd.replication} with {name}{done}")
            elif pd.peer_disk is not DiskState.UP_TO_DATE and not pd.peer_client:
                found.append(f"peer {name} disk {pd.peer_disk}")
    return found


def verdict(res: Resource | None, *, promoted_max: int = 1) -> Verdict:
    if res is None or res.role is Role.UNCONFIGURED:
        return Verdict(Rc.NOT_RUNNING, "")
    if res.role is Role.UNKNOWN:
        return Verdict(Rc.ERR_GENERIC, "DRBD reports role Unknown")
    promoted = res.role is Role.PRIMARY
    if promoted:
        failed = failures(res, promoted_max)
        if failed:
            return Verdict(Rc.FAILED_PROMOTED, "failed Primary: " + "; ".join(failed))
    degraded = degradations(res)
    if degraded:
        return Verdict(Rc.DEGRADED_PROMOTED if promoted else Rc.DEGRADED, "degraded: " + "; ".join(degraded))
    return Verdict(Rc.RUNNING_PROMOTED if promoted else Rc.SUCCESS, "")


def clone_limits(
    promoted_max: int | None,
    promoted_node_max: int | None,
    clone_max: int | None,
    clone_node_max: int | None,
) -> str | None:
    """What is wrong with the clone's meta attributes for DRBD, or None.

    DRBD is one instance per node, and at most two Primaries (DRBD 9.x: "exactly two Primaries for the use in
    live migration", UG9). Dual primary is allowed on up to 4 nodes (e.g. 2 diskful + 2 diskless
    hypervisors), where ocf:linbit:drbd refuses any dual primary beyond two nodes.
    """
    if (clone_node_max or 1) != 1:
        return f"clone-node-max={clone_node_max}: DRBD runs one instance per node (set it to 1)"
    if (promoted_node_max or 1) != 1:
        return f"promoted-node-max={promoted_node_max}: must be 1"
    if (promoted_max or 1) > 2:
        return f"promoted-max={promoted_max}: DRBD supports at most two Primaries"
    if (promoted_max or 1) == 2 and clone_max is not None and clone_max > MAX_DUAL_PRIMARY_NODES:
        return f"promoted-max=2 (dual-primary) needs clone-max <= {MAX_DUAL_PRIMARY_NODES}, not {clone_max}"
    return None


_TWO_PRIMARIES = lazy(r"(?m)^\s*allow-two-primaries(\s+yes)?\s*;")
_FENCING = lazy(r"(?m)^\s*fencing\s+([a-z-]+)\s*;")


def allows_two_primaries(dump: str) -> bool:
    """`drbdadm dump <res>` sets allow-two-primaries (as `allow-two-primaries;` or `... yes;`)."""
    return _TWO_PRIMARIES.search(dump) is not None


def fencing_policy(dump: str) -> str:
    """The `fencing` option of `drbdadm dump <res>` (net section in 9, disk in 8.4); dont-care if unset."""
    match = _FENCING.search(dump)
    return match.group(1) if match else "dont-care"
