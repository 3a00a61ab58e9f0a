# SPDX-License-Identifier: GPL-2.0-or-later
"""`drbdsetup status --json`: every key optional, no guessed states, clear errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.drbd.model import ConnState, DiskState, ParseError, ReplState, Role
from tandem.drbd.parse import parse_status_json
from tandem.drbd.parse_json import _INVALID, _scan


def doc(*resources: Any) -> str:
    return json.dumps(list(resources), indent=2) + "\n"


def test_no_resources() -> None:
    assert parse_status_json("[\n]\n").resources == ()


def test_keys_left_out_are_unknown_or_none() -> None:
    (r,) = parse_status_json(
        doc({"devices": [{}], "connections": [{"connection-state": "Connecting"}]})
    ).resources
    assert (r.name, r.role, r.suspended, r.node_id) == (None, Role.UNKNOWN, (), None)
    assert (r.devices[0].volume, r.devices[0].minor, r.devices[0].disk) == (None, None, DiskState.DUNKNOWN)
    (c,) = r.connections
    assert (c.peer, c.peer_role, c.peer_node_id, c.peer_devices) == (None, Role.UNKNOWN, None, ())


def test_peer_device_of_an_unconnected_peer_is_off() -> None:
    connection = {"name": "b", "connection-state": "StandAlone", "peer_devices": [{"volume": 0}]}
    (c,) = (
        parse_status_json(doc({"name": "r0", "role": "Primary", "connections": [connection]}))
        .resources[0]
        .connections
    )
    (p,) = c.peer_devices
    assert (c.connection, p.replication, p.peer_disk) == (
        ConnState.STANDALONE,
        ReplState.OFF,
        DiskState.DUNKNOWN,
    )


def test_resync_percentage_and_dash_spelling() -> None:
    pds = [
        {
            "volume": 0,
            "replication-state": "SyncTarget",
            "peer-disk-state": "UpToDate",
            "percent-resync-done": 5,
        }
    ]
    connection = {"name": "b", "connection-state": "Connected", "peer-role": "Primary", "peer-devices": pds}
    (r,) = parse_status_json(doc({"name": "r0", "role": "Secondary", "connections": [connection]})).resources
    assert r.connections[0].peer_devices[0].done == 5.0


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"suspended": False}, ()),
        ({"suspended": True}, ("unknown",)),  # the old schema does not say why
        ({"suspended": True, "suspended-user": False, "suspended-fencing": True}, ("fencing",)),
        ({"suspended": True, "suspended-no-data": True, "suspended-quorum": True}, ("no-data", "quorum")),
    ],
)
def test_suspension(resource: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert (
        parse_status_json(doc({"name": "r0", "role": "Primary", **resource})).resources[0].suspended
        == expected
    )


def test_node_id_minus_one_means_none() -> None:
    assert parse_status_json(doc({"name": "r0", "node-id": -1})).resources[0].node_id is None


@pytest.mark.parametrize(
    ("resource", "why"),
    [
        ({"role": "Primery"}, "unknown role"),
        ({"role": 1}, "expected str"),
        ({"name": ["r0"]}, "expected str"),
        ({"devices": [{"volume": "0"}]}, "expected int"),
        ({"devices": [{"volume": True}]}, "expected int"),
        ({"devices": [{"client": 0}]}, "expected bool"),
        ({"devices": [{"disk-state": "Detached"}]}, "unknown disk state"),
        ({"devices": {}}, "expected an array"),
        ({"devices": [7]}, "expected an object"),
        ({"connections": [{"name": "b"}]}, "no 'connection-state'"),
        ({"connections": [{"name": "b", "connection-state": "WFConnection"}]}, "unknown connection state"),
        (
            {"connections": [{"name": "b", "connection-state": "Connected", "peer_devices": [{}]}]},
            "replication-state",
        ),
        ({"connections": [{"connection-state": "Connected", "peer_devices": {}}]}, "expected an array"),
        (
            {
                "connections": [
                    {"connection-state": "Connected", "peer_devices": [{"replication-state": "Connected"}]}
                ]
            },
            "unknown replication state",
        ),
        (
            {
                "connections": [
                    {
                        "connection-state": "Connected",
                        "peer_devices": [{"replication-state": "SyncSource", "percent-resync-done": 100.5}],
                    }
                ]
            },
            "percentage",
        ),
    ],
)
def test_refused_naming_where(resource: dict[str, Any], why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_status_json(doc({"name": "r0", **resource}))


def test_invalid_json_names_the_line() -> None:
    with pytest.raises(ParseError) as caught:
        parse_status_json('[\n{\n  "name": "r0",\n  "role": Primary\n}\n]\n')
    assert caught.value.line_no == 4
    assert caught.value.line == '  "role": Primary'


@pytest.mark.parametrize("text", ['{"name": "r0"}', "null", "", "[1]"])
def test_not_an_array_of_resources(text: str) -> None:
    with pytest.raises(ParseError):
        parse_status_json(text)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


def _json_outcome(text: str) -> object:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return _INVALID


@given(JSON_VALUES.map(json.dumps) | st.text(alphabet=' \t\n[]{}",:01.eE-+truefalsn\\u\ufeff', max_size=20))
def test_the_c_scanner_alone_reads_what_json_loads_reads(text: str) -> None:
    """parse_status_json decodes without the json package (its import costs a monitor milliseconds)."""
    assert _scan(text) == _json_outcome(text)
