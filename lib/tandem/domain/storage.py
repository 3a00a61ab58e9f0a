# SPDX-License-Identifier: GPL-2.0-or-later
"""Which DRBD resources hold a domain's disks, and whether they allow a start or a migration. Pure.

How the target is checked (the agent runs migrate_to on the *source*): DRBD replicates its state changes over
the connection, so the source's own `drbdsetup status --json` carries the target's view: the connection named
after the target node has `peer-role` and, per volume, `peer-disk` and `replication`. That view is what DRBD
itself uses to allow writes, it needs no second channel to the target (ssh, a remote drbdsetup), and it is
current while the connection is Connected; when it is not, the peer state is Unknown/DUnknown and the check
refuses, which is the safe answer because a migration over a broken link would run the domain on stale data.

Intentional diskless clients (DRBD 9 `disk none`, client:yes) hold no data: a domain may run on one while
DRBD reads and writes through a connected UpToDate peer. Here (start, or the source of a migration) that is
checked on the local status; for a client target, the source sees only its own link to it: with UpToDate
data here the target reads through us; from a client source (diskless to diskless, as DRBD allows for live
migration) the target's own data path is DRBD's to guard: it promotes a client only with UpToDate data
reachable (exit 17 otherwise), and the target's drbd monitor fails its Primary (9) when that path is lost.
A Diskless disk that is not a client (client:no) is a failed diskful node and is refused as before.
"""

from __future__ import annotations

from tandem.domain.config import Disk
from tandem.drbd.model import (
    Connection,
    ConnState,
    DiskState,
    ReplState,
    Resource,
    Role,
    Status,
    data_peer,
    is_client,
)
from tandem.ocf.params import ALNUM, Chars
from tandem.record import NamedTuple
from tandem.regex import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

RESOURCE = Chars(ALNUM, ALNUM + "_.+-", 128)
_MINOR = lazy(r"/dev/drbd(\d+)")
_BY_RES = lazy(r"/dev/drbd/by-res/([^/]+)(?:/(\d+))?")


class DrbdRef(NamedTuple):
    """A disk that is a DRBD device: by minor (/dev/drbdN) or by resource (and volume)."""

    resource: str | None = None
    volume: int | None = None
    minor: int | None = None

    def describe(self) -> str:
        if self.resource is not None:
            return self.resource if self.volume is None else f"{self.resource}/{self.volume}"
        return f"/dev/drbd{self.minor}"


def drbd_ref(disk: Disk, realpath: Callable[[str], str] | None = None) -> DrbdRef | None:
    """The DRBD device behind a disk, or None. `realpath` resolves symlinks (udev names) on the node."""
    if disk.drbd_resource:
        return DrbdRef(resource=disk.drbd_resource)
    if not disk.path:
        return None
    for path in dict.fromkeys((disk.path, realpath(disk.path) if realpath else disk.path)):
        if m := _MINOR.fullmatch(path):
            return DrbdRef(minor=int(m.group(1)))
        if m := _BY_RES.fullmatch(path):
            return DrbdRef(resource=m.group(1), volume=int(m.group(2)) if m.group(2) else None)
    return None


def drbd_refs(disks: Iterable[Disk], realpath: Callable[[str], str] | None = None) -> tuple[DrbdRef, ...]:
    refs = (drbd_ref(d, realpath) for d in disks)
    return tuple(dict.fromkeys(r for r in refs if r is not None))


def resolve(refs: Iterable[DrbdRef], status: Status) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Resource names for the refs, and the refs that name nothing DRBD knows (as problems)."""
    names: list[str] = []
    missing: list[str] = []
    for ref in refs:
        if ref.resource is not None:
            found = ref.resource if status.resource(ref.resource) else None
        else:
            found = next(
                (r.name for r in status.resources if r.name and any(d.minor == ref.minor for d in r.devices)),
                None,
            )
        if found is None:
            missing.append(f"{ref.describe()} is not a configured DRBD device here")
        elif found not in names:
            names.append(found)
    return tuple(names), tuple(missing)


def find_connection(res: Resource, node: str) -> Connection | None:
    """The connection to `node`: by name (DRBD names connections after the peer's host), else the only one."""
    named = [c for c in res.connections if c.peer == node]
    if named:
        return named[0]
    return res.connections[0] if len(res.connections) == 1 else None


def target_problems(status: Status, resources: Iterable[str], target: str) -> list[str]:
    """What stops a live migration to `target`: both sides must be Primary with UpToDate data, in sync, or
    be a diskless client Primary whose I/O a connected UpToDate peer serves."""
    problems: list[str] = []
    for name in resources:
        res = status.resource(name)
        problems += _local(name, res, leaving=True)
        if res is not None:
            problems += _peer(name, res, target)
    return problems


def frozen(status: Status, resources: Iterable[str]) -> list[str]:
    """The resources whose I/O DRBD holds (fence-peer running or failed, quorum lost with on-no-quorum
    suspend-io...) or fails (quorum lost with io-error), with the reason: a domain started on one would hang
    or fail on its first disk access. Often for seconds only (a handler answering, a link back)."""
    found = []
    for name in resources:
        res = status.resource(name)
        if res is not None and res.suspended:
            found.append(f"{name} I/O is suspended ({','.join(res.suspended)})")
        elif res is not None and not res.quorum:
            found.append(f"{name} has lost quorum here")
    return found


def local_problems(status: Status, resources: Iterable[str]) -> list[str]:
    """What stops a start here: the disks must be writable (Primary) with UpToDate data, here or, on a
    diskless client, on a connected peer."""
    return [p for name in resources for p in _local(name, status.resource(name))]


def _local(name: str, res: Resource | None, *, leaving: bool = False) -> list[str]:
    """`leaving`: the migration's source, whose own disk may have failed (DRBD serves its I/O from a
    connected UpToDate peer): moving the VM to its data is the cure, not a risk."""
    if res is None:
        return [f"DRBD resource {name} is not configured here"]
    problems = []
    if res.role is not Role.PRIMARY:
        problems.append(f"{name} is {res.role} here, not Primary (is the DRBD clone promoted here?)")
    if is_client(res):
        return problems + [
            f"{name}/{d.volume} is a diskless client here without a connected UpToDate peer"
            for d in res.devices
            if data_peer(res, d.volume) is None
        ]
    bad = [
        d
        for d in res.devices
        if d.disk is not DiskState.UP_TO_DATE and not (leaving and data_peer(res, d.volume) is not None)
    ]
    return problems + [f"{name}/{d.volume} disk is {d.disk} here" for d in bad]


def _peer(name: str, res: Resource, target: str) -> list[str]:
    conn = find_connection(res, target)
    if conn is None:
        return [f"{name} has no connection to {target}"]
    if conn.connection is not ConnState.CONNECTED:
        return [f"{name} connection to {target} is {conn.connection}"]
    problems = []
    if conn.peer_role is not Role.PRIMARY:
        problems.append(f"{name} is {conn.peer_role} on {target}, not Primary")
    if not conn.peer_devices:
        problems.append(f"{name} reports no volumes on {target}")
    local = {d.volume: d.disk for d in res.devices}
    for pd in conn.peer_devices:
        if pd.peer_disk is DiskState.DISKLESS and pd.peer_client:
            if local.get(pd.volume) is not DiskState.UP_TO_DATE and not is_client(res):
                problems.append(
                    f"{name}/{pd.volume} on {target} is a diskless client and the data here is "
                    f"{local.get(pd.volume, 'missing')}, not UpToDate"
                )
            elif pd.replication is not ReplState.ESTABLISHED:
                problems.append(f"{name}/{pd.volume} replication to {target} is {pd.replication}")
        elif pd.peer_disk is not DiskState.UP_TO_DATE:
            problems.append(f"{name}/{pd.volume} disk on {target} is {pd.peer_disk}, not UpToDate")
        elif pd.replication.resyncing:
            problems.append(f"{name}/{pd.volume} is resyncing ({pd.replication}) with {target}")
    return problems


def primary_peers(status: Status, resources: Iterable[str]) -> tuple[str, ...]:
    """Peers that have one of these resources Primary: the only places the domain could also run."""
    peers: list[str] = []
    for name in resources:
        res = status.resource(name)
        for conn in res.connections if res else ():
            if conn.peer_role is Role.PRIMARY and conn.peer and conn.peer not in peers:
                peers.append(conn.peer)
    return tuple(peers)
