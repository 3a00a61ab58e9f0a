# SPDX-License-Identifier: GPL-2.0-or-later
"""The promotion-score policy: DRBD state in, a score (or "remove the score") out. Pure.

Pacemaker promotes the instance with the highest positive score. The tiers, first match wins:

==========================  ===============================================================  =========
tier                        state                                                            default
==========================  ===============================================================  =========
(remove)                    not running, role Unknown, quorum lost, a local disk not UpToDate no score
(remove, optional)          Secondary while a connected peer is Primary, in single-primary    no score
                            mode (``remove_if_peer_primary``)
(remove)                    Secondary while the Primary slots are full (dual primary): as     no score
                            many connected peers Primary as promoted-max
(remove)                    a diskless client, Secondary or a Primary whose devices nobody    no score
                            holds open, while a peer with UpToDate data is Secondary (dual
                            primary): the slot is that node's (a Primary yields it, and does
                            not take it back when that node cannot be promoted)
``primary``                 Primary, every local disk UpToDate                               10000
``uptodate``                Secondary, every local disk UpToDate, every peer disk known       10000
``peer_unknown``            Secondary, every local disk UpToDate, some peer disk DUnknown     1000
                            (the peer may have newer data that we cannot see)
``diskless``                an intentional diskless client (DRBD 9 ``disk none``), either     100
                            role, while every volume has a connected UpToDate peer
                            (``diskless_score``; below the tiers of nodes with data, so a
                            client is promoted only when a VM is placed there on purpose)
(hold)                      Secondary, Consistent (not Outdated), quorate, no peer Primary:   previous
                            DRBD 9.2.19+/9.3.3+ holds a survivor there after losing the       score
                            Primary until it has reconciled with the other survivors; the
                            score it had as UpToDate is kept (never raised), so the right
                            node stays the promotion candidate and promote waits for DRBD
                            to make it UpToDate. A node that had no score keeps none.
==========================  ===============================================================  =========

The two slot rules keep scores from ever asking Pacemaker to swap roles (demote one instance and promote
another in one transition): Pacemaker 2.1 plans a VM's live migration into such a transition too, and with
the README's two orders (promote before the VM's start, the VM's stop before demote) that graph loops
("Transition failed: terminated", campaign runs tandem-15001 and 15101). A freed slot is filled, and a
yielded one taken, in a transition of its own, after the notify or monitor that sees the change.

Unlike ``ocf:linbit:drbd`` there is no positive tier for Consistent-only data or for "a peer has UpToDate
data": a node whose own data is not UpToDate never gets a score, so Pacemaker never tries (and retries) to
promote it. Transitional disk states (Attaching, Negotiating) count as not UpToDate for the same reason.
"""

from __future__ import annotations

from tandem.drbd.model import ConnState, DiskState, Resource, Role, data_peer, is_client, peer_name
from tandem.record import NamedTuple

DEFAULT_TIERS = "1000 10000 10000"
DEFAULT_DISKLESS = 100


class Tiers(NamedTuple):
    """Scores of the three positive tiers; validated to be positive and non-decreasing."""

    peer_unknown: int = 1000
    uptodate: int = 10000
    primary: int = 10000

    @classmethod
    def parse(cls, text: str) -> Tiers:
        """ "PEER_UNKNOWN UPTODATE PRIMARY", e.g. "1000 10000 10000". Raises ValueError with the problem."""
        words = text.replace(",", " ").split()
        if len(words) != 3 or not all(w.isdigit() for w in words):
            raise ValueError(f"{text!r} is not three integers (peer_unknown uptodate primary)")
        values = [int(w) for w in words]
        if values[0] <= 0 or values != sorted(values):
            raise ValueError(f"{text!r}: scores must be positive and non-decreasing")
        if values[2] > 1000000:
            raise ValueError(f"{text!r}: scores above 1000000 would be read as INFINITY")
        return cls(*values)


class Decision(NamedTuple):
    """`score` None means: remove the promotion score (this node must not be promoted)."""

    score: int | None
    reason: str

    def render(self) -> str:
        """How the score is cached and logged: the number, or "remove"."""
        return "remove" if self.score is None else str(self.score)


def local_uptodate(res: Resource) -> bool:
    """Every local volume holds UpToDate data (and there is at least one)."""
    return bool(res.devices) and all(d.disk is DiskState.UP_TO_DATE for d in res.devices)


def all_uptodate(res: Resource | None) -> bool:
    """This node and every peer connected and UpToDate on every volume: what lifts a fencing constraint."""
    if res is None or not local_uptodate(res) or not res.connections:
        return False
    return all(
        c.connection is ConnState.CONNECTED
        and bool(c.peer_devices)
        and all(p.peer_disk is DiskState.UP_TO_DATE for p in c.peer_devices)
        for c in res.connections
    )


def unreachable_volumes(res: Resource) -> list[int | None]:
    """The volumes without a connected UpToDate peer."""
    return [d.volume for d in res.devices if data_peer(res, d.volume) is None]


def reconciling(res: Resource) -> bool:
    """Secondary, quorate, every disk UpToDate or Consistent (at least one Consistent), no peer Primary:
    the window in which DRBD 9.2.19+/9.3.3+ holds a survivor after a Primary loss."""
    disks = {d.disk for d in res.devices}
    return (
        res.role is Role.SECONDARY
        and res.quorum
        and DiskState.CONSISTENT in disks
        and disks <= {DiskState.CONSISTENT, DiskState.UP_TO_DATE}
        and not any(c.peer_role is Role.PRIMARY for c in res.connections)
    )


def peer_disks_known(res: Resource) -> bool:
    """We know the disk state of every peer volume, so no peer can hide newer data from us."""
    peer_devices = [p for c in res.connections for p in c.peer_devices]
    if not res.connections or any(not c.peer_devices for c in res.connections):
        return False
    return all(p.peer_disk is not DiskState.DUNKNOWN for p in peer_devices)


def peers_in_role(res: Resource, role: Role, *, with_data: bool = False) -> list[str]:
    """The peers in `role` (DRBD knows a peer's role only while connected to it); `with_data`: only those with
    UpToDate data on every volume."""
    return [
        peer_name(c)
        for c in res.connections
        if c.peer_role is role
        and (
            not with_data
            or (bool(c.peer_devices) and all(p.peer_disk is DiskState.UP_TO_DATE for p in c.peer_devices))
        )
    ]


def idle(res: Resource) -> bool:
    """No local device is held open (no VM uses it); False where the status does not say."""
    return bool(res.devices) and all(d.open is False for d in res.devices)


def promotion_score(
    res: Resource | None,
    tiers: Tiers | None = None,
    *,
    remove_if_peer_primary: bool = False,
    promoted_max: int = 1,
    diskless: int = DEFAULT_DISKLESS,
    previous: int | None = None,
) -> Decision:
    """`previous` is the score this node holds now (None: none); only the reconciling hold uses it."""
    tiers = tiers or Tiers()
    if res is None or res.role is Role.UNCONFIGURED:
        return Decision(None, "DRBD resource is not running")
    if res.role is Role.UNKNOWN:
        return Decision(None, "local role Unknown")
    if not res.quorum:
        return Decision(None, "quorum lost")
    if is_client(res):
        missing = unreachable_volumes(res)
        if missing:
            vols = ", ".join(str(v) for v in missing)
            return Decision(None, f"diskless client without a connected UpToDate peer (volume {vols})")
    elif reconciling(res) and previous is not None:
        return Decision(
            min(previous, tiers.uptodate), "Consistent while reconciling after a Primary loss: score kept"
        )
    elif not local_uptodate(res):
        states = ", ".join(sorted({str(d.disk) for d in res.devices})) or "no disk"
        return Decision(None, f"local data is not UpToDate ({states})")
    if is_client(res) and promoted_max >= 2 and (res.role is Role.SECONDARY or idle(res)):
        ready = peers_in_role(res, Role.SECONDARY, with_data=True)
        if ready:
            return Decision(None, f"diskless client not in use while {ready[0]} with data is Secondary")
    if res.role is Role.PRIMARY:
        if is_client(res):
            return Decision(diskless, "diskless client Primary with a connected UpToDate peer")
        return Decision(tiers.primary, "Primary with UpToDate data")
    primaries = peers_in_role(res, Role.PRIMARY)
    if promoted_max >= 2 and len(primaries) >= promoted_max:
        return Decision(
            None, f"the Primary slots are full ({', '.join(primaries)} Primary, promoted-max={promoted_max})"
        )
    if remove_if_peer_primary and promoted_max < 2 and primaries:
        return Decision(None, f"peer {primaries[0]} is Primary")
    if is_client(res):
        return Decision(diskless, "diskless client with a connected UpToDate peer")
    if peer_disks_known(res):
        return Decision(tiers.uptodate, "UpToDate, every peer disk state known")
    return Decision(tiers.peer_unknown, "UpToDate, but a peer's disk state is unknown")
