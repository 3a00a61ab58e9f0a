"""Which DRBD resources hold a domain's disks, and whether they allow a start or a migration. Pure.

How the target is checked (the agent runs migrate_to on the *source*): DRBD replicates its state changes over
the connection, so the source's own `drbdsetup status --json` carries the target's view: the connection named
after the target node has `peer-role` and, per volume, `peer-disk` and `replication`. That view is what DRBD
itself uses to allow writes, it needs no second channel to the target (ssh, a remote drbdsetup), and it is
current while the connection is Connected; when it is not, the peer state is Unknown/DUnknown and the check
refuses, which is the safe answer because a migration over a broken link would run the domain on stale data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from tandem.domain.config import Disk
from tandem.drbd.model import Connection, ConnState, DiskState, Resource, Role, Status
from tandem.record import NamedTuple

RESOURCE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
_MINOR = re.compile(r"/dev/drbd(\d+)")
_BY_RES = re.compile(r"/dev/drbd/by-res/([^/]+)(?:/(\d+))?")


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
    """What stops a live migration to `target`: both sides must be Primary with UpToDate data, in sync."""
    problems: list[str] = []
    for name in resources:
        res = status.resource(name)
        problems += _local(name, res)
        if res is not None:
            problems += _peer(name, res, target)
    return problems


def local_problems(status: Status, resources: Iterable[str]) -> list[str]:
    """What stops a start here: the disks must be writable (Primary) with UpToDate data."""
    return [p for name in resources for p in _local(name, status.resource(name))]


def _local(name: str, res: Resource | None) -> list[str]:
    if res is None:
        return [f"DRBD resource {name} is not configured here"]
    problems = []
    if res.role is not Role.PRIMARY:
        problems.append(f"{name} is {res.role} here, not Primary (is the DRBD clone promoted here?)")
    bad = [d for d in res.devices if d.disk is not DiskState.UP_TO_DATE]
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
    for pd in conn.peer_devices:
        if pd.peer_disk is not DiskState.UP_TO_DATE:
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
