# SPDX-License-Identifier: GPL-2.0-or-later
"""Hypothesis strategies over every combination of DRBD states (shared by the policy and health tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from tandem.drbd.model import Connection, ConnState, Device, DiskState, PeerDevice, ReplState, Resource, Role
from tandem.record import replace

SUSPEND = ("user", "no-data", "fencing", "quorum", "unknown")


@st.composite
def resources(
    draw: st.DrawFn, role: Role | None = None, volumes: int | None = None, client: bool = False
) -> Resource:
    """Any state; `client`: an intentional diskless client (every volume Diskless, client:yes)."""
    nvol = volumes if volumes is not None else draw(st.integers(1, 2))
    devices = tuple(
        Device(
            volume=v,
            minor=v,
            disk=DiskState.DISKLESS if client else draw(st.sampled_from(list(DiskState))),
            client=True if client else draw(st.sampled_from([None, False, True])),
            quorum=draw(st.sampled_from([None, True, False])),
        )
        for v in range(nvol)
    )
    connections = tuple(
        Connection(
            peer=f"peer{i}",
            connection=draw(st.sampled_from(list(ConnState))),
            peer_role=draw(st.sampled_from(list(Role))),
            peer_devices=tuple(
                PeerDevice(
                    volume=v,
                    replication=draw(st.sampled_from(list(ReplState))),
                    peer_disk=draw(st.sampled_from(list(DiskState))),
                    done=draw(st.none() | st.floats(0, 100)),
                    peer_client=draw(st.sampled_from([None, False, True])),
                )
                for v in range(draw(st.integers(0, nvol)))
            ),
            peer_node_id=i + 1,
        )
        for i in range(draw(st.integers(0, 3)))
    )
    return Resource(
        name="r0",
        role=role if role is not None else draw(st.sampled_from(list(Role))),
        devices=devices,
        connections=connections,
        suspended=tuple(draw(st.lists(st.sampled_from(SUSPEND), unique=True, max_size=2))),
        node_id=0,
    )


def healthy(role: Role = Role.SECONDARY, peer_role: Role = Role.SECONDARY, volumes: int = 1) -> Resource:
    """A connected two-node resource with UpToDate data everywhere."""
    return Resource(
        name="r0",
        role=role,
        devices=tuple(Device(volume=v, minor=v, disk=DiskState.UP_TO_DATE) for v in range(volumes)),
        connections=(
            Connection(
                peer="bob",
                connection=ConnState.CONNECTED,
                peer_role=peer_role,
                peer_devices=tuple(
                    PeerDevice(volume=v, replication=ReplState.ESTABLISHED, peer_disk=DiskState.UP_TO_DATE)
                    for v in range(volumes)
                ),
                peer_node_id=1,
            ),
        ),
        node_id=0,
    )


def client_of(res: Resource) -> Resource:
    """The same resource on an intentional diskless client."""
    return replace(res, devices=tuple(replace(d, disk=DiskState.DISKLESS, client=True) for d in res.devices))
