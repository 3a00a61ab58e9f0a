"""`drbdsetup events2` (DRBD 9, and 8.4 kernels with drbd-utils >= 8.9.3): the state the events build.

`--now` prints the initial dump (`exists` lines) up to `exists -`; drbdsetup itself interleaves
`change resource ... may_promote:` lines. Without `--now` the stream goes on with create/change/destroy,
each `change` carrying only the keys that changed; they are applied in order up to the end of the input.
`--statistics`, `--timestamps`, `--full` and `--diff` (`key:old->new`) are understood. Output without
`exists -` is an incomplete dump and an error, as are lost events (`- skipped N`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeVar

from tandem.drbd.model import (
    Connection,
    ConnState,
    Device,
    DiskState,
    ParseError,
    PeerDevice,
    ReplState,
    Resource,
    Role,
    Status,
)
from tandem.drbd.parse_common import Line, integer, key_values, lines, percent, state, suspended, yes_no

K = TypeVar("K")
T = TypeVar("T")

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?")
_ACTIONS = ("exists", "create", "change", "destroy", "call", "response", "rename")
_OBJECTS = ("resource", "device", "connection", "peer-device", "path", "helper")
# Replication states for which drbdsetup prints `done:`; leaving them ends the progress.
_PROGRESS = (
    ReplState.SYNC_SOURCE,
    ReplState.SYNC_TARGET,
    ReplState.PAUSED_SYNC_S,
    ReplState.PAUSED_SYNC_T,
    ReplState.VERIFY_S,
    ReplState.VERIFY_T,
)


@dataclass
class _PeerDevice:
    replication: ReplState
    peer_disk: DiskState
    peer_client: bool | None = None
    done: float | None = None


@dataclass
class _Connection:
    name: str | None
    node_id: int | None
    connection: ConnState
    role: Role
    peer_devices: dict[int, _PeerDevice] = field(default_factory=dict)


@dataclass
class _Device:
    minor: int | None
    disk: DiskState
    client: bool | None = None
    quorum: bool | None = None


@dataclass
class _Resource:
    role: Role
    suspended: tuple[str, ...] = ()
    devices: dict[int, _Device] = field(default_factory=dict)
    connections: dict[str, _Connection] = field(default_factory=dict)


class _Event:
    """One event line: action, object and its keys (with --diff, the new value)."""

    def __init__(self, at: Line, action: str, obj: str, keys: dict[str, str]) -> None:
        self.at = at
        self.action = action
        self.obj = obj
        self.keys = keys
        self.creates = action in ("exists", "create")

    def required(self, key: str) -> str:
        if key not in self.keys:
            raise self.at.error(f"{self.action} {self.obj} without {key}:")
        return self.keys[key]

    def optional(self, key: str) -> str | None:
        """A key that `change` lines may leave out; an `exists`/`create` line must carry it."""
        return self.required(key) if self.creates else self.keys.get(key)

    def volume(self) -> int:
        return integer(self.required("volume"), "volume", self.at)

    def connection_key(self) -> str:
        key = self.keys.get("peer-node-id", self.keys.get("conn-name"))
        if key is None:
            raise self.at.error(f"{self.obj} without peer-node-id: or conn-name:")
        return key


def _logical_lines(text: str) -> list[Line]:
    """Join lines that documents wrapped (a real event is one line; a continuation starts indented)."""
    joined: list[Line] = []
    for line in lines(text, "events2 output"):
        if not line.text.strip():
            continue
        if line.text[0] in " \t":
            if not joined:
                raise line.error("continuation line without an event before it")
            last = joined[-1]
            joined[-1] = Line(last.no, f"{last.text} {line.text.strip()}")
        else:
            joined.append(line)
    return joined


def _event(line: Line) -> _Event | None:
    """The event on a line, or None for the end of the initial dump (`exists -`)."""
    tokens = line.text.split()
    if _TIMESTAMP.fullmatch(tokens[0]):
        tokens = tokens[1:]
    if tokens[:2] == ["-", "skipped"]:
        raise line.error("events2 lost events; the state cannot be rebuilt")
    if len(tokens) < 2 or tokens[0] not in _ACTIONS:
        raise line.error("not an events2 line")
    action, obj = tokens[0], tokens[1]
    if obj == "-":
        if action != "exists" or len(tokens) > 2:
            raise line.error("only `exists -` ends the initial dump")
        return None
    if obj not in _OBJECTS:
        raise line.error(f"unknown events2 object {obj!r}")
    if (obj == "helper") != (action in ("call", "response")) or (action == "rename" and obj != "resource"):
        raise line.error(f"{action} {obj} is not an events2 event")
    keys = {k: v.rpartition("->")[2] for k, v in key_values(tokens[2:], line).items()}
    event = _Event(line, action, obj, keys)
    event.required("name")
    return event


class _State:
    """The objects the events built so far, keyed as drbdsetup keys them."""

    def __init__(self) -> None:
        self.resources: dict[str, _Resource] = {}

    def apply(self, ev: _Event) -> None:
        if ev.obj in ("path", "helper"):
            return  # paths and helper calls do not change the modelled state
        name = ev.keys["name"]
        if ev.obj == "resource":
            self._resource(ev, name)
            return
        res = self._known(ev, self.resources, name, "resource")
        if ev.obj == "device":
            self._device(ev, res)
        elif ev.obj == "connection":
            self._connection(ev, res)
        else:
            conn = self._known(ev, res.connections, ev.connection_key(), "connection")
            self._peer_device(ev, conn)

    @staticmethod
    def _known(ev: _Event, objects: dict[K, T], key: K, what: str) -> T:
        if key not in objects:
            raise ev.at.error(f"{ev.action} for {what} {key!r} that no event created")
        return objects[key]

    def _resource(self, ev: _Event, name: str) -> None:
        at = ev.at
        if ev.action == "destroy":
            self._known(ev, self.resources, name, "resource")
            del self.resources[name]
            return
        if ev.action == "rename":
            self.resources[ev.required("new_name")] = self._known(ev, self.resources, name, "resource")
            del self.resources[name]
            return
        role = ev.optional("role")
        if ev.creates:
            self.resources[name] = _Resource(role=state(Role, role or "", "role", at))
        res = self._known(ev, self.resources, name, "resource")
        if role is not None:
            res.role = state(Role, role, "role", at)
        if "suspended" in ev.keys:
            res.suspended = suspended(ev.keys["suspended"], at)

    def _device(self, ev: _Event, res: _Resource) -> None:
        at, volume = ev.at, ev.volume()
        if ev.action == "destroy":
            self._known(ev, res.devices, volume, "device")
            del res.devices[volume]
            return
        disk = ev.optional("disk")
        if ev.creates:
            res.devices[volume] = _Device(minor=None, disk=state(DiskState, disk or "", "disk state", at))
        dev = self._known(ev, res.devices, volume, "device")
        if disk is not None:
            dev.disk = state(DiskState, disk, "disk state", at)
        if "minor" in ev.keys:
            dev.minor = integer(ev.keys["minor"], "minor", at)
        if "client" in ev.keys:
            dev.client = yes_no(ev.keys["client"], "client", at)
        if "quorum" in ev.keys:
            dev.quorum = yes_no(ev.keys["quorum"], "quorum", at)

    def _connection(self, ev: _Event, res: _Resource) -> None:
        at, key = ev.at, ev.connection_key()
        if ev.action == "destroy":
            self._known(ev, res.connections, key, "connection")
            del res.connections[key]
            return
        cstate, role = ev.optional("connection"), ev.optional("role")
        if ev.creates:
            node_id = ev.keys.get("peer-node-id")
            res.connections[key] = _Connection(
                name=ev.keys.get("conn-name"),
                node_id=None if node_id is None else integer(node_id, "peer-node-id", at),
                connection=state(ConnState, cstate or "", "connection state", at),
                role=state(Role, role or "", "role", at),
            )
        conn = self._known(ev, res.connections, key, "connection")
        if cstate is not None:
            conn.connection = state(ConnState, cstate, "connection state", at)
        if role is not None:
            conn.role = state(Role, role, "role", at)

    def _peer_device(self, ev: _Event, conn: _Connection) -> None:
        at, volume = ev.at, ev.volume()
        if ev.action == "destroy":
            self._known(ev, conn.peer_devices, volume, "peer device")
            del conn.peer_devices[volume]
            return
        repl, pdisk = ev.optional("replication"), ev.optional("peer-disk")
        if ev.creates:
            conn.peer_devices[volume] = _PeerDevice(
                replication=state(ReplState, repl or "", "replication state", at),
                peer_disk=state(DiskState, pdisk or "", "peer disk state", at),
            )
        pd = self._known(ev, conn.peer_devices, volume, "peer device")
        if repl is not None:
            pd.replication = state(ReplState, repl, "replication state", at)
            if pd.replication not in _PROGRESS:
                pd.done = None
        if pdisk is not None:
            pd.peer_disk = state(DiskState, pdisk, "peer disk state", at)
        if "peer-client" in ev.keys:
            pd.peer_client = yes_no(ev.keys["peer-client"], "peer-client", at)
        if "done" in ev.keys:
            pd.done = percent(ev.keys["done"], "done", at)

    def status(self) -> Status:
        return Status(
            format="events2",
            version=None,
            resources=tuple(
                Resource(
                    name=name,
                    role=res.role,
                    devices=tuple(
                        Device(volume=v, minor=d.minor, disk=d.disk, client=d.client, quorum=d.quorum)
                        for v, d in res.devices.items()
                    ),
                    connections=tuple(
                        Connection(
                            peer=c.name,
                            connection=c.connection,
                            peer_role=c.role,
                            peer_devices=tuple(
                                PeerDevice(
                                    volume=v,
                                    replication=p.replication,
                                    peer_disk=p.peer_disk,
                                    done=p.done,
                                    peer_client=p.peer_client,
                                )
                                for v, p in c.peer_devices.items()
                            ),
                            peer_node_id=c.node_id,
                        )
                        for c in res.connections.values()
                    ),
                    suspended=res.suspended,
                )
                for name, res in self.resources.items()
            ),
        )


def parse_events2(text: str) -> Status:
    built = _State()
    dump_ended = False
    logical = _logical_lines(text)
    for line in logical:
        event = _event(line)
        if event is None:
            dump_ended = True
        else:
            built.apply(event)
    if not dump_ended:
        last = logical[-1] if logical else Line(1, "")
        raise ParseError(
            "events2 output without `exists -`: the initial dump is incomplete", last.no, last.text
        )
    return built.status()
