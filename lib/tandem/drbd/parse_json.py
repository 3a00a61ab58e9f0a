# SPDX-License-Identifier: GPL-2.0-or-later
"""`drbdsetup status --json` (DRBD 9), old and new schemas.

drbd-utils prints this JSON by hand and its keys came and went by version (`suspended-*`, `open`, `tls`,
`paths` are recent), so every key is optional. A missing identity (name, volume, minor, peer) is None;
a missing role or disk state is DRBD's own Unknown/DUnknown. A missing connection state, and a missing
replication state of a connected peer, have no honest default and are errors.
"""

from __future__ import annotations

from _json import make_scanner

from tandem.drbd.model import (
    SUSPEND_REASONS,
    SUSPENDED_UNKNOWN,
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    Obj = Mapping[str, Any]


class _At:
    """Where in the document a value sits, for error messages (JSON has no useful line numbers here)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __truediv__(self, part: str) -> _At:
        return _At(f"{self.path}{part}")

    def error(self, message: str) -> ParseError:
        return ParseError(f"--json {self.path}: {message}")


class _Decoding:
    """What the C scanner of the json package reads from its decoder: the defaults of json.loads."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity


_SCAN = make_scanner(_Decoding())  # type: ignore[arg-type]  # typeshed wants a scanner; it reads these
_INVALID = object()


def _scan(text: str) -> object:
    """json.loads through the json package's C scanner alone, or _INVALID: the package imports `re` and
    more (milliseconds of a monitor), and a valid document needs none of it. The scanner reports errors
    only through the package, so an invalid one is read again by json.loads for the message."""
    body = text.strip(" \t\n\r")
    try:
        document, end = _SCAN(body, 0)
    except (StopIteration, ValueError, TypeError, SystemError, RecursionError):
        return _INVALID
    return document if end == len(body) else _INVALID


def _dumps(value: object) -> str:
    import json  # error messages only

    return json.dumps(value)


def _obj(value: object, at: _At) -> Obj:
    if not isinstance(value, dict):
        raise at.error(f"expected an object, got {type(value).__name__}")
    return value


def _list(obj: Obj, key: str, at: _At) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise (at / f".{key}").error("expected an array")
    return value


def _opt(obj: Obj, key: str, kind: type, at: _At) -> Any:
    """The value under `key` if present and of the right JSON type (bool is not an int here)."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
        raise (at / f".{key}").error(f"expected {kind.__name__}, got {_dumps(value)}")
    return value


def _node_id(obj: Obj, key: str, at: _At) -> int | None:
    value: int | None = _opt(obj, key, int, at)
    return None if value is None or value < 0 else value  # drbdsetup prints -1 when it has none


def _state(obj: Obj, key: str, cls: type[Any], what: str, at: _At, default: Any = None) -> Any:
    value: str | None = _opt(obj, key, str, at)
    if value is None:
        if default is None:
            raise at.error(f"no {key!r}")
        return default
    try:
        return cls(value)
    except ValueError:
        raise (at / f".{key}").error(f"unknown {what} {value!r}") from None


def _percent(obj: Obj, key: str, at: _At) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise (at / f".{key}").error(f"expected a percentage, got {_dumps(value)}")
    return float(value)


def _suspended(obj: Obj, at: _At) -> tuple[str, ...]:
    reasons = tuple(r for r in SUSPEND_REASONS if _opt(obj, f"suspended-{r}", bool, at))
    if not reasons and _opt(obj, "suspended", bool, at):
        return SUSPENDED_UNKNOWN  # the old schema says only that I/O is suspended
    return reasons


def _device(value: object, at: _At) -> Device:
    obj = _obj(value, at)
    return Device(
        volume=_opt(obj, "volume", int, at),
        minor=_opt(obj, "minor", int, at),
        disk=_state(obj, "disk-state", DiskState, "disk state", at, DiskState.DUNKNOWN),
        client=_opt(obj, "client", bool, at),
        quorum=_opt(obj, "quorum", bool, at),
        open=_opt(obj, "open", bool, at),
    )


def _peer_device(value: object, connection: ConnState, at: _At) -> PeerDevice:
    obj = _obj(value, at)
    # Not connected means replication Off; connected, only the source can say.
    off = None if connection is ConnState.CONNECTED else ReplState.OFF
    return PeerDevice(
        volume=_opt(obj, "volume", int, at),
        replication=_state(obj, "replication-state", ReplState, "replication state", at, off),
        peer_disk=_state(obj, "peer-disk-state", DiskState, "peer disk state", at, DiskState.DUNKNOWN),
        done=_percent(obj, "percent-resync-done", at),
        peer_client=_opt(obj, "peer-client", bool, at),
    )


def _connection(value: object, at: _At) -> Connection:
    obj = _obj(value, at)
    connection: ConnState = _state(obj, "connection-state", ConnState, "connection state", at)
    peer_devices = obj.get("peer_devices", obj.get("peer-devices", []))
    if not isinstance(peer_devices, list):
        raise (at / ".peer_devices").error("expected an array")
    return Connection(
        peer=_opt(obj, "name", str, at),
        connection=connection,
        peer_role=_state(obj, "peer-role", Role, "role", at, Role.UNKNOWN),
        peer_devices=tuple(
            _peer_device(p, connection, at / f".peer_devices[{i}]") for i, p in enumerate(peer_devices)
        ),
        peer_node_id=_node_id(obj, "peer-node-id", at),
    )


def _resource(value: object, at: _At) -> Resource:
    obj = _obj(value, at)
    name: str | None = _opt(obj, "name", str, at)
    if name is not None:
        at = _At(f"resource {name!r}")
    return Resource(
        name=name,
        role=_state(obj, "role", Role, "role", at, Role.UNKNOWN),
        devices=tuple(_device(d, at / f".devices[{i}]") for i, d in enumerate(_list(obj, "devices", at))),
        connections=tuple(
            _connection(c, at / f".connections[{i}]") for i, c in enumerate(_list(obj, "connections", at))
        ),
        suspended=_suspended(obj, at),
        node_id=_node_id(obj, "node-id", at),
    )


def parse_status_json(text: str) -> Status:
    document = _scan(text)
    if document is _INVALID:
        document = _loads(text)
    if not isinstance(document, list):
        raise ParseError("drbdsetup status --json prints an array of resources")
    return Status(
        format="json",
        version=None,
        resources=tuple(_resource(r, _At(f"[{i}]")) for i, r in enumerate(document)),
    )


def _loads(text: str) -> object:
    """json.loads, its error as a ParseError."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines() or [""]
        line = lines[min(exc.lineno, len(lines)) - 1]
        raise ParseError(f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno, line) from None
    except RecursionError:
        raise ParseError("not valid JSON: nested too deeply") from None
