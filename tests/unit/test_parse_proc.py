# SPDX-License-Identifier: GPL-2.0-or-later
"""/proc/drbd of DRBD 8.x: the cases the shared fixtures do not show, and what must be refused."""

from __future__ import annotations

import pytest

from tandem.drbd.model import ConnState, DiskState, ParseError, ReplState, Role
from tandem.drbd.parse import parse_proc

HEAD = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: C83CE761848B9DE61379370 \n"
COUNTERS = "    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0\n"


def one(line: str, *more: str) -> str:
    return HEAD + line + "\n" + COUNTERS + "".join(m + "\n" for m in more)


def test_unconfigured_minor_between_configured_ones() -> None:
    text = (
        HEAD
        + " 0: cs:Unconfigured\n"
        + " 1: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----\n"
    )
    text += COUNTERS + "\n 5: cs:Unconfigured\n"
    unconfigured, configured, last = parse_proc(text).resources
    assert unconfigured.role is Role.UNCONFIGURED
    assert [(d.minor, d.disk) for d in unconfigured.devices] == [(0, DiskState.DISKLESS)]
    assert unconfigured.connections == ()
    assert configured.role is Role.PRIMARY
    assert last.devices[0].minor == 5


def test_standalone_has_a_blank_protocol_column() -> None:
    (r,) = parse_proc(one(" 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----")).resources
    (c,) = r.connections
    assert (c.connection, c.peer_role) == (ConnState.STANDALONE, Role.UNKNOWN)
    assert (c.peer_devices[0].replication, c.peer_devices[0].peer_disk) == (ReplState.OFF, DiskState.DUNKNOWN)
    assert r.suspended == ()


def test_suspended_io_flag() -> None:
    (r,) = parse_proc(one(" 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C s----")).resources
    assert r.suspended == ("unknown",)


def test_drbd_8_2_state_key() -> None:
    (r,) = parse_proc(one(" 0: cs:Connected st:Secondary/Primary ds:UpToDate/UpToDate C r---")).resources
    assert (r.role, r.connections[0].peer_role) == (Role.SECONDARY, Role.PRIMARY)


def test_dual_primary_and_diskless() -> None:
    (r,) = parse_proc(one("12: cs:Connected ro:Primary/Primary ds:Diskless/UpToDate B r-----")).resources
    assert (r.role, r.connections[0].peer_role, r.devices[0].disk) == (
        Role.PRIMARY,
        Role.PRIMARY,
        DiskState.DISKLESS,
    )
    assert r.devices[0].minor == 12


CS_8X = {
    "StandAlone": (ConnState.STANDALONE, ReplState.OFF),
    "Disconnecting": (ConnState.DISCONNECTING, ReplState.OFF),
    "Unconnected": (ConnState.UNCONNECTED, ReplState.OFF),
    "Timeout": (ConnState.TIMEOUT, ReplState.OFF),
    "BrokenPipe": (ConnState.BROKEN_PIPE, ReplState.OFF),
    "NetworkFailure": (ConnState.NETWORK_FAILURE, ReplState.OFF),
    "ProtocolError": (ConnState.PROTOCOL_ERROR, ReplState.OFF),
    "TearDown": (ConnState.TEAR_DOWN, ReplState.OFF),
    "WFConnection": (ConnState.CONNECTING, ReplState.OFF),
    "WFReportParams": (ConnState.CONNECTING, ReplState.OFF),
    "Connected": (ConnState.CONNECTED, ReplState.ESTABLISHED),
    "StartingSyncS": (ConnState.CONNECTED, ReplState.STARTING_SYNC_S),
    "StartingSyncT": (ConnState.CONNECTED, ReplState.STARTING_SYNC_T),
    "WFBitMapS": (ConnState.CONNECTED, ReplState.WF_BITMAP_S),
    "WFBitMapT": (ConnState.CONNECTED, ReplState.WF_BITMAP_T),
    "WFSyncUUID": (ConnState.CONNECTED, ReplState.WF_SYNC_UUID),
    "SyncSource": (ConnState.CONNECTED, ReplState.SYNC_SOURCE),
    "SyncTarget": (ConnState.CONNECTED, ReplState.SYNC_TARGET),
    "PausedSyncS": (ConnState.CONNECTED, ReplState.PAUSED_SYNC_S),
    "PausedSyncT": (ConnState.CONNECTED, ReplState.PAUSED_SYNC_T),
    "VerifyS": (ConnState.CONNECTED, ReplState.VERIFY_S),
    "VerifyT": (ConnState.CONNECTED, ReplState.VERIFY_T),
    "Ahead": (ConnState.CONNECTED, ReplState.AHEAD),
    "Behind": (ConnState.CONNECTED, ReplState.BEHIND),
}


@pytest.mark.parametrize("cs", sorted(CS_8X))
def test_every_8x_connection_state_splits_into_9_vocabulary(cs: str) -> None:
    (r,) = parse_proc(one(f" 0: cs:{cs} ro:Secondary/Unknown ds:UpToDate/DUnknown C r-----")).resources
    c = r.connections[0]
    assert (c.connection, c.peer_devices[0].replication) == CS_8X[cs]


def test_verify_progress_and_proc_details_lines() -> None:
    text = one(
        " 0: cs:VerifyS ro:Primary/Secondary ds:UpToDate/UpToDate C r-----",
        "\t[=======>............] verified: 41.3% (600/1024)M",
        "\tfinish: 0:00:09 speed: 45,120 (45,120) want: 51,200 K/sec",
        "\t 41% sector pos: 864256/2097152",
        "\tresync: used:0/61 hits:0 misses:0 starving:0 locked:0 changed:0",
        "\tact_log: used:0/1237 hits:0 misses:0 starving:0 locked:0 changed:0",
        "\tblocked on activity log: 0",
    )
    (r,) = parse_proc(text).resources
    assert r.connections[0].peer_devices[0].done == 41.3


def test_progress_line_run_into_finish_on_8_3() -> None:
    text = one(
        " 1: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----",
        "\t[>....................] sync'ed:  0.1% (102372/102392)M"
        "finish: 22:24:00 speed: 1,244 (1,244) K/sec",
    )
    assert parse_proc(text).resources[0].connections[0].peer_devices[0].done == 0.1


def test_no_version_line() -> None:
    status = parse_proc(" 0: cs:Connected ro:Secondary/Primary ds:UpToDate/UpToDate C r-----\n" + COUNTERS)
    assert status.version is None
    assert len(status.resources) == 1


def test_empty_file_has_no_resources() -> None:
    assert parse_proc("").resources == ()


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (" 0: cs:Conected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----", "unknown connection state"),
        (" 0: cs:Connected ro:Primary/Secundary ds:UpToDate/UpToDate C r-----", "unknown peer role"),
        (" 0: cs:Connected ro:Primary/Secondary ds:UpToDate/TOO_LARGE C r-----", "unknown peer disk state"),
        (" 0: cs:Connected ro:Primary/Secondary", "expected ro:"),
        (" 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate X r-----", "expected ro:"),
        (" 0: cs:Unconfigured ro:Secondary/Unknown", "no states"),
    ],
)
def test_bad_minor_line_is_named(line: str, why: str) -> None:
    with pytest.raises(ParseError, match=why) as caught:
        parse_proc(one(line))
    assert caught.value.line_no == 3
    assert caught.value.line == line


@pytest.mark.parametrize(
    ("text", "line_no"),
    [
        ("version: 8.4.11 (api:1/proto:86-101)\nhello\n", 2),
        (one(" 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r-----", "    what is this"), 5),
        (HEAD + " 0: cs:Unconfigured\n" + COUNTERS, 4),
        (
            one(
                " 0: cs:SyncSource ro:Primary/Secondary ds:UpToDate/Inconsistent C r-----",
                "\t[==>...] sync'ed: 140.0% (1/2)K",
            ),
            5,
        ),
    ],
)
def test_unexpected_lines_are_named(text: str, line_no: int) -> None:
    with pytest.raises(ParseError) as caught:
        parse_proc(text)
    assert caught.value.line_no == line_no


def test_output_cut_mid_line_is_refused() -> None:
    with pytest.raises(ParseError, match="truncated") as caught:
        parse_proc(HEAD + " 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C r---")
    assert caught.value.line_no == 3
