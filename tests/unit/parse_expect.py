# SPDX-License-Identifier: GPL-2.0-or-later
"""Short builders for the expected `tandem drbd-status` JSON, so each test spells out a state by hand."""

from __future__ import annotations

from typing import Any

J = dict[str, Any]


def pd(volume: int | None, replication: str, peer_disk: str, done: float | None = None) -> J:
    return {"volume": volume, "replication": replication, "peer_disk": peer_disk, "done": done}


def conn(peer: str | None, connection: str, peer_role: str, *peer_devices: J) -> J:
    return {
        "peer": peer,
        "connection": connection,
        "peer_role": peer_role,
        "peer_devices": list(peer_devices),
    }


def dev(volume: int | None, minor: int | None, disk: str) -> J:
    return {"volume": volume, "minor": minor, "disk": disk}


def res(name: str | None, role: str, devices: list[J], *connections: J) -> J:
    return {"name": name, "role": role, "devices": devices, "connections": list(connections)}


def status(fmt: str, *resources: J, version: str | None = None) -> J:
    return {"format": fmt, "version": version, "resources": list(resources)}


def minor8(
    minor: int,
    cs: str,
    role: str,
    peer_role: str,
    disk: str,
    peer_disk: str,
    repl: str,
    done: float | None = None,
) -> J:
    """One DRBD 8.x minor of /proc/drbd: an unnamed resource with one unnamed connection."""
    return res(
        None, role, [dev(None, minor, disk)], conn(None, cs, peer_role, pd(None, repl, peer_disk, done))
    )
