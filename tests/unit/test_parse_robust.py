# SPDX-License-Identifier: GPL-2.0-or-later
"""Garbage, damaged and truncated inputs: a ParseError or a state the input really shows, nothing else.

- any text, in any format: a Status or a ParseError, never another exception;
- a state name altered anywhere in a real output: always a ParseError (never a guessed state);
- a real output cut mid-line: a ParseError (drbdsetup and the kernel end every output with a newline);
- a real output cut at a line end: a ParseError, or the state of what is left (fewer objects, fewer
  details, never a different state). events2 is refused until its `exists -` line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tandem.drbd.model import ConnState, DiskState, ParseError, ReplState, Role, Status, to_json_dict
from tandem.drbd.parse import FORMATS, detect, parse
from tests.unit.test_parse_fixtures import EXPECTED

SETTINGS = settings(
    deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "drbd"
SAMPLES = {name: (FIXTURES / name).read_text() for name in sorted(EXPECTED) if (FIXTURES / name).is_file()}
NAMES = sorted(SAMPLES)

STATE_NAMES = sorted(
    {s.value for enum in (Role, DiskState, ConnState, ReplState) for s in enum} | {"WFConnection"}
)
STATE_WORD = re.compile(r"(?<![\w-])(" + "|".join(STATE_NAMES) + r")(?![\w-])")

# Pieces of real outputs, so that random lines reach deep into the parsers.
VOCABULARY = [
    'r0', 'bob', 'role:Primary', 'role:Secondary', 'disk:UpToDate', 'disk:Diskless',
    'peer-disk:Inconsistent', 'volume:0', 'volume:1', 'minor:7', 'node-id:1', 'connection:Connecting',
    'replication:SyncSource', 'done:37.50', 'client:yes', 'quorum:no', 'suspended:fencing',
    'peer-client:no', 'exists', 'change', 'create', 'destroy', 'resource', 'device', 'connection',
    'peer-device', '-', 'name:r0', 'peer-node-id:1', 'conn-name:bob', '1:', 'cs:Connected',
    'cs:Unconfigured', 'ro:Primary/Secondary', 'ds:UpToDate/DUnknown', 'C', 'r-----', 'ns:0',
    '[==>....]', "sync'ed:", '12.5%', 'version:', '(api:1/proto:86-101)', '{', '}', '[', ']', '"role":',
    '"name":', '"Primary",', ':', '#', '->', 'UNKNOWN->Secondary', '2026-11-21T23:22:00.538066+00:00',
    '\t',
]  # fmt: skip


def outcome(text: str, fmt: str) -> Status | None:
    """The parsed state, or None for a ParseError; any other exception fails the test."""
    try:
        return parse(text, fmt)
    except ParseError:
        return None


@st.composite
def vocabulary_text(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        indent = " " * draw(st.sampled_from([0, 0, 2, 4, 6, 8, 40]))
        lines.append(indent + " ".join(draw(st.lists(st.sampled_from(VOCABULARY), max_size=8))))
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


@SETTINGS
@given(text=st.text() | vocabulary_text(), fmt=st.sampled_from(("auto", *FORMATS)))
def test_garbage_gives_a_state_or_a_parse_error(text: str, fmt: str) -> None:
    if fmt == "auto" and not text.strip():
        with pytest.raises(ParseError):
            detect(text)
        return
    outcome(text, fmt)


@SETTINGS
@given(names=st.lists(st.sampled_from(NAMES), min_size=1, max_size=3), data=st.data())
def test_real_lines_in_any_order_give_a_state_or_a_parse_error(names: list[str], data: st.DataObject) -> None:
    lines = [line for name in names for line in SAMPLES[name].splitlines(keepends=True)]
    mixed = data.draw(st.lists(st.sampled_from(lines), max_size=30))
    for fmt in ("auto", *FORMATS):
        outcome("".join(mixed), fmt)


@SETTINGS
@given(name=st.sampled_from([n for n in NAMES if STATE_WORD.search(SAMPLES[n])]), data=st.data())
def test_an_altered_state_name_is_always_refused(name: str, data: st.DataObject) -> None:
    text = SAMPLES[name]
    words = list(STATE_WORD.finditer(text))
    word = data.draw(st.sampled_from(words))
    start, end = word.span()
    altered = data.draw(
        st.sampled_from([word[0][:-1], word[0] + "x", word[0].lower(), word[0].upper(), word[0][1:]])
    )
    assume(altered not in STATE_NAMES)
    damaged = text[:start] + altered + text[end:]
    assert outcome(damaged, EXPECTED[name]["format"]) is None


@SETTINGS
@given(name=st.sampled_from(NAMES), data=st.data())
def test_cut_mid_line_is_refused(name: str, data: st.DataObject) -> None:
    text = SAMPLES[name]
    cut = data.draw(st.integers(1, len(text) - 1))
    prefix = text[:cut]
    fmt = EXPECTED[name]["format"]
    if fmt == "json":  # a JSON document is either complete (up to trailing blanks) or invalid
        result = outcome(prefix, fmt)
        assert result is None or (not text[cut:].strip() and to_json_dict(result) == EXPECTED[name])
        return
    assume(not prefix.endswith("\n"))
    assert outcome(prefix, fmt) is None


def consistent(part: Any, whole: Any, key: str = "") -> bool:
    """`part` shows no more than `whole` does: shorter lists, unknown details, but no other value."""
    if isinstance(whole, list):
        return len(part) <= len(whole) and all(
            consistent(p, w, key) for p, w in zip(part, whole, strict=False)
        )
    if isinstance(whole, dict):
        if part.keys() != whole.keys():
            return False
        if (
            whole.get("connection", "Connected") != "Connected"
            and part["peer_devices"] != whole["peer_devices"]
        ):
            # Not connected, the text leaves peer devices out: they read Off/DUnknown, DRBD's "not known".
            unknown = all(
                (p["replication"], p["peer_disk"]) == ("Off", "DUnknown") for p in part["peer_devices"]
            )
            part = {**part, "peer_devices": []} if unknown else part
        return all(consistent(part[k], whole[k], k) for k in whole)
    if key == "done" or (key == "peer_role" and part == "Unknown"):
        return part in (None, whole, "Unknown")  # a wrapped line's tail: not known is not wrong
    return bool(part == whole)


@pytest.mark.parametrize("name", NAMES)
def test_cut_at_every_line_end(name: str) -> None:
    text = SAMPLES[name]
    fmt = EXPECTED[name]["format"]
    ends = [m.end() for m in re.finditer("\n", text)]
    for cut in ends:
        prefix = text[:cut]
        result = outcome(prefix, fmt)
        if fmt == "events2":
            assert (result is None) == ("exists -" not in prefix), prefix
        elif result is not None:
            assert consistent(to_json_dict(result), to_json_dict(parse(text, fmt))), prefix
    assert outcome(text, fmt) is not None
