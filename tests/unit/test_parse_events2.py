# SPDX-License-Identifier: GPL-2.0-or-later
"""`drbdsetup events2`: dumps, streams, --diff, and what must be refused."""

from __future__ import annotations

import pytest

from tandem.drbd.model import ConnState, DiskState, ParseError, ReplState, Role
from tandem.drbd.parse import parse_events2


def text(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


DUMP = (
    "exists resource name:r0 role:Secondary suspended:no force-io-failures:no may_promote:no"
    " promotion_score:0",
    "exists connection name:r0 peer-node-id:1 conn-name:b connection:Connected role:Primary",
    "exists device name:r0 volume:0 minor:1000 backing_dev:/dev/sda disk:UpToDate client:no open:no"
    " quorum:yes",
    "exists peer-device name:r0 peer-node-id:1 conn-name:b volume:0 replication:Established"
    " peer-disk:UpToDate peer-client:no resync-suspended:no",
    "exists -",
)


def test_resync_progress_ends_with_the_resync() -> None:
    out = text(
        *DUMP,
        "change peer-device name:r0 peer-node-id:1 conn-name:b volume:0 replication:SyncTarget"
        " peer-disk:UpToDate peer-client:no done:12.00",
        "change device name:r0 volume:0 minor:1000 disk:Inconsistent client:no open:no quorum:yes",
    )
    p = parse_events2(out).resources[0].connections[0].peer_devices[0]
    assert (p.replication, p.done) == (ReplState.SYNC_TARGET, 12.0)
    out += text("change peer-device name:r0 peer-node-id:1 conn-name:b volume:0 replication:PausedSyncT")
    assert parse_events2(out).resources[0].connections[0].peer_devices[0].done == 12.0
    out += text("change peer-device name:r0 peer-node-id:1 conn-name:b volume:0 replication:Established")
    p = parse_events2(out).resources[0].connections[0].peer_devices[0]
    assert (p.replication, p.done) == (ReplState.ESTABLISHED, None)


def test_connection_loss_and_suspension() -> None:
    out = text(
        *DUMP,
        "change resource name:r0 role:Primary suspended:fencing",
        "change connection name:r0 peer-node-id:1 conn-name:b connection:NetworkFailure role:Unknown",
        "change peer-device name:r0 peer-node-id:1 conn-name:b volume:0 replication:Off peer-disk:DUnknown",
        "change connection name:r0 peer-node-id:1 conn-name:b connection:Connecting",
    )
    (r,) = parse_events2(out).resources
    assert (r.role, r.suspended) == (Role.PRIMARY, ("fencing",))
    (c,) = r.connections
    assert (c.connection, c.peer_role) == (ConnState.CONNECTING, Role.UNKNOWN)
    assert (c.peer_devices[0].replication, c.peer_devices[0].peer_disk) == (ReplState.OFF, DiskState.DUNKNOWN)


def test_rename_and_destroy() -> None:
    out = text(*DUMP, "rename resource name:r0 new_name:r9")
    assert [r.name for r in parse_events2(out).resources] == ["r9"]
    out += text(
        "destroy peer-device name:r9 peer-node-id:1 conn-name:b volume:0",
        "destroy connection name:r9 peer-node-id:1 conn-name:b",
    )
    (r,) = parse_events2(out).resources
    assert (r.connections, len(r.devices)) == ((), 1)


def test_timestamps_and_drbd84_connection_without_node_id() -> None:
    out = text(
        "2017-02-15T14:43:16.688437+00:00 exists resource name:test0 role:Primary suspended:no"
        " write-ordering:flush",
        "2017-02-15T14:43:16.688437+00:00 exists connection name:test0 conn-name:peer connection:Connected"
        " role:Secondary congested:no",
        "2017-02-15T14:43:16.688437+00:00 exists -",
    )
    (c,) = parse_events2(out).resources[0].connections
    assert (c.peer, c.peer_node_id, c.connection) == ("peer", None, ConnState.CONNECTED)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("change resource name:r0 role:Primery", "unknown role"),
        ("change device name:r0 volume:0 disk:UpToDat", "unknown disk state"),
        ("change connection name:r0 peer-node-id:1 connection:Established", "unknown connection state"),
        (
            "change peer-device name:r0 peer-node-id:1 volume:0 replication:Connected",
            "unknown replication state",
        ),
        ("change peer-device name:r0 peer-node-id:1 volume:0 done:-1", "percentage"),
        ("change device name:r0 volume:1 disk:UpToDate", "device '1' that no event created"),
        ("change resource name:r1 role:Primary", "resource 'r1' that no event created"),
        ("change peer-device name:r0 peer-node-id:2 volume:0 replication:Off", "connection '2'"),
        ("exists device name:r0 volume:1 minor:1001", "without disk:"),
        ("exists connection name:r0 peer-node-id:2 conn-name:c role:Unknown", "without connection:"),
        ("exists device volume:1 disk:Diskless", "without name:"),
        ("exists device name:r0 disk:Diskless", "without volume:"),
        ("change device name:r0 volume:0 quorum:perhaps", "yes or no"),
        ("change peer-device name:r0 volume:0 replication:Off", "without peer-node-id"),
        ("change widget name:r0", "unknown events2 object"),
        ("update resource name:r0", "not an events2 line"),
        ("call resource name:r0", "not an events2 event"),
        ("rename device name:r0 volume:0", "not an events2 event"),
        ("change resource name:r0 role", "key:value"),
        ("- skipped 3", "lost events"),
        ("exists - more", "only `exists -`"),
        ("  continued", None),
    ],
)
def test_refused_naming_the_line(line: str, why: str | None) -> None:
    out = text(*DUMP, line)
    with pytest.raises(ParseError, match=why) as caught:
        parse_events2(out)
    if why is not None:
        assert caught.value.line_no == len(DUMP) + 1


def test_dump_without_its_end_is_incomplete() -> None:
    with pytest.raises(ParseError, match="exists -") as caught:
        parse_events2(text(*DUMP[:-1]))
    assert caught.value.line_no == 4
    with pytest.raises(ParseError, match="exists -"):
        parse_events2("")


def test_output_cut_mid_line_is_refused() -> None:
    with pytest.raises(ParseError, match="truncated"):
        parse_events2(text(*DUMP) + "change device name:r0 volume:0 minor:10")
