# SPDX-License-Identifier: GPL-2.0-or-later
"""`drbdsetup events2` (DRBD 9, and 8.4 kernels with drbd-utils >= 8.9.3): the state the events build.

`--now` prints the initial dump (`exists` lines) up to `exists -`; drbdsetup itself interleaves
`change resource ... may_promote:` lines. Without `--now` the stream goes on with create/change/destroy,
each `change` carrying only the keys that changed; they are applied in order up to the end of the input.
`--statistics`, `--timestamps`, `--full` and `--diff` (`key:old->new`) are understood. Output without
`exists -` is an incomplete dump and an error, as are lost events (`- skipped N`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

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

if TYPE_CHECKING:
    from tandem.drbd.parse_common import E

T = TypeVar("T")

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?")
_WHAT = {
    "disk": "disk state",
    "peer-disk": "peer disk state",
    "connection": "connection state",
    "replication": "replication state",
}
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

    def state(self, key: str, cls: type[E]) -> E:
        return state(cls, self.required(key), _WHAT.get(key, key), self.at)

    def volume(self) -> str:
        """Volumes key devices as text, like every other object (checked to be a number)."""
        return str(integer(self.required("volume"), "volume", self.at))

    def connection_key(self) -> str:
        key = self.keys.get("peer-node-id", self.keys.get("conn-name"))
        if key is None:
            raise self.at.error(f"{self.obj} without peer-node-id: or conn-name:")
        return key


def _known(ev: _Event, objects: dict[str, T], key: str, what: str) -> T:
    if key not in objects:
        raise ev.at.error(f"{ev.action} for {what} {key!r} that no event created")
    return objects[key]


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


@dataclass
class _PeerDevice:
    replication: ReplState
    peer_disk: DiskState
    peer_client: bool | None = None
    done: float | None = None

    @classmethod
    def new(cls, ev: _Event) -> _PeerDevice:
        return cls(ev.state("replication", ReplState), ev.state("peer-disk", DiskState))

    def update(self, ev: _Event) -> None:
        if "replication" in ev.keys:
            self.replication = ev.state("replication", ReplState)
            if self.replication not in _PROGRESS:
                self.done = None
        if "peer-disk" in ev.keys:
            self.peer_disk = ev.state("peer-disk", DiskState)
        if "peer-client" in ev.keys:
            self.peer_client = yes_no(ev.keys["peer-client"], "peer-client", ev.at)
        if "done" in ev.keys:
            self.done = percent(ev.keys["done"], "done", ev.at)


@dataclass
class _Connection:
    name: str | None
    node_id: int | None
    connection: ConnState
    role: Role
    peer_devices: dict[str, _PeerDevice] = field(default_factory=dict)

    @classmethod
    def new(cls, ev: _Event) -> _Connection:
        node_id = ev.keys.get("peer-node-id")
        return cls(
            name=ev.keys.get("conn-name"),
            node_id=None if node_id is None else integer(node_id, "peer-node-id", ev.at),
            connection=ev.state("connection", ConnState),
            role=ev.state("role", Role),
        )

    def update(self, ev: _Event) -> None:
        if "connection" in ev.keys:
            self.connection = ev.state("connection", ConnState)
        if "role" in ev.keys:
            self.role = ev.state("role", Role)


@dataclass
class _Device:
    minor: int | None
    disk: DiskState
    client: bool | None = None
    quorum: bool | None = None
    open: bool | None = None

    @classmethod
    def new(cls, ev: _Event) -> _Device:
        return cls(minor=None, disk=ev.state("disk", DiskState))

    def update(self, ev: _Event) -> None:
        if "disk" in ev.keys:
            self.disk = ev.state("disk", DiskState)
        if "minor" in ev.keys:
            self.minor = integer(ev.keys["minor"], "minor", ev.at)
        for flag in ("client", "quorum", "open"):
            if flag in ev.keys:
                setattr(self, flag, yes_no(ev.keys[flag], flag, ev.at))


@dataclass
class _Resource:
    role: Role
    suspended: tuple[str, ...] = ()
    devices: dict[str, _Device] = field(default_factory=dict)
    connections: dict[str, _Connection] = field(default_factory=dict)

    @classmethod
    def new(cls, ev: _Event) -> _Resource:
        return cls(role=ev.state("role", Role))

    def update(self, ev: _Event) -> None:
        if "role" in ev.keys:
            self.role = ev.state("role", Role)
        if "suspended" in ev.keys:
            self.suspended = suspended(ev.keys["suspended"], ev.at)


class _State:
    """The objects the events built so far, keyed as drbdsetup keys them."""

    def __init__(self) -> None:
        self.resources: dict[str, _Resource] = {}

    def apply(self, ev: _Event) -> None:
        if ev.obj in ("path", "helper"):
            return  # paths and helper calls do not change the modelled state
        objects, key, new = self._place(ev)
        if ev.creates:
            objects[key] = new(ev)
        found = _known(ev, objects, key, ev.obj)
        if ev.action == "destroy":
            del objects[key]
        elif ev.action == "rename":
            objects[ev.required("new_name")] = objects.pop(key)
        else:
            found.update(ev)

    def _place(self, ev: _Event) -> tuple[dict[str, Any], str, Callable[[_Event], Any]]:
        """Where the event's object lives (its parents must exist), its key there, and how to create it."""
        name = ev.keys["name"]
        if ev.obj == "resource":
            return self.resources, name, _Resource.new
        res = _known(ev, self.resources, name, "resource")
        if ev.obj == "device":
            return res.devices, ev.volume(), _Device.new
        if ev.obj == "connection":
            return res.connections, ev.connection_key(), _Connection.new
        conn = _known(ev, res.connections, ev.connection_key(), "connection")
        return conn.peer_devices, ev.volume(), _PeerDevice.new

    def status(self) -> Status:
        return Status(
            format="events2",
            version=None,
            resources=tuple(
                Resource(
                    name=name,
                    role=res.role,
                    devices=tuple(
                        Device(int(v), d.minor, d.disk, d.client, d.quorum, d.open)
                        for v, d in res.devices.items()
                    ),
                    connections=tuple(
                        Connection(
                            peer=c.name,
                            connection=c.connection,
                            peer_role=c.role,
                            peer_devices=tuple(
                                PeerDevice(
                                    volume=int(v),
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
