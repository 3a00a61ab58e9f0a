# SPDX-License-Identifier: GPL-2.0-or-later
"""One typed, immutable model of DRBD state, in DRBD 9 vocabulary, whatever the source format.

DRBD 8.x folds connection and replication into one `cs:` value; the parsers split it into the 9 pair.
"""

from __future__ import annotations

from tandem.enums import StrEnum
from tandem.record import NamedTuple


class ParseError(ValueError):
    """Input that does not parse. Names the line, so a person can see what the tool printed."""

    def __init__(self, message: str, line_no: int | None = None, line: str | None = None) -> None:
        where = f" (line {line_no}: {line!r})" if line_no is not None else ""
        super().__init__(f"{message}{where}")
        self.line_no = line_no
        self.line = line


# Why I/O is suspended, as DRBD 9 names it (Resource.suspended).
SUSPEND_REASONS = ("user", "no-data", "fencing", "quorum")
# The source says I/O is suspended but not why (/proc/drbd's `s` flag, the old --json `suspended`).
SUSPENDED_UNKNOWN = ("unknown",)


class Role(StrEnum):
    PRIMARY = "Primary"
    SECONDARY = "Secondary"
    UNKNOWN = "Unknown"
    # Only in DRBD 8.x outputs: the minor exists but has no configuration.
    UNCONFIGURED = "Unconfigured"


class DiskState(StrEnum):
    DISKLESS = "Diskless"
    ATTACHING = "Attaching"
    DETACHING = "Detaching"
    FAILED = "Failed"
    NEGOTIATING = "Negotiating"
    INCONSISTENT = "Inconsistent"
    OUTDATED = "Outdated"
    DUNKNOWN = "DUnknown"
    CONSISTENT = "Consistent"
    UP_TO_DATE = "UpToDate"


class ConnState(StrEnum):
    STANDALONE = "StandAlone"
    DISCONNECTING = "Disconnecting"
    UNCONNECTED = "Unconnected"
    TIMEOUT = "Timeout"
    BROKEN_PIPE = "BrokenPipe"
    NETWORK_FAILURE = "NetworkFailure"
    PROTOCOL_ERROR = "ProtocolError"
    TEAR_DOWN = "TearDown"
    CONNECTING = "Connecting"
    CONNECTED = "Connected"


class ReplState(StrEnum):
    OFF = "Off"
    ESTABLISHED = "Established"
    STARTING_SYNC_S = "StartingSyncS"
    STARTING_SYNC_T = "StartingSyncT"
    WF_BITMAP_S = "WFBitMapS"
    WF_BITMAP_T = "WFBitMapT"
    WF_SYNC_UUID = "WFSyncUUID"
    SYNC_SOURCE = "SyncSource"
    SYNC_TARGET = "SyncTarget"
    VERIFY_S = "VerifyS"
    VERIFY_T = "VerifyT"
    PAUSED_SYNC_S = "PausedSyncS"
    PAUSED_SYNC_T = "PausedSyncT"
    AHEAD = "Ahead"
    BEHIND = "Behind"

    @property
    def resyncing(self) -> bool:
        """A resync is running or about to (data is not yet the same on both sides)."""
        return self not in (ReplState.OFF, ReplState.ESTABLISHED, ReplState.VERIFY_S, ReplState.VERIFY_T)


class PeerDevice(NamedTuple):
    """One volume as seen towards one peer."""

    volume: int | None
    replication: ReplState
    peer_disk: DiskState
    done: float | None = None  # resync percentage, None when no resync runs
    peer_client: bool | None = None  # the peer is an intentionally diskless client


class Connection(NamedTuple):
    peer: str | None
    connection: ConnState
    peer_role: Role
    peer_devices: tuple[PeerDevice, ...] = ()
    peer_node_id: int | None = None


class Device(NamedTuple):
    volume: int | None
    minor: int | None
    disk: DiskState
    client: bool | None = None  # intentionally diskless (DRBD 9)
    quorum: bool | None = None  # None where the source does not say
    open: bool | None = None  # held open (by a VM's QEMU); None where the source does not say


class Resource(NamedTuple):
    name: str | None
    role: Role
    devices: tuple[Device, ...] = ()
    connections: tuple[Connection, ...] = ()
    # user, no-data, fencing, quorum ("unknown" where the source says only "suspended"); empty when I/O runs
    suspended: tuple[str, ...] = ()
    node_id: int | None = None

    @property
    def quorum(self) -> bool:
        """False when any volume reports lost quorum (DRBD 9); sources without quorum count as quorate."""
        return all(d.quorum is not False for d in self.devices)


class Status(NamedTuple):
    format: str  # proc | status | json | events2
    version: str | None
    resources: tuple[Resource, ...]

    def resource(self, name: str) -> Resource | None:
        return next((r for r in self.resources if r.name == name), None)


def peer_name(conn: Connection) -> str:
    if conn.peer:
        return conn.peer
    return "the peer" if conn.peer_node_id is None else f"node-id {conn.peer_node_id}"


def is_client(res: Resource) -> bool:
    """An intentional diskless client: every volume Diskless with client:yes. Diskless with client:no
    (or unknown) is a diskful node whose disk failed or was detached, never a client."""
    return bool(res.devices) and all(d.disk is DiskState.DISKLESS and d.client is True for d in res.devices)


def data_peer(res: Resource, volume: int | None) -> str | None:
    """A connected peer with UpToDate data for `volume`: DRBD reads and writes through it when there is no
    local disk (a client, or a Primary whose disk failed)."""
    for conn in res.connections:
        if conn.connection is ConnState.CONNECTED and any(
            p.volume == volume and p.peer_disk is DiskState.UP_TO_DATE for p in conn.peer_devices
        ):
            return peer_name(conn)
    return None


def to_json_dict(status: Status) -> dict[str, object]:
    """The shape `tandem drbd-status` prints; states under their DRBD names."""
    return {
        "format": status.format,
        "version": status.version,
        "resources": [
            {
                "name": r.name,
                "role": str(r.role),
                "devices": [{"volume": d.volume, "minor": d.minor, "disk": str(d.disk)} for d in r.devices],
                "connections": [
                    {
                        "peer": c.peer,
                        "connection": str(c.connection),
                        "peer_role": str(c.peer_role),
                        "peer_devices": [
                            {
                                "volume": p.volume,
                                "replication": str(p.replication),
                                "peer_disk": str(p.peer_disk),
                                "done": p.done,
                            }
                            for p in c.peer_devices
                        ],
                    }
                    for c in r.connections
                ],
            }
            for r in status.resources
        ],
    }
