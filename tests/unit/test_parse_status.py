# SPDX-License-Identifier: GPL-2.0-or-later
"""`drbdsetup status` text: wrapping, omitted keys, old names, and what must be refused."""

from __future__ import annotations

import pytest

from tandem.drbd.model import ConnState, DiskState, ParseError, ReplState, Role, to_json_dict
from tandem.drbd.parse import parse_status_text
from tests.unit.parse_expect import conn, dev, pd, res, status


def text(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


def test_no_resources() -> None:
    assert parse_status_text("# No currently configured DRBD found.\n").resources == ()
    assert parse_status_text("").resources == ()


def test_two_resources_separated_by_a_blank_line() -> None:
    out = text(
        "r0 role:Primary",
        "  disk:UpToDate",
        "  b role:Secondary",
        "    peer-disk:UpToDate",
        "",
        "r1 role:Secondary suspended:user,fencing",
        "  volume:0 disk:Outdated quorum:no",
        "  volume:1 disk:Diskless client:yes",
        "  b connection:StandAlone",
        "",
    )
    assert to_json_dict(parse_status_text(out)) == status(
        "status",
        res(
            "r0",
            "Primary",
            [dev(0, None, "UpToDate")],
            conn("b", "Connected", "Secondary", pd(0, "Established", "UpToDate")),
        ),
        res(
            "r1",
            "Secondary",
            [dev(0, None, "Outdated"), dev(1, None, "Diskless")],
            conn("b", "StandAlone", "Unknown", pd(0, "Off", "DUnknown"), pd(1, "Off", "DUnknown")),
        ),
    )
    r1 = parse_status_text(out).resources[1]
    assert r1.suspended == ("user", "fencing")
    assert [(d.quorum, d.client) for d in r1.devices] == [(False, None), (None, True)]
    assert r1.quorum is False


def test_lines_wrapped_at_80_columns_are_joined() -> None:
    out = text(
        "a-resource-with-a-long-name node-id:0 role:Primary suspended:quorum",
        "    force-io-failures:no",
        "  volume:0 minor:1000 disk:UpToDate backing_dev:/dev/vg/a-long-logical-volume",
        "      quorum:yes open:yes",
        "  peer-with-a-long-host-name.example.com node-id:1 connection:Connected",
        "      role:Secondary tls:no congested:no",
        "    volume:0 replication:PausedSyncS",
        "        peer-disk:Inconsistent done:12.25 resync-suspended:user",
    )
    (r,) = parse_status_text(out).resources
    assert (r.role, r.suspended, r.node_id) == (Role.PRIMARY, ("quorum",), 0)
    assert (r.devices[0].minor, r.devices[0].quorum) == (1000, True)
    (c,) = r.connections
    assert (c.peer, c.peer_node_id, c.connection, c.peer_role) == (
        "peer-with-a-long-host-name.example.com",
        1,
        ConnState.CONNECTED,
        Role.SECONDARY,
    )
    (p,) = c.peer_devices
    assert (p.replication, p.peer_disk, p.done) == (ReplState.PAUSED_SYNC_S, DiskState.INCONSISTENT, 12.25)


def test_connection_without_a_name() -> None:
    out = text("r0 role:Secondary", "  disk:UpToDate", "  node-id:2 connection:Connecting")
    (c,) = parse_status_text(out).resources[0].connections
    assert (c.peer, c.peer_node_id, c.connection) == (None, 2, ConnState.CONNECTING)


def test_peer_device_shown_with_neither_key_is_off_and_dunknown() -> None:
    out = text(
        "r0 role:Secondary", "  volume:0 disk:UpToDate", "  volume:1 disk:UpToDate", "  b role:Secondary"
    )
    out += text("    volume:0 peer-disk:UpToDate", "    volume:1")
    (c,) = parse_status_text(out).resources[0].connections
    assert [(p.volume, p.replication, p.peer_disk) for p in c.peer_devices] == [
        (0, ReplState.ESTABLISHED, DiskState.UP_TO_DATE),
        (1, ReplState.OFF, DiskState.DUNKNOWN),
    ]


def test_drbd_84_verbose_names() -> None:
    out = text(
        "r0 role:Primary suspended:no",
        "  volume:0 minor:0 disk:UpToDate",
        "  peer connection:WFConnection role:Unknown congested:no",
        "    volume:0 replication:WFConnection peer-disk:DUnknown resync-suspended:no",
    )
    (c,) = parse_status_text(out).resources[0].connections
    assert (c.connection, c.peer_devices[0].replication) == (ConnState.CONNECTING, ReplState.OFF)


def test_colours_are_ignored() -> None:
    out = "r0 role:\x1b[1mPrimary\x1b[0m\n  disk:\x1b[32mUpToDate\x1b[0m\n"
    (r,) = parse_status_text(out).resources
    assert (r.role, r.devices[0].disk) == (Role.PRIMARY, DiskState.UP_TO_DATE)


@pytest.mark.parametrize(
    ("lines", "line_no", "why"),
    [
        (("r0 role:Primary", "  disk:UpToDat"), 2, "unknown disk state"),
        (
            ("r0 role:Primary", "  disk:UpToDate", "  b role:Secondary", "    replication:SyncSource"),
            4,
            "no peer-disk",
        ),
        (("r0 role:Primary", "  disk:UpToDate", "  b congested:no"), 3, "connected peer"),
        (
            ("r0 role:Primary", "  disk:UpToDate", "  b role:Secondary", "    peer-disk:UpToDate done:101"),
            4,
            "percentage",
        ),
        (("r0 role:Primary", "  disk:UpToDate", "    peer-disk:UpToDate"), 3, "outside a connection"),
        (("  disk:UpToDate",), 1, "before any resource"),
        (("r0 role:Primary", "   disk:UpToDate"), 2, "indentation of 3"),
        (("r0 role:Primary", "\tdisk:UpToDate"), 2, "other than spaces"),
        (("r0 suspended:no",), 1, "without role"),
        (("role:Primary",), 1, "starts with the resource name"),
        (("r0 role:Primary", "  volume:0"), 2, "without disk"),
        (("r0 role:Primary", "  disk:UpToDate quorum:maybe"), 2, "yes or no"),
        (("r0 role:Primary", "  disk:UpToDate", "  b role:Secondary peer"), 3, "key:value"),
        (("r0 role:Primary suspended:tired",), 1, "suspend reason"),
        (("r0 role:Primary", "  volume:x disk:UpToDate"), 2, "number"),
    ],
)
def test_refused_naming_the_line(lines: tuple[str, ...], line_no: int, why: str) -> None:
    with pytest.raises(ParseError, match=why) as caught:
        parse_status_text(text(*lines))
    assert caught.value.line_no == line_no


def test_output_cut_mid_line_is_refused() -> None:
    with pytest.raises(ParseError, match="truncated"):
        parse_status_text("r0 role:Primary\n  disk:UpToDate\n  b role:Secondary\n    peer-disk:UpTo")
