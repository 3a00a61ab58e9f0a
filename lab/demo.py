# SPDX-License-Identifier: GPL-2.0-or-later
"""`python3 -m lab demo`: tandem's main job, end to end, on a lab cluster built for the occasion.

A 2-node Pacemaker cluster with STONITH, a dual-primary DRBD promotable clone (ocf:tandem:drbd on the DRBD
emulator) and a real QEMU guest under libvirt (ocf:tandem:domain) on it, configured with the README's crm
block; then, in order (lab.scenarios): live migration there and back with crm resource move / clear, a power
cut of the VM's node (fencing, restart on the survivor, resync when it returns), a network partition (fence
race, fencing constraint, healing, constraint cleared). It prints one line per step, then the timeline of
what Pacemaker did (lab.timeline, from the cluster's own logs), and writes report.md + timeline.png into the
report directory. The lab is always torn down, on failure and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from lab import timeline
from lab.cluster import LabConfig, LabError
from lab.scenarios import (
    Failover,
    Move,
    Partition,
    ScenarioError,
    VmCluster,
    live_migration,
    node_failure,
    partition,
)

TITLE = "tandem demo: live migration, power cut, network partition"


class Run:
    """What the demo measured, filled in as it goes (a failed run reports what it got)."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.up_s = 0.0
        self.accel = ""
        self.phases: list[timeline.Phase] = []
        self.moves: list[Move] = []
        self.failover: Failover | None = None
        self.partition: Partition | None = None
        self.doubles = 0
        self.samples = 0
        self.error = ""
        self.total_s = 0.0

    def summary(self) -> list[str]:
        lines = []
        for m in self.moves:
            lines.append(
                f"live migration {m.source} → {m.target}: {m.wall_s:.1f} s from `crm resource move` to vm1 "
                f"started on {m.target} (libvirt job {m.libvirt_ms} ms, guest paused {m.downtime_ms} ms, "
                f"{m.heartbeat_gaps} guest heartbeats lost)"
            )
        if (f := self.failover) is not None:
            lines.append(
                f"power cut of {f.victim}: fenced after {f.fenced_s:.0f} s, vm1 started on {f.survivor} "
                f"after {f.restarted_s:.1f} s, the guest alive after {f.guest_s:.1f} s and found generation "
                f"{f.gen_found} on {f.survivor}'s own copy (had acknowledged {f.gen_before}); "
                f"{f.victim} back after {f.returned_s:.1f} s, {f.resync_kib} KiB resynced, all healthy after "
                f"{f.healthy_s:.1f} s; then each node's own copy held "
                + ", ".join(f"generation {g} ({n})" for n, g in sorted(f.copies.items()))
            )
        if (p := self.partition) is not None:
            where = "restarted on the winner" if p.vm_moved else "kept running on the winner"
            lines.append(
                f"network partition: {p.fenced} lost the fence race ({p.fenced_s:.0f} s), tandem-fence-r0 "
                f"placed after {p.constraint_s:.1f} s; healed at {p.healed_s:.1f} s, constraint cleared at "
                f"{p.cleared_s:.1f} s; vm1 {where} (generation {p.gen_before} → {p.gen_after})"
            )
        if self.samples:
            lines.append(
                f"two QEMUs of vm1 outside the migration windows: {self.doubles} of {self.samples} samples"
            )
        lines.append(
            f"total {self.total_s:.0f} s (lab up {self.up_s:.1f} s), guest under {self.accel or '?'}"
        )
        if self.error:
            lines.append(f"FAILED: {self.error}")
        return lines


def scenario(run: Run, vc: VmCluster, title: str, step: object) -> object:
    start = time.time()
    try:
        return step(vc)  # type: ignore[operator]
    finally:
        run.phases.append(timeline.Phase(title, start, time.time()))


def write_report(run: Run, vc: VmCluster | None, work: Path, out: Path) -> str:
    """The timeline from the collected logs: printed, and written as report.md + timeline.png in `out`."""
    logs = work / "logs"
    year = time.gmtime(run.t0).tm_year
    events = timeline.parse_logs(timeline.read_logs(logs), year)
    marks = vc.marks if vc is not None else []
    history_file, cib_file = logs / "stonith-history.txt", logs / "cib.xml"
    history = timeline.parse_history(history_file.read_text()) if history_file.exists() else []
    left = timeline.constraints_left(cib_file.read_text()) if cib_file.exists() else ["(no CIB collected)"]
    rows = timeline.table([e for e in events if e.t >= run.t0], marks, run.t0)
    end = time.time()
    spans = timeline.spans(events, end)
    lanes = ["node1 power", "node2 power", "vm1 QEMU node1", "vm1 QEMU node2", "ops node1", "ops node2"]
    lanes.append("constraints")
    if vc is not None and vc.observer is not None:
        samples = vc.observer.samples
        spans += timeline.presence([(s.t, s.on) for s in samples], "{name} power", end)
        spans += timeline.presence([(s.t, frozenset(s.qemu)) for s in samples], "vm1 QEMU {name}", end)
    out.mkdir(parents=True, exist_ok=True)
    timeline.plot(out / "timeline.png", spans, events, marks, run.phases, run.t0, lanes)
    numbered = [f"{n}. at {t - run.t0:.1f}s: {text}" for n, (t, text) in enumerate(marks, 1)]
    md = timeline.markdown(TITLE, run.summary(), run.phases, rows, run.t0, history, left, "timeline.png")
    md += "\n## The scenario's actions (numbered lines in the plot)\n\n" + "\n".join(numbered) + "\n"
    (out / "report.md").write_text(md)
    return timeline.text_timeline(rows)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python3 -m lab demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--report", default="report", type=Path, help="where report.md and timeline.png go")
    p.add_argument("--prefix", help="the lab's namespace prefix (default $TANDEM_LAB_PREFIX or tdemo)")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    config = LabConfig.from_env(prefix=args.prefix or os.environ.get("TANDEM_LAB_PREFIX") or "tdemo")
    work = Path(f"/tmp/{config.prefix}-vm")
    run = Run()
    vc: VmCluster | None = None
    print(
        f"tandem demo: a 2-node lab cluster ({config.prefix}), DRBD, a QEMU guest; report in {args.report}/"
    )
    try:
        with VmCluster.start(config, work, lambda line: print(line, flush=True)) as vc:
            from lab.accel import detect

            run.up_s, run.accel = time.time() - run.t0, detect().kind
            run.phases.append(timeline.Phase("set-up", run.t0, time.time()))
            run.moves = scenario(run, vc, "1. live migration", live_migration)  # type: ignore[assignment]
            run.failover = scenario(run, vc, "2. power cut", node_failure)  # type: ignore[assignment]
            run.partition = scenario(run, vc, "3. network partition", partition)  # type: ignore[assignment]
            if vc.observer is not None:
                run.samples = len(vc.observer.samples)
                run.doubles = len(vc.observer.doubles(vc.migration_windows))
            vc.say("tearing the lab down")
    except (ScenarioError, LabError, KeyboardInterrupt) as exc:
        run.error = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc).splitlines()[0]
    run.total_s = time.time() - run.t0
    try:
        text = write_report(run, vc, work, args.report)
    except Exception as exc:  # the report is a by-product: never hide the demo's own result behind it
        print(f"demo: no report: {exc!r}", file=sys.stderr)
        text = ""
    print("\nTimeline (from the cluster's logs; t = seconds since the demo started):")
    print(text)
    print("\nSummary:")
    print("\n".join(f"  {line}" for line in run.summary()))
    print(f"\nReport: {args.report / 'report.md'} and {args.report / 'timeline.png'}")
    return 1 if run.error else 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
