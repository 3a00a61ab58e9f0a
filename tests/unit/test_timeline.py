# SPDX-License-Identifier: GPL-2.0-or-later
"""lab.timeline on pacemaker.log lines recorded in the demo's lab (Pacemaker 2.1.5, Debian 12)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lab.timeline import (
    Event,
    Phase,
    Span,
    constraints_left,
    markdown,
    parse_history,
    parse_line,
    parse_logs,
    parse_time,
    plot,
    presence,
    spans,
    table,
)

YEAR = 2026

# Recorded in the demo's lab: node2 was the DC during the migration, node1 after the power cut of node2.
DATA = Path(__file__).parent / "data" / "timeline"
NODE2_LOG = (DATA / "node2-pacemaker.log").read_text()
NODE1_LOG = (DATA / "node1-pacemaker.log").read_text()
NODE2_LATER = (DATA / "node2-later-pacemaker.log").read_text()
HISTORY = (DATA / "stonith-history.txt").read_text()


def at(stamp: str) -> float:
    return datetime.strptime(f"{YEAR} {stamp}", "%Y %b %d %H:%M:%S.%f").timestamp()


def one(line_start: str, log: str = NODE1_LOG + NODE2_LOG) -> Event:
    line = next(ln for ln in log.splitlines() if ln.startswith(line_start))
    event = parse_line(line, YEAR)
    assert event is not None, line
    return event


def test_time_is_the_local_stamp_with_its_milliseconds() -> None:
    assert parse_time("Nov", "22", "00:34:46.914", YEAR) == pytest.approx(at("Nov 22 00:34:46.914"))
    assert parse_time("Nov", "2", "00:34:46", YEAR) == datetime(YEAR, 11, 2, 0, 34, 46).timestamp()


@pytest.mark.parametrize(
    ("start", "kind", "subject", "where", "op", "text"),
    [
        ("Nov 22 00:34:37.774 node2", "decision", "vm1", "", "Migrate", "Migrate vm1 (node2 -> node1)"),
        ("Nov 22 00:34:32.694 node2", "decision", "drbd-r0:0", "", "Start", "Start drbd-r0:0 (node2)"),
        ("Nov 22 00:34:37.782 node2", "initiate", "vm1", "node2", "migrate_to", "migrate_to vm1 on node2"),
        ("Nov 22 00:34:49.186 node1", "initiate", "drbd-r0", "node2", "start", "start drbd-r0 on node2"),
        (
            "Nov 22 00:34:38.734 node1",
            "result",
            "vm1",
            "node1",
            "migrate_from",
            "migrate_from vm1 on node1: ok",
        ),
        ("Nov 22 00:34:45.942 node1 pacemaker-controld", "member", "node2", "", "lost", "node2 lost"),
        (
            "Nov 22 00:34:45.974 node1",
            "decision",
            "node2",
            "",
            "Fence",
            "Fence (reboot) node2 'peer is no longer part of the cluster'",
        ),
        (
            "Nov 22 00:34:44.290 node1",
            "fence-request",
            "node2",
            "node1",
            "off",
            "stonith_admin asks to fence (off) node2",
        ),
        (
            "Nov 22 00:34:45.994 node1",
            "fence-done",
            "node2",
            "node1",
            "off",
            "off of node2 by node1 for stonith_admin: OK",
        ),
        (
            "Nov 22 00:34:46.022 node1",
            "constraint-add",
            "tandem-fence-r0",
            "",
            "add",
            "constraint tandem-fence-r0 placed",
        ),
        (
            "Nov 22 00:34:49.674 node1",
            "constraint-del",
            "tandem-fence-r0",
            "",
            "del",
            "constraint tandem-fence-r0 removed",
        ),
    ],
)
def test_each_kind_of_line(start: str, kind: str, subject: str, where: str, op: str, text: str) -> None:
    e = one(start)
    assert (e.kind, e.subject, e.where, e.op, e.text) == (kind, subject, where, op, text)
    assert e.node == start.split()[3]


# Recorded in campaign run tandem-17200: node1's fencer ran the device for node2's request, whose reply a
# cluster cut then lost (node2 timed the operation out a minute later).
FENCE_RAN = (
    "Nov 30 20:27:54.907 node1 pacemaker-fenced    [82] (log_async_result) \tnotice: "
    "Operation 'reboot' [265] targeting node3 using lab-fence returned 0 | call 5 from pacemaker-controld.86"
)


def test_a_device_that_fenced_is_a_fencing_even_if_the_requester_never_heard_of_it() -> None:
    e = parse_line(FENCE_RAN, YEAR)
    assert e is not None and (e.kind, e.subject, e.where, e.op) == ("fence-done", "node3", "node1", "reboot")
    assert e.text.rsplit(": ", 1)[-1].startswith("OK")  # what the campaign counts as a fencing
    failed = FENCE_RAN.replace("returned 0", "returned 1 (unable to connect)")
    assert parse_line(failed, YEAR) is None
    assert parse_line(FENCE_RAN.replace("'reboot'", "'monitor'"), YEAR) is None


# Recorded in campaign run tandem-18505: node1's controller, started again, was partitioned from the DC
# before it joined; it became DC of its side and finished a join round alone.
JOIN_LINES = (
    "Dec 02 01:26:57.871 node1 pacemaker-controld  [89] (do_state_transition) \tnotice: State transition "
    "S_STARTING -> S_PENDING | input=I_PENDING cause=C_FSA_INTERNAL origin=do_started",
    "Dec 02 01:26:30.199 node2 pacemaker-controld  [88] (do_state_transition) \tnotice: State transition "
    "S_PENDING -> S_NOT_DC | input=I_NOT_DC cause=C_HA_MESSAGE origin=do_cl_join_finalize_respond",
    "Dec 02 01:27:00.451 node1 pacemaker-controld  [89] (do_state_transition) \tinfo: State transition "
    "S_FINALIZE_JOIN -> S_POLICY_ENGINE | input=I_FINALIZED cause=C_FSA_INTERNAL origin=check_join_state",
)


def test_a_controllers_join_after_its_start_is_read_from_its_own_log() -> None:
    events = [parse_line(line, YEAR) for line in JOIN_LINES]
    assert [(e.kind, e.subject, e.op) for e in events if e is not None] == [
        ("join", "node1", "joining"),
        ("join", "node2", "joined"),
        ("dc-join", "node1", "joined"),
    ]
    other = JOIN_LINES[0].replace("S_STARTING -> S_PENDING", "S_NOT_DC -> S_PENDING")  # a new election
    assert parse_line(other, YEAR) is None


def test_a_degraded_monitor_is_shown_a_steady_or_cancelled_one_is_not() -> None:
    e = one("Nov 22 00:34:46.126 node1")
    assert e.kind == "result" and e.op == "monitor" and "degraded: peer node2 disconnected" in e.text
    assert parse_line(NODE2_LOG.splitlines()[4], YEAR) is None  # Cancelled


@pytest.mark.parametrize(
    "start",
    [
        "Nov 22 00:34:32.758 node1",  # a probe requested locally
        "Nov 22 00:34:49.518 node1",  # a notify: not one of the operations the timeline shows
        "Nov 22 00:34:45.942 node1 pacemaker-attrd",  # membership as every daemon logs it: controld's only
        "Nov 22 00:34:49 drbd",  # an agent's own line (no milliseconds, no daemon)
    ],
)
def test_lines_the_timeline_leaves_out(start: str) -> None:
    line = next(ln for ln in (NODE1_LOG + NODE2_LOG).splitlines() if ln.startswith(start))
    assert parse_line(line, YEAR) is None


def test_events_of_all_nodes_in_order_each_once() -> None:
    events = parse_logs([NODE2_LOG, NODE1_LOG], YEAR)
    assert [e.t for e in events] == sorted(e.t for e in events)
    added = [e for e in events if e.kind == "constraint-add"]
    # cli-prefer-vm1 is logged by both nodes' CIB managers: once; node2's replay of tandem-fence-r0 when it
    # rejoined (the constraint was already there) is no new placement
    assert [(e.subject, e.node, e.t) for e in added] == [
        ("cli-prefer-vm1", "node1", at("Nov 22 00:34:37.762")),
        ("tandem-fence-r0", "node1", at("Nov 22 00:34:46.022")),
    ]
    removed = [e.subject for e in events if e.kind == "constraint-del"]
    assert removed == ["cli-prefer-vm1", "tandem-fence-r0"]


def test_operations_span_from_the_dc_initiating_to_the_result_where_they_ran() -> None:
    events = parse_logs([NODE2_LOG, NODE1_LOG, NODE2_LATER], YEAR)
    end = at("Nov 22 00:35:00.000")
    got = {(s.lane, s.label): s for s in spans(events, end)}
    migrate_from = got[("ops node1", "migrate_from vm1")]
    assert (migrate_from.start, migrate_from.end) == (at("Nov 22 00:34:38.594"), at("Nov 22 00:34:38.734"))
    failed = got[("ops node2", "start drbd-r0")]
    assert failed.start == at("Nov 22 00:34:49.186") and not failed.ok
    fence = got[("constraints", "tandem-fence-r0")]
    assert (fence.start, fence.end) == (at("Nov 22 00:34:46.022"), at("Nov 22 00:34:49.674"))


def test_a_constraint_still_there_lasts_until_the_end() -> None:
    events = parse_logs([NODE1_LOG.split("Nov 22 00:34:49 drbd")[0]], YEAR)
    left = [s for s in spans(events, 99e9) if s.label == "tandem-fence-r0"]
    assert [s.end for s in left] == [99e9]


def test_fencing_history() -> None:
    got = parse_history(HISTORY)
    assert [(f.action, f.target, f.result, f.by, f.client) for f in got] == [
        ("reboot", "node2", "successful", "node1", "pacemaker-controld"),
        ("turning off", "node2", "successful", "node1", "stonith_admin"),
    ]
    assert got[0].when == "2026-11-22 00:34:53Z"


def test_presence_spans_from_samples() -> None:
    both, one_ = frozenset({"node1", "node2"}), frozenset({"node1"})
    samples = [(1.0, both), (2.0, one_), (3.0, one_), (4.0, both)]
    got = presence(samples, "{name} power", 5.0)
    assert [(s.lane, s.start, s.end) for s in got] == [
        ("node1 power", 1.0, 5.0),
        ("node2 power", 1.0, 2.0),
        ("node2 power", 4.0, 5.0),
    ]


def test_constraints_left_in_a_cib() -> None:
    cib = '<cib><configuration><constraints><rsc_location id="cli-ban-vm1-on-node1"/></constraints>'
    cib += "</configuration></cib>"
    assert constraints_left(cib) == ["cli-ban-vm1-on-node1"]
    assert constraints_left("<cib><configuration><constraints/></configuration></cib>") == []


def test_a_fence_device_kept_off_its_target_is_configuration_not_a_leftover() -> None:
    config = (
        '<configuration><resources><primitive id="fence-node1" class="stonith" type="fence_ipmilan"/>'
        '<primitive id="vm1" class="ocf" provider="tandem" type="domain"/></resources><constraints>'
        '<rsc_location id="fence-node1-not-on-node1" rsc="fence-node1" node="node1" score="-INFINITY"/>'
        '<rsc_location id="cli-ban-vm1-on-node1" rsc="vm1" node="node1" score="-INFINITY"/>'
        "</constraints></configuration>"
    )
    assert constraints_left(config) == ["cli-ban-vm1-on-node1"]


def test_report_puts_each_row_under_its_phase() -> None:
    events = parse_logs([NODE2_LOG, NODE1_LOG], YEAR)
    t0 = at("Nov 22 00:34:30.000")
    marks = [
        (at("Nov 22 00:34:37.500"), "crm resource move vm1 node1"),
        (at("Nov 22 00:34:44.000"), "power cut"),
    ]
    rows = table(events, marks, t0)
    phases = [Phase("1. live migration", t0 + 7, t0 + 12), Phase("2. power cut", t0 + 13, t0 + 20)]
    md = markdown("t", ["a summary line"], phases, rows, t0, parse_history(HISTORY), [], "timeline.png")
    first, second = md.split("## 1. live migration")[1].split("## 2. power cut")
    assert "| 7.50 | scenario | crm resource move vm1 node1 |" in first
    assert "Migrate vm1 (node2 -> node1)" in first and "Fence (reboot)" not in first
    assert "Fence (reboot) node2" in second and "| turning off | node2 | successful |" in second
    assert md.rstrip().endswith("none") and "- a summary line" in md and "![timeline](timeline.png)" in md


def test_plot_writes_a_png(tmp_path: Path) -> None:
    events = parse_logs([NODE2_LOG, NODE1_LOG], YEAR)
    t0 = at("Nov 22 00:34:30.000")
    lanes = ["node1 power", "node2 power", "ops node1", "ops node2", "constraints"]
    power = [Span(t0, t0 + 15, "node1 power", "node1"), Span(t0, t0 + 14, "node2 power", "node2")]
    out = plot(tmp_path / "t.png", power + spans(events, t0 + 20), events, [(t0 + 7, "m")], [], t0, lanes)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


KINDS = {"decision", "initiate", "result", "fence-request", "fence-done", "member", "constraint-add"}
KINDS |= {"constraint-del"}


@given(st.text(max_size=300))
def test_no_line_breaks_the_parser(text: str) -> None:
    event = parse_line(text, YEAR)
    assert event is None or event.kind in KINDS


@given(st.sampled_from((NODE1_LOG + NODE2_LOG).splitlines()), st.integers(0, 200), st.text(max_size=5))
def test_damaged_recorded_lines_parse_or_are_left_out(line: str, cut: int, junk: str) -> None:
    damaged = line[:cut] + junk + line[cut + len(junk) :]
    event = parse_line(damaged, YEAR)  # an Event or None: a damaged date must not raise
    assert event is None or event.kind in KINDS


def test_a_constraint_placed_and_removed_twice_in_quick_succession() -> None:
    """crm resource move / clear there and back: every change logged by both nodes' CIB managers."""
    add = "Nov 22 00:43:{} {} pacemaker-based     [75] (cib_perform_op) \tinfo: ++ /cib/configuration/"
    add += 'constraints:  <rsc_location id="cli-prefer-vm1" rsc="vm1" role="Started" node="node1"/>'
    rm = "Nov 22 00:43:{} {} pacemaker-based     [75] (cib_perform_op) \tinfo: -- /cib/configuration/"
    rm += "constraints/rsc_location[@id='cli-prefer-vm1']"
    stamps = [(add, "32.422"), (rm, "34.118"), (add, "34.554"), (rm, "35.870")]
    logs = ["\n".join(fmt.format(t, node) for fmt, t in stamps) for node in ("node1", "node2")]
    got = [(s.start, s.end) for s in spans(parse_logs(logs, YEAR), 99e9)]
    assert got == [
        (at("Nov 22 00:43:32.422"), at("Nov 22 00:43:34.118")),
        (at("Nov 22 00:43:34.554"), at("Nov 22 00:43:35.870")),
    ]
