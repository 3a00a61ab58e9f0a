# SPDX-License-Identifier: GPL-2.0-or-later
"""Every status sample in ../shared/fixtures/drbd parses to the state a DRBD expert reads from it.

The expected states are written out by hand from each file (see the comments for the less obvious
readings). The drbdadm role/cstate/dstate files are not status dumps and are not listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tandem.drbd.model import ParseError, Status, to_json_dict
from tandem.drbd.parse import detect, parse
from tests.unit.parse_expect import J, conn, dev, minor8, pd, res, status

UTD, INC, DU = "UpToDate", "Inconsistent", "DUnknown"
EST = "Established"


# --- /proc/drbd (8.x: the cs: value splits into connection + replication) ---------------------------
PROC: dict[str, J] = {
    "proc-drbd-8.3.11-connected-primary.txt": status(
        "proc", minor8(1, "Connected", "Primary", "Secondary", UTD, UTD, EST), version="8.3.11"
    ),
    "proc-drbd-8.3.11-syncsource.txt": status(
        "proc", minor8(1, "Connected", "Primary", "Secondary", UTD, INC, "SyncSource", 0.9), version="8.3.11"
    ),
    "proc-drbd-8.3.6-connected-inconsistent.txt": status(
        "proc", minor8(1, "Connected", "Secondary", "Secondary", INC, INC, EST), version="8.3.6"
    ),
    "proc-drbd-8.3.6-connected-primary.txt": status(
        "proc", minor8(1, "Connected", "Primary", "Secondary", UTD, UTD, EST), version="8.3.6"
    ),
    "proc-drbd-8.3.6-syncsource.txt": status(
        "proc", minor8(1, "Connected", "Primary", "Secondary", UTD, INC, "SyncSource", 33.4), version="8.3.6"
    ),
    # WFConnection: waiting for the peer, so Connecting with replication Off and nothing known of the peer.
    "proc-drbd-8.3.6-wfconnection-inconsistent.txt": status(
        "proc", minor8(1, "Connecting", "Secondary", "Unknown", INC, DU, "Off"), version="8.3.6"
    ),
    "proc-drbd-8.4-connected-3devices.txt": status(
        "proc",
        minor8(0, "Connected", "Secondary", "Secondary", UTD, UTD, EST),
        minor8(1, "Connected", "Primary", "Secondary", UTD, UTD, EST),
        minor8(2, "Connected", "Secondary", "Primary", UTD, UTD, EST),
        version="8.4.0",
    ),
}


# --- drbdsetup status text and --json: the GENERATED scenarios, in every variant ------------------
# The terse text prints no minor; --verbose and --json do. A single volume 0 is printed without
# `volume:` in the terse text, which by drbdsetup's rule still says volume 0.
EVERY = ("", "-verbose", "-verbose-statistics")
NO_VERBOSE = ("", "-verbose-statistics")
BOTH_UP = (pd(0, EST, UTD), pd(1, EST, UTD))
# scenario: (role of r0, its disks by volume, its connections, the text variants on disk)
SCENARIOS: dict[str, tuple[str, tuple[str, ...], tuple[J, ...], tuple[str, ...]]] = {
    "healthy-3node-2vol": (
        "Primary",
        (UTD, UTD),
        (
            conn("bob", "Connected", "Secondary", *BOTH_UP),
            conn("charlie", "Connected", "Secondary", *BOTH_UP),
        ),
        EVERY,
    ),
    "syncsource-3node": (
        "Primary",
        (UTD,),
        (
            conn("bob", "Connected", "Secondary", pd(0, "SyncSource", INC, 37.5)),
            conn("charlie", "Connected", "Secondary", pd(0, EST, UTD)),
        ),
        NO_VERBOSE,
    ),
    # The terse text prints no peer-device line for bob (not connected): its volume is Off/DUnknown.
    "degraded-connecting": (
        "Primary",
        (UTD,),
        (
            conn("bob", "Connecting", "Unknown", pd(0, "Off", DU)),
            conn("charlie", "Connected", "Secondary", pd(0, EST, UTD)),
        ),
        NO_VERBOSE,
    ),
    "dual-primary-2node": ("Primary", (UTD,), (conn("bob", "Connected", "Primary", pd(0, EST, UTD)),), EVERY),
    # charlie is an intentionally diskless client (peer-client:yes), not a failed disk.
    "secondary-with-diskless-peer": (
        "Secondary",
        (UTD,),
        (
            conn("bob", "Connected", "Primary", pd(0, EST, UTD)),
            conn("charlie", "Connected", "Secondary", pd(0, EST, "Diskless")),
        ),
        EVERY,
    ),
    "primary-suspended-fencing": (
        "Primary",
        (UTD,),
        (conn("bob", "StandAlone", "Unknown", pd(0, "Off", DU)),),
        EVERY,
    ),
    "synctarget-2node": (
        "Secondary",
        (INC,),
        (conn("bob", "Connected", "Primary", pd(0, "SyncTarget", UTD, 37.5)),),
        NO_VERBOSE,
    ),
}


def scenario(fmt: str, name: str, minors: bool) -> J:
    role, disks, connections, _ = SCENARIOS[name]
    devices = [dev(v, 1000 + v if minors else None, disk) for v, disk in enumerate(disks)]
    return status(fmt, res("r0", role, devices, *connections))


GENERATED: dict[str, J] = {}
for _name, (*_, _variants) in SCENARIOS.items():
    GENERATED[f"status-9-{_name}.GENERATED.json"] = scenario("json", _name, True)
    for _variant in _variants:
        GENERATED[f"status-9-{_name}{_variant}.GENERATED.txt"] = scenario("status", _name, bool(_variant))


# --- drbdsetup/drbdadm status text copied from documents ------------------------------------------
def ug84(minor: int | None) -> J:
    # drbd-utils 9 against an 8.4 kernel: the one connection is called "peer".
    return status(
        "status",
        res(
            "home", "Secondary", [dev(0, minor, UTD)], conn("peer", "Connected", "Secondary", pd(0, EST, UTD))
        ),
    )


def ug9_3peers(minor: int | None) -> J:
    # Old utils print `disk:` for the peer's disk; nono is still connecting (Off/DUnknown).
    return status(
        "status",
        res(
            "home",
            "Secondary",
            [dev(0, minor, UTD)],
            conn("nina", "Connected", "Secondary", pd(0, EST, UTD)),
            conn("nino", "Connected", "Secondary", pd(0, EST, UTD)),
            conn("nono", "Connecting", "Unknown", pd(0, "Off", DU)),
        ),
    )


def cfs(role: str, disk: str, peer: str, peer_role: str, repl: str, peer_disk: str) -> J:
    connection = conn(peer, "Connecting", "Unknown", pd(0, "Off", DU))
    if repl != "Off":
        connection = conn(peer, "Connected", peer_role, pd(0, repl, peer_disk))
    return status("status", res("wwwdata", role, [dev(0, None, disk)], connection))


TEXT: dict[str, J] = {
    "status-8.4-drbdadm-status-ug84.txt": ug84(None),
    "status-8.4-verbose-statistics-ug84.txt": ug84(0),
    "status-9-3peers-connecting-ug9.txt": ug9_3peers(None),
    "status-9-verbose-statistics-3peers-ug9-wrapped.txt": ug9_3peers(0),
    # Two resources (the terse and the --verbose example, a `#` comment between them). The verbose one
    # uses pre-9.0 names: connection WFReportParams (still connecting) and replication Connected
    # (today's Established).
    "status-9-manpage-examples-outdated.txt": status(
        "status",
        res(
            "drbd0",
            "Primary",
            [dev(0, None, UTD)],
            conn("host2.example.com", "Connected", "Secondary", pd(0, EST, UTD)),
        ),
        res(
            "drbd0",
            "Primary",
            [dev(0, 1, UTD)],
            conn("host2.example.com", "Connecting", "Secondary", pd(0, EST, UTD)),
        ),
    ),
    "status-9-cfs-both-inconsistent.txt": cfs("Secondary", INC, "pcmk-2", "Secondary", EST, INC),
    "status-9-cfs-connecting.txt": cfs("Secondary", INC, "pcmk-2", "Unknown", "Off", DU),
    # A forced primary: the peer is connected but Inconsistent, and no resync shows (no replication:).
    "status-9-cfs-primary-forced.txt": cfs("Primary", UTD, "pcmk-2", "Secondary", EST, INC),
    "status-9-cfs-secondary-uptodate.txt": cfs("Secondary", UTD, "pcmk-1", "Primary", EST, UTD),
    # The document left out `done:`, so the percentage is unknown.
    "status-9-cfs-syncsource.txt": cfs("Primary", UTD, "pcmk-2", "Secondary", "SyncSource", INC),
}


# --- events2 ----------------------------------------------------------------------------------
def two_volumes_remote_host() -> J:
    pds = (pd(0, EST, UTD), pd(1, EST, UTD))
    return status(
        "events2",
        res(
            "r0",
            "Secondary",
            [dev(0, 7, UTD), dev(1, 8, UTD)],
            conn("remote-host", "Connected", "Secondary", *pds),
        ),
    )


def three_node_2vol() -> J:
    return status(
        "events2",
        res(
            "r0",
            "Primary",
            [dev(0, 1000, UTD), dev(1, 1001, UTD)],
            conn("bob", "Connected", "Secondary", pd(0, EST, UTD), pd(1, EST, UTD)),
            conn(
                "charlie",
                "Connected",
                "Secondary",
                pd(0, "SyncSource", INC, 37.5),
                pd(1, "SyncSource", INC, 37.5),
            ),
        ),
    )


def some_resource(role: str, disk: str, *connections: J, volumes: int = 1) -> J:
    devices = [dev(v, 1000 + v, disk) for v in range(volumes)]
    return status("events2", res("some-resource", role, devices, *connections))


# The stream files run to their end: the state is the one after the last event.
CONNECTED_PRIMARY = some_resource(
    "Primary", UTD, conn("some-peer", "Connected", "Secondary", pd(0, EST, UTD))
)
SYNCSOURCE = some_resource(
    "Secondary", UTD, conn("some-peer", "Connected", "Secondary", pd(0, "SyncSource", INC, 37.5))
)
EVENTS2: dict[str, J] = {
    "events2-8.4-now-2volumes-ug84-wrapped.txt": two_volumes_remote_host(),
    "events2-8.4-now-statistics-ug84-wrapped.txt": two_volumes_remote_host(),
    "events2-9-now-2volumes-ug9-wrapped.txt": two_volumes_remote_host(),
    "events2-9-now-statistics-ug9-wrapped.txt": two_volumes_remote_host(),
    "events2-9-now-3node-2vol.GENERATED.txt": three_node_2vol(),
    "events2-9-now-statistics-3node-2vol.GENERATED.txt": three_node_2vol(),
    "events2-9-now-dual-primary-2node.GENERATED.txt": status(
        "events2",
        res("r0", "Primary", [dev(0, 1000, UTD)], conn("bob", "Connected", "Primary", pd(0, EST, UTD))),
    ),
    "events2-9-now-exists.txt": some_resource("Secondary", "Diskless"),
    "events2-9-now-no-resources.txt": status("events2"),
    "events2-9-stream-2volumes-promotion-score.txt": some_resource("Secondary", UTD, volumes=2),
    "events2-9-stream-create-change.txt": CONNECTED_PRIMARY,
    "events2-9-stream-diff.txt": CONNECTED_PRIMARY,
    "events2-9-stream-full.txt": CONNECTED_PRIMARY,
    "events2-9-stream-statistics.txt": CONNECTED_PRIMARY,
    "events2-9-stream-timestamps.GENERATED.txt": CONNECTED_PRIMARY,
    "events2-9-stream-destroy.txt": status("events2"),
    "events2-9-stream-helper.txt": some_resource(
        "Secondary", "Diskless", conn("some-peer", "StandAlone", "Unknown", pd(0, "Off", DU))
    ),
    # The peer became Primary; no peer-device event followed, so its volume is still Off/DUnknown.
    "events2-9-stream-peer-primary.txt": some_resource(
        "Secondary", UTD, conn("some-peer", "Connected", "Primary", pd(0, "Off", DU))
    ),
    "events2-9-stream-quorum-lost.txt": some_resource("Secondary", UTD),
    "events2-9-stream-syncsource-done.txt": SYNCSOURCE,
    "events2-9-stream-syncsource-statistics.txt": SYNCSOURCE,
}

EXPECTED = {**PROC, **GENERATED, **TEXT, **EVENTS2}

# An excerpt of a stream that starts with the user guide's "..." and changes a connection no event
# created: not an output drbdsetup prints, so no state can be read from it.
NOT_A_STATE = {"events2-9-stream-connection-changes-ug9.txt": 1}
NOT_STATUS_DUMPS = ("drbdadm-8.4-role-cstate-dstate.txt", "drbdadm-9-role-cstate-dstate.txt", "README.md")


def read(fixtures_dir: Path, name: str) -> str:
    return (fixtures_dir / name).read_text()


def test_every_fixture_has_an_expected_state(fixtures_dir: Path) -> None:
    on_disk = {p.name for p in fixtures_dir.iterdir()} - set(NOT_STATUS_DUMPS)
    assert on_disk == set(EXPECTED) | set(NOT_A_STATE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_the_expected_state(fixtures_dir: Path, name: str) -> None:
    text = read(fixtures_dir, name)
    expected: dict[str, Any] = EXPECTED[name]
    assert detect(text) == expected["format"]
    assert to_json_dict(parse(text)) == expected


@pytest.mark.parametrize("name", sorted(NOT_A_STATE))
def test_stream_excerpt_is_refused_naming_the_line(fixtures_dir: Path, name: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(read(fixtures_dir, name), "events2")
    assert caught.value.line_no == NOT_A_STATE[name]


def parsed(fixtures_dir: Path, name: str) -> Status:
    return parse(read(fixtures_dir, name))


# --- what the JSON shape does not show: suspension, node ids, quorum, clients -------------------
@pytest.mark.parametrize(
    "name",
    [
        "status-9-primary-suspended-fencing.GENERATED.txt",
        "status-9-primary-suspended-fencing-verbose.GENERATED.txt",
        "status-9-primary-suspended-fencing.GENERATED.json",
    ],
)
def test_suspended_by_fencing(fixtures_dir: Path, name: str) -> None:
    assert parsed(fixtures_dir, name).resources[0].suspended == ("fencing",)


@pytest.mark.parametrize(
    "name",
    [
        "status-9-healthy-3node-2vol.GENERATED.txt",
        "status-9-healthy-3node-2vol.GENERATED.json",
        "events2-9-now-3node-2vol.GENERATED.txt",
        "proc-drbd-8.3.6-connected-primary.txt",
    ],
)
def test_not_suspended(fixtures_dir: Path, name: str) -> None:
    assert parsed(fixtures_dir, name).resources[0].suspended == ()


def test_node_ids_in_verbose_text_and_json(fixtures_dir: Path) -> None:
    for name in (
        "status-9-healthy-3node-2vol-verbose.GENERATED.txt",
        "status-9-healthy-3node-2vol.GENERATED.json",
    ):
        r0 = parsed(fixtures_dir, name).resources[0]
        assert r0.node_id == 0
        assert [c.peer_node_id for c in r0.connections] == [1, 2]
        assert [d.quorum for d in r0.devices] == [True, True]
    terse = parsed(fixtures_dir, "status-9-healthy-3node-2vol.GENERATED.txt").resources[0]
    assert terse.node_id is None
    assert [c.peer_node_id for c in terse.connections] == [None, None]
    assert [d.quorum for d in terse.devices] == [None, None]


def test_events2_node_ids(fixtures_dir: Path) -> None:
    r0 = parsed(fixtures_dir, "events2-9-now-3node-2vol.GENERATED.txt").resources[0]
    assert [c.peer_node_id for c in r0.connections] == [1, 2]
    assert r0.node_id is None  # events2 does not print the local node id


def test_ug9_verbose_node_ids(fixtures_dir: Path) -> None:
    home = parsed(fixtures_dir, "status-9-verbose-statistics-3peers-ug9-wrapped.txt").resources[0]
    assert home.node_id == 1
    assert [c.peer_node_id for c in home.connections] == [0, 2, 3]


@pytest.mark.parametrize(
    "name",
    [
        "status-9-secondary-with-diskless-peer.GENERATED.txt",
        "status-9-secondary-with-diskless-peer-verbose-statistics.GENERATED.txt",
        "status-9-secondary-with-diskless-peer.GENERATED.json",
    ],
)
def test_diskless_peer_is_an_intentional_client(fixtures_dir: Path, name: str) -> None:
    bob, charlie = parsed(fixtures_dir, name).resources[0].connections
    assert charlie.peer_devices[0].peer_client is True
    assert bob.peer_devices[0].peer_client in (None, False)  # the terse text only shows it for Diskless


def test_json_says_no_client_and_quorum(fixtures_dir: Path) -> None:
    device = parsed(fixtures_dir, "status-9-synctarget-2node.GENERATED.json").resources[0].devices[0]
    assert (device.client, device.quorum) == (False, True)


def test_events2_diskless_device_is_not_a_client(fixtures_dir: Path) -> None:
    device = parsed(fixtures_dir, "events2-9-now-exists.txt").resources[0].devices[0]
    assert (device.disk, device.client, device.quorum) == ("Diskless", False, True)


def test_events2_quorum_lost(fixtures_dir: Path) -> None:
    resource = parsed(fixtures_dir, "events2-9-stream-quorum-lost.txt").resources[0]
    assert resource.devices[0].quorum is False
    assert resource.quorum is False


def test_events2_peer_client_flag(fixtures_dir: Path) -> None:
    peer = parsed(fixtures_dir, "events2-9-stream-create-change.txt").resources[0].connections[0]
    assert peer.peer_devices[0].peer_client is False
    assert peer.peer_node_id == 1
