# SPDX-License-Identifier: GPL-2.0-or-later
"""Real DRBD outputs from public sources that the parsers were not written against (data/drbd/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.drbd.model import ParseError, to_json_dict
from tandem.drbd.parse import detect, parse
from tests.unit.parse_expect import J, conn, dev, minor8, pd, res, status

DATA = Path(__file__).parent / "data" / "drbd"

EXPECTED: dict[str, J] = {
    "proc-drbd-8.4.11-syncsource-synctarget.txt": status(
        "proc",
        minor8(1, "Connected", "Primary", "Secondary", "UpToDate", "Inconsistent", "SyncSource", 17.9),
        minor8(2, "Connected", "Secondary", "Primary", "Inconsistent", "UpToDate", "SyncTarget", 28.9),
        version="8.4.11",
    ),
    # DRBD 9 keeps no resources in /proc/drbd.
    "proc-drbd-9.0.14.txt": status("proc", version="9.0.14-1"),
    "status-9-verbose-statistics-synctarget.txt": status(
        "status",
        res(
            "r1",
            "Secondary",
            [dev(0, 2, "Inconsistent")],
            conn("drbd2", "Connected", "Primary", pd(0, "SyncTarget", "UpToDate", 23.53)),
        ),
    ),
    "status-8.4-drbdadm-synctarget.txt": status(
        "status",
        res(
            "r0",
            "Secondary",
            [dev(0, None, "Inconsistent")],
            conn("peer", "Connected", "Primary", pd(0, "SyncTarget", "UpToDate", 6.45)),
        ),
    ),
    "status-8.4-drbdadm-both-inconsistent.txt": status(
        "status",
        res(
            "r0",
            "Secondary",
            [dev(0, None, "Inconsistent")],
            conn("peer", "Connected", "Secondary", pd(0, "Established", "Inconsistent")),
        ),
    ),
    "json-9-old-schema.json": status(
        "json",
        res(
            "1-single-0",
            "Primary",
            [dev(0, 2, "UpToDate")],
            conn(
                "SLE15-sp1-gm-drbd1145296-node2", "Connected", "Secondary", pd(0, "Established", "UpToDate")
            ),
        ),
    ),
    "events2-9-now-statistics-3node.txt": status(
        "events2",
        res(
            "drbd1",
            "Secondary",
            [dev(0, 1, "UpToDate")],
            conn("central-2004", "Connected", "Primary", pd(0, "Established", "UpToDate")),
            conn("poller-2004-1", "Connected", "Secondary", pd(0, "Established", "UpToDate")),
        ),
    ),
}

WFCONNECTION_846 = status(
    "proc",
    minor8(1, "Connecting", "Secondary", "Unknown", "Inconsistent", "DUnknown", "Off"),
    version="8.4.6",
)
STANDALONE_846 = minor8(1, "StandAlone", "Primary", "Unknown", "UpToDate", "Inconsistent", "Off")
EXPECTED |= {
    "proc-drbd-8.4.6-wfconnection.txt": WFCONNECTION_846,
    "proc-drbd-8.4.6-standalone.txt": status("proc", STANDALONE_846, version="8.4.6"),
    # what stands before the first device line does not matter when the device lines are sound
    "proc-drbd-8.4.6-header-cut.txt": WFCONNECTION_846,
    "proc-drbd-8.4.6-header-joined.txt": WFCONNECTION_846,
    "proc-drbd-8.4.6-no-header.txt": status("proc", STANDALONE_846),
    # DRBD 0.7: `st:` roles and only the local disk, as `ld:`
    "proc-drbd-0.7.19-ld.txt": status(
        "proc",
        *(
            minor8(n, cs, "Primary", peer, "Consistent", "DUnknown", repl, done)
            for n, cs, peer, repl, done in (
                (0, "Connected", "Secondary", "SyncSource", 100.0),
                (1, "Connected", "Secondary", "SyncSource", 100.0),
                (2, "Connected", "Secondary", "SyncSource", 100.0),
                (3, "Connected", "Secondary", "PausedSyncS", None),
                (4, "Connecting", "Unknown", "Off", None),
                (5, "Connecting", "Unknown", "Off", None),
                (6, "Connected", "Secondary", "Established", None),
                (7, "Connected", "Secondary", "PausedSyncS", None),
                (8, "Connecting", "Unknown", "Off", None),
            )
        ),
        version="0.7.19",
    ),
}
# Inside a device's lines the parser stays strict: a counters line wrapped by a mail client is refused.
REFUSED = {"proc-drbd-0.7.19-ld-mail-wrapped.txt": (9, "pe:0 ua:0 ap:0")}


def test_every_sample_is_checked() -> None:
    assert {p.name for p in DATA.iterdir()} - {"README.md"} == set(EXPECTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_mangled_device_lines_are_refused_naming_the_line(name: str) -> None:
    text = (DATA / name).read_text()
    assert detect(text) == "proc"
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert (caught.value.line_no, caught.value.line) == REFUSED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_output(name: str) -> None:
    text = (DATA / name).read_text()
    assert detect(text) == EXPECTED[name]["format"]
    assert to_json_dict(parse(text)) == EXPECTED[name]


def test_old_json_schema_details() -> None:
    r = parse((DATA / "json-9-old-schema.json").read_text()).resources[0]
    assert (r.node_id, r.suspended, r.quorum) == (1, (), True)
    assert r.connections[0].peer_node_id == 2
    assert r.devices[0].client is False


def test_verbose_text_details() -> None:
    r = parse((DATA / "status-9-verbose-statistics-synctarget.txt").read_text()).resources[0]
    assert (r.node_id, r.suspended, r.devices[0].quorum) == (1, (), True)
    assert r.connections[0].peer_node_id == 0
