# SPDX-License-Identifier: GPL-2.0-or-later
"""model → rendered text in each real format → parse → the same model (what that format can carry).

Renderers (tandem.drbd.render) and parsers (tandem.drbd.parse) are written from the same drbd-utils and
kernel sources; this ties them together over generated states, so the emulator's outputs always parse.
Each format carries a different subset: /proc/drbd one peer and no node ids, text status hides the
connection state when Connected, etc. `project()` keeps what the format carries.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lab.drbd_emu.render import render_events2, render_proc, render_status_json, render_status_text

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
from tandem.drbd.parse import parse

NAMES = st.sampled_from(["r0", "web", "vm-disk_1"])
PEERS = ["bob", "charlie", "dave"]
DISKS = st.sampled_from([d for d in DiskState if d is not DiskState.DUNKNOWN])
ROLES = st.sampled_from([Role.PRIMARY, Role.SECONDARY])


@st.composite
def resources(draw: st.DrawFn, name: str, minor0: int, max_peers: int) -> Resource:
    nvol = draw(st.integers(1, 2))
    devices = tuple(Device(v, minor0 + v, draw(DISKS), client=False, quorum=True) for v in range(nvol))
    conns = []
    for i, peer in enumerate(PEERS[: draw(st.integers(0, max_peers))]):
        connected = draw(st.booleans())
        pds = []
        pdisk: DiskState
        for v in range(nvol):
            if connected:
                repl = draw(
                    st.sampled_from([ReplState.ESTABLISHED, ReplState.SYNC_SOURCE, ReplState.SYNC_TARGET])
                )
                pdisk = draw(DISKS)
                done = draw(st.integers(0, 10000)) / 100 if repl.resyncing else None
            else:
                repl, pdisk, done = ReplState.OFF, DiskState.DUNKNOWN, None
            pds.append(PeerDevice(v, repl, pdisk, done=done, peer_client=False))
        cs = (
            ConnState.CONNECTED
            if connected
            else draw(st.sampled_from([ConnState.CONNECTING, ConnState.STANDALONE]))
        )
        role = draw(ROLES) if connected else Role.UNKNOWN
        conns.append(Connection(peer, cs, role, tuple(pds), i + 1))
    return Resource(name, draw(ROLES), devices, tuple(conns), node_id=0)


@st.composite
def statuses(draw: st.DrawFn, max_peers: int = 3) -> Status:
    names = draw(st.lists(NAMES, min_size=1, max_size=2, unique=True))
    return Status("status", None, tuple(draw(resources(n, 10 * i, max_peers)) for i, n in enumerate(names)))


def project(status: Status, fmt: str) -> list[object]:
    """What survives the trip through `fmt`."""
    out: list[object] = []
    for r in status.resources:
        out.append((r.name, r.role, tuple((d.volume or 0, d.disk) for d in r.devices)))
        for c in r.connections:
            if fmt == "proc":
                continue
            shown = fmt != "status" or c.connection is ConnState.CONNECTED
            out.append((c.peer, c.connection, c.peer_role if c.connection is ConnState.CONNECTED else None))
            for p in c.peer_devices if shown else ():
                done = None if p.done is None else round(p.done, 2)
                out.append((c.peer, p.volume or 0, p.replication, p.peer_disk, done))
    return out


def proc_project(status: Status) -> list[object]:
    """/proc/drbd: per minor, role/peer role, disk/peer disk and cs: (8.4 folds replication into it)."""
    out: list[object] = []
    for r in status.resources:
        c = r.connections[0] if r.connections else None
        for d in r.devices:
            p = next((p for p in c.peer_devices if p.volume == d.volume), None) if c else None
            standalone = c is None or c.connection is ConnState.STANDALONE
            if standalone and d.disk is DiskState.DISKLESS and r.role is Role.SECONDARY:
                # `cs:Unconfigured` (drbd_proc.c: StandAlone, Diskless and Secondary print nothing else)
                out.append((d.minor, Role.UNCONFIGURED, Role.UNKNOWN, DiskState.DISKLESS, DiskState.DUNKNOWN))
                continue
            peer = (c.peer_role if c else Role.UNKNOWN, p.peer_disk if p else DiskState.DUNKNOWN)
            out.append((d.minor, r.role, peer[0], d.disk, peer[1]))
    return out


@settings(max_examples=80, deadline=None)
@given(statuses())
def test_status_text_roundtrip(status: Status) -> None:
    assert project(parse(render_status_text(status), "status"), "status") == project(status, "status")


@settings(max_examples=80, deadline=None)
@given(statuses(), st.booleans())
def test_status_verbose_roundtrip(status: Status, statistics: bool) -> None:
    text = render_status_text(status, verbose=True, statistics=statistics)
    assert project(parse(text, "status"), "json") == project(status, "json")


@settings(max_examples=80, deadline=None)
@given(statuses())
def test_json_roundtrip(status: Status) -> None:
    assert project(parse(render_status_json(status), "json"), "json") == project(status, "json")


@settings(max_examples=80, deadline=None)
@given(statuses(), st.booleans())
def test_events2_roundtrip(status: Status, statistics: bool) -> None:
    text = render_events2(status, statistics=statistics)
    assert project(parse(text, "events2"), "events2") == project(status, "events2")


@settings(max_examples=80, deadline=None)
@given(statuses(max_peers=1))
def test_proc_roundtrip(status: Status) -> None:
    # 8.4 has no Detaching disk state and folds SyncSource/SyncTarget into cs:, so keep to 8.4's vocabulary.
    if any(d.disk is DiskState.DETACHING for r in status.resources for d in r.devices):
        status = Status(status.format, status.version, ())
    parsed = parse(render_proc(status), "proc")
    assert proc_project(parsed) == proc_project(status)
