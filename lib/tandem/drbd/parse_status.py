# SPDX-License-Identifier: GPL-2.0-or-later
"""`drbdsetup status` / `drbdadm status` text (DRBD 9, and drbd-utils >= 8.9 against 8.4 kernels).

Layout (drbd-utils `user/v9/drbdsetup.c`): a resource line at column 0, device and connection lines
at 2, peer-device lines at 4 under their connection. Through a pipe, drbdsetup wraps lines at 80
columns; a continuation is indented deeper (4 under a resource, 6 under a device or connection, 8
under a peer device), so it is joined to the line it continues before anything is read.

What the terse form leaves out, by drbdsetup's rules:
- `volume:` when the resource has exactly one device and it is volume 0;
- `connection:` when Connected (`role:` is then always shown);
- `replication:` when Established or Off, and `peer-disk:` when the peer device is Off and DUnknown;
- peer-device lines of a connection that is not Connected (they are Off/DUnknown, filled in here).
Old utils printed `disk:` for `peer-disk:`; 8.4 and early 9 names (WFConnection, WFReportParams and
replication `Connected`) are read as DRBD 9 names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tandem.drbd.model import (
    Connection,
    ConnState,
    Device,
    DiskState,
    PeerDevice,
    ReplState,
    Resource,
    Role,
    Status,
)
from tandem.drbd.parse_common import (
    CS_CONNECTION_8X,
    Line,
    integer,
    key_values,
    lines,
    percent,
    state,
    suspended,
    yes_no,
)

# 8.4's `drbdadm status` prints a connection-only `cs:` in the replication column in verbose mode.
_REPL_ALIASES = {name: ReplState.OFF for name in CS_CONNECTION_8X} | {"Connected": ReplState.ESTABLISHED}


@dataclass
class _Logical:
    """A line with its continuations joined."""

    line: Line
    tokens: list[str]
    kind: str  # resource | device | connection | peer-device


@dataclass
class _Conn:
    line: _Logical
    peer_devices: list[PeerDevice] = field(default_factory=list)


@dataclass
class _Res:
    line: _Logical
    devices: list[Device] = field(default_factory=list)
    connections: list[_Conn] = field(default_factory=list)


def _logical_lines(text: str) -> list[_Logical]:
    out: list[_Logical] = []
    for line in lines(text, "drbdsetup status output"):
        stripped = line.text.lstrip(" ")
        if not stripped.strip() or (stripped.startswith("#") and line.text == stripped):
            continue  # blank lines between resources; "# No currently configured DRBD found."
        indent = len(line.text) - len(stripped)
        if stripped[0].isspace():
            raise line.error("indented with something other than spaces")
        last = out[-1] if out else None
        continues_resource = indent == 4 and last is not None and last.kind == "resource"
        if indent > 4 or continues_resource:
            if last is None:
                raise line.error("continuation line without a line before it")
            last.tokens.extend(stripped.split())
            last.line = Line(last.line.no, f"{last.line.text} {stripped}")
            continue
        kind = {0: "resource", 2: "connection", 4: "peer-device"}.get(indent)
        if kind is None:
            raise line.error(f"unexpected indentation of {indent} columns")
        if kind == "connection" and stripped.startswith(("volume:", "disk:")):
            kind = "device"
        out.append(_Logical(line, stripped.split(), kind))
    return out


def _resource(res: _Res) -> Resource:
    at = res.line.line
    name, *rest = res.line.tokens
    if ":" in name:
        raise at.error("a resource line starts with the resource name")
    keys = key_values(rest, at)
    if "role" not in keys:
        raise at.error("resource line without role:")
    devices = tuple(res.devices)
    node_id = keys.get("node-id")
    return Resource(
        name=name,
        role=state(Role, keys["role"], "role", at),
        devices=devices,
        connections=tuple(_connection(c, devices) for c in res.connections),
        suspended=suspended(keys.get("suspended", "no"), at),
        node_id=None if node_id is None else integer(node_id, "node-id", at),
    )


def _device(logical: _Logical) -> Device:
    at = logical.line
    keys = key_values(logical.tokens, at)
    if "disk" not in keys:
        raise at.error("device line without disk:")
    minor = keys.get("minor")
    return Device(
        volume=integer(keys.get("volume", "0"), "volume", at),
        minor=None if minor is None else integer(minor, "minor", at),
        disk=state(DiskState, keys["disk"], "disk state", at),
        client=yes_no(keys["client"], "client", at) if "client" in keys else None,
        quorum=yes_no(keys["quorum"], "quorum", at) if "quorum" in keys else None,
        open=yes_no(keys["open"], "open", at) if "open" in keys else None,
    )


def _connection(conn: _Conn, devices: tuple[Device, ...]) -> Connection:
    at = conn.line.line
    first, *rest = conn.line.tokens
    name: str | None = first
    if ":" in first:  # a connection without a name starts with node-id:
        name, rest = None, conn.line.tokens
    keys = key_values(rest, at)
    cstate = ConnState.CONNECTED
    if "connection" in keys:
        cstate = state(ConnState, keys["connection"], "connection state", at, CS_CONNECTION_8X)
    if "role" in keys:
        peer_role = state(Role, keys["role"], "role", at)
    elif cstate is ConnState.CONNECTED:
        raise at.error("a connected peer is shown with its role:")
    else:
        peer_role = Role.UNKNOWN
    peer_devices = tuple(conn.peer_devices)
    if not peer_devices and cstate is not ConnState.CONNECTED:
        # drbdsetup prints no peer devices for a peer that is not connected; they are Off/DUnknown.
        peer_devices = tuple(PeerDevice(d.volume, ReplState.OFF, DiskState.DUNKNOWN) for d in devices)
    node_id = keys.get("node-id")
    return Connection(
        peer=name,
        connection=cstate,
        peer_role=peer_role,
        peer_devices=peer_devices,
        peer_node_id=None if node_id is None else integer(node_id, "node-id", at),
    )


def _peer_device(logical: _Logical) -> PeerDevice:
    at = logical.line
    keys = key_values(logical.tokens, at)
    peer_disk = keys.get("peer-disk", keys.get("disk"))  # old utils: disk:
    if "replication" in keys:
        if peer_disk is None:
            raise at.error("peer device with replication: but no peer-disk:")
        replication = state(ReplState, keys["replication"], "replication state", at, _REPL_ALIASES)
    else:
        # replication: shows only above Established; peer-disk: is left out only when Off and DUnknown.
        replication = ReplState.OFF if peer_disk is None else ReplState.ESTABLISHED
    return PeerDevice(
        volume=integer(keys.get("volume", "0"), "volume", at),
        replication=replication,
        peer_disk=DiskState.DUNKNOWN if peer_disk is None else state(DiskState, peer_disk, "disk state", at),
        done=percent(keys["done"], "done", at) if "done" in keys else None,
        peer_client=yes_no(keys["peer-client"], "peer-client", at) if "peer-client" in keys else None,
    )


def parse_status_text(text: str) -> Status:
    blocks: list[_Res] = []
    previous = ""
    for logical in _logical_lines(text):
        kind, after = logical.kind, previous
        previous = kind
        if kind == "resource":
            blocks.append(_Res(logical))
            continue
        if not blocks:
            raise logical.line.error("a device or connection line before any resource line")
        res = blocks[-1]
        if kind == "device":
            res.devices.append(_device(logical))
        elif kind == "connection":
            res.connections.append(_Conn(logical))
        elif after in ("connection", "peer-device"):
            res.connections[-1].peer_devices.append(_peer_device(logical))
        else:
            raise logical.line.error("a peer-device line outside a connection")
    return Status(format="status", version=None, resources=tuple(_resource(r) for r in blocks))
