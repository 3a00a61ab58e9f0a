# SPDX-License-Identifier: GPL-2.0-or-later
"""Live move and failover, both pairs, on the demo's cluster (lab.scenarios.VmCluster and its scenarios).

Each pair gets a fresh cluster built the same way: the README's crm block for ours; for the anchors the very
same block with only the agent types swapped (ocf:linbit:drbd, ocf:heartbeat:VirtualDomain take the same
parameter names) and drbd.conf's handlers drbd-utils' own crm-fence-peer.9.sh/crm-unfence-peer.9.sh, as
DRBD's user guide configures them for Pacemaker (lab.scenarios.ANCHOR_HANDLERS).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.cluster import LabConfig
from lab.scenarios import (
    ANCHOR_HANDLERS,
    VM,
    Failover,
    Move,
    VmCluster,
    crm_block,
    live_migration,
    node_failure,
)
from lab.timeline import Span

from bench.report import section, table, times
from bench.stats import ratio, summarize

ANCHOR_TYPES = {"ocf:tandem:drbd": "ocf:linbit:drbd", "ocf:tandem:domain": "ocf:heartbeat:VirtualDomain"}


def swap(text: str, table_: dict[str, str]) -> str:
    for old, new in table_.items():
        text = text.replace(old, new)
    return text


def anchor_crm(ours: str) -> str:
    swapped = swap(ours, ANCHOR_TYPES)
    if swapped == ours:
        raise ValueError("the crm block names neither ocf:tandem:drbd nor ocf:tandem:domain")
    return swapped


class AnchorCluster(VmCluster):
    """The demo's cluster with drbd-utils' handlers in drbd.conf."""

    drbd_handlers = ANCHOR_HANDLERS


@dataclass(frozen=True)
class FromLogs:
    """What the cluster's own log says about one move or failover (pacemaker.log, millisecond stamps)."""

    ops_s: float | None  # the agents' operations: migrate_to + migrate_from, or the start on the survivor
    done_s: float | None  # from the move command / power cut to the last of those operations' result


@dataclass(frozen=True)
class PairRuns:
    label: str
    moves: tuple[Move, ...]
    failovers: tuple[Failover, ...]
    move_logs: tuple[FromLogs, ...]
    fail_logs: tuple[FromLogs, ...]
    accel: str


def from_logs(spans: Sequence[Span], t0: float, until: float, labels: Sequence[str]) -> FromLogs:
    """The operations (by span label, e.g. "migrate_to vm1") initiated between t0 and `until`: their
    summed durations, and t0 to the last one's result."""
    got = [s for s in spans if s.label in labels and t0 <= s.start <= until]
    if not got:
        return FromLogs(None, None)
    return FromLogs(sum(s.end - s.start for s in got), max(s.end for s in got) - t0)


def read_spans(vc: VmCluster) -> list[Span]:
    from lab.timeline import parse_logs, read_logs, spans

    vc.collect(vc.work / "bench-logs")
    year = time.gmtime().tm_year
    return spans(parse_logs(read_logs(vc.work / "bench-logs"), year), time.time())


def check_agents(vc: VmCluster, want: Sequence[str]) -> None:
    """The cluster runs the agents this pair is about (a wrong swap would compare ours with ours)."""
    state = vc.lab.state()
    running = sorted({r.agent for r in state.resources if r.id in (VM, "drbd-r0")}) if state else []
    if running != sorted(want):
        raise RuntimeError(f"expected the agents {sorted(want)}, the cluster runs {running}")


def run_pair(
    label: str,
    cls: type[VmCluster],
    crm: str,
    base: LabConfig,
    work: Path,
    repeats: int,
    log: Callable[[str], None],
) -> PairRuns:
    from lab.accel import detect

    moves: list[Move] = []
    fails: list[Failover] = []
    with cls.start(base, work, log, crm=crm) as vc:
        check_agents(vc, [w.split()[2] for w in crm.splitlines() if w.startswith("primitive ")])
        for _ in range(repeats):
            moves += live_migration(vc)
        for _ in range(repeats):
            fails.append(node_failure(vc))
        spans = read_spans(vc)
    migrations = [f"migrate_to {VM}", f"migrate_from {VM}", f"stop {VM}"]  # stop: on the source, after
    # an operation belongs to the move or failover in whose window it was initiated (they run back to back)
    cuts = [t for t, text in vc.marks if text.startswith("power cut of")]
    starts = [a for a, _ in vc.migration_windows]
    ends = [*starts[1:], cuts[0] if cuts else time.time()]
    move_logs = [from_logs(spans, a, b, migrations) for a, b in zip(starts, ends, strict=True)]
    fail_logs = [
        from_logs(spans, t, t + f.healthy_s, [f"start {VM}"]) for t, f in zip(cuts, fails, strict=True)
    ]
    return PairRuns(label, tuple(moves), tuple(fails), tuple(move_logs), tuple(fail_logs), detect().kind)


def run(base: LabConfig, work: Path, repeats: int, log: Callable[[str], None]) -> str:
    ours_crm = crm_block()
    pairs = [
        run_pair("ours", VmCluster, ours_crm, base, work / "move-ours", repeats, log),
        run_pair("anchor", AnchorCluster, anchor_crm(ours_crm), base, work / "move-anchor", repeats, log),
    ]
    return render(pairs, ours_crm, repeats)


def _col(values: Sequence[float | None], digits: int = 1) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "n/a"
    s = summarize(got)
    return f"{s.median:.{digits}f} ({s.minimum:.{digits}f}–{s.maximum:.{digits}f})"


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return summarize(got).median if got else None


Getter = Callable[[PairRuns], list[float | None]]
ROWS: tuple[tuple[str, int, Getter], ...] = (
    ("move: crm resource move → crm_mon shows vm1 on the target, one QEMU (s, polled every 0.5 s)", 2,
     lambda p: [m.wall_s for m in p.moves]),
    ("move: crm resource move → the source's stop done, from pacemaker.log (s)", 2,
     lambda p: [x.done_s for x in p.move_logs]),
    ("move: migrate_to + migrate_from + stop, each initiation to result, summed (s)", 2,
     lambda p: [x.ops_s for x in p.move_logs]),
    ("move: libvirt migration job (ms)", 0, lambda p: [float(m.libvirt_ms) for m in p.moves]),
    ("move: guest paused, libvirt's downtime (ms)", 0,
     lambda p: [None if m.downtime_ms is None else float(m.downtime_ms) for m in p.moves]),
    ("move: guest heartbeats lost (1/s)", 0, lambda p: [float(m.heartbeat_gaps) for m in p.moves]),
    ("failover: power cut → victim fenced (s; fence history has whole seconds)", 1,
     lambda p: [f.fenced_s for f in p.failovers]),
    ("failover: power cut → start on the survivor done, from pacemaker.log (s)", 2,
     lambda p: [x.done_s for x in p.fail_logs]),
    ("failover: the start operation on the survivor (s)", 2, lambda p: [x.ops_s for x in p.fail_logs]),
    ("failover: power cut → crm_mon shows vm1 started on the survivor (s, polled)", 1,
     lambda p: [f.restarted_s for f in p.failovers]),
    ("failover: power cut → the guest's first heartbeat on the survivor (s)", 1,
     lambda p: [f.guest_s for f in p.failovers]),
    ("failover: power cut → victim back online (s)", 1, lambda p: [f.returned_s for f in p.failovers]),
    ("failover: DRBD resync to the victim (KiB)", 0, lambda p: [float(f.resync_kib) for f in p.failovers]),
    ("failover: power cut → all healthy again (s)", 1, lambda p: [f.healthy_s for f in p.failovers]),
)  # fmt: skip


def render(pairs: Sequence[PairRuns], crm: str, repeats: int) -> str:
    ours, anchor = pairs
    rows = []
    for title, digits, get in ROWS:
        o, a = get(ours), get(anchor)
        mo, ma = _median(o), _median(a)
        rows.append(
            [
                title,
                _col(o, digits),
                _col(a, digits),
                times(ratio(mo, ma)) if mo is not None and ma else "n/a",
            ]
        )
    n_moves = f"{len(ours.moves)} / {len(anchor.moves)}"
    n_fail = f"{len(ours.failovers)} / {len(anchor.failovers)}"
    return section(
        "Live move and failover (tandem drbd+domain vs linbit drbd+VirtualDomain)",
        f"One fresh 2-node lab cluster per pair (lab.scenarios.VmCluster: STONITH, emulated dual-primary "
        f"DRBD, the guest under libvirtd, {ours.accel.upper()}). Moves: `crm resource move vm1 <other>` and "
        f"back, then `crm resource clear`, {repeats} time(s) ({n_moves} moves ours / anchor); the wall time "
        "ends when crm_mon shows vm1 started on the target and one QEMU is left. Failover: a power cut of "
        f"the node running vm1, {repeats} time(s) ({n_fail} ours / anchor); times from the cut, the victim "
        "fenced and rebooted by fence_tandemlab (or powered on by the scenario when fenced with off). "
        "Cells: median (min–max); ratio of medians ours/anchor.",
        table(["measure", "ours", "anchor", "ours/anchor"], rows, right=[3]),
        "The crm configuration (ours; the anchors' is the same with ocf:linbit:drbd and "
        "ocf:heartbeat:VirtualDomain):\n\n```\n" + crm.strip() + "\n```",
    )
