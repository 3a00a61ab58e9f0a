# SPDX-License-Identifier: GPL-2.0-or-later
"""`python -m bench`: the side-by-side benchmarks; writes bench/results.md (numbers, machine, method).
Needs root (lab namespaces) and the Debian packages of ./run setup.

    python -m bench                      # everything, full run (by hand: about an hour on 2 cores)
    python -m bench --quick              # few runs of everything (what CI could afford)
    python -m bench --only monitor,scale # a subset: startup, monitor, scale, move, dataplane
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.report import section, table

PARTS = ("startup", "monitor", "scale", "move", "dataplane")
OUT = Path(__file__).resolve().parent / "results.md"


@dataclass(frozen=True)
class Plan:
    rounds: int
    warmup: int
    census_runs: int
    scale_points: tuple[int, ...]
    scale_rounds: int
    move_repeats: int


QUICK = Plan(rounds=5, warmup=1, census_runs=2, scale_points=(1, 10), scale_rounds=3, move_repeats=1)
FULL = Plan(
    rounds=30,
    warmup=3,
    census_runs=5,
    scale_points=(1, 10, 50, 100),
    scale_rounds=10,
    move_repeats=3,
)


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few runs (CI-sized)")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help="the Markdown report (default bench/results.md)"
    )
    parser.add_argument("--prefix", default=os.environ.get("TANDEM_LAB_PREFIX", "tlb"), help="lab prefix")
    parser.add_argument(
        "--keep", action="store_true", help="leave the monitor lab running (move, if run, replaces it)"
    )
    args = parser.parse_args(argv)
    only = [p for p in args.only.split(",") if p]
    unknown = set(only) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        parser.error("needs root (the lab's namespaces)")
    plan = QUICK if args.quick else FULL
    sections = run(plan, only, args.prefix, args.keep)
    args.out.write_text(render(plan, args.quick, only, sections))
    log(f"wrote {args.out}")
    return 0


def run(plan: Plan, only: Sequence[str], prefix: str, keep: bool) -> list[str]:
    from bench import monitor, move, scale, startup, testbed

    sections = []
    if {"startup", "monitor", "scale"} & set(only):
        log(f"bench lab {prefix}: up")
        bed = testbed.up(prefix)
        try:
            real_ms = None
            if "startup" in only:
                log("reference: bare process start")
                md, real_ms = startup.run(bed, plan.rounds, log)
                sections.append(md)
            settings = monitor.Settings(plan.rounds, plan.warmup, plan.census_runs, real_ms)
            if "monitor" in only:
                log("monitor, both pairs")
                sections.append(monitor.run(bed, settings, log)[1])
            if "scale" in only:
                log("monitor cost by number of DRBD resources")
                few = monitor.Settings(plan.scale_rounds, 1, 1, real_ms)
                sections.append(scale.run(bed, plan.scale_points, few, log))
        finally:
            if not keep:
                testbed.down(bed)
    if "move" in only:
        from lab.cluster import LabConfig, teardown

        base = LabConfig.from_env(prefix=prefix)
        teardown(base)
        log("live move and failover, both pairs")
        sections.append(move.run(base, testbed.work_dir(prefix), plan.move_repeats, log))
    if "dataplane" in only:
        from bench import dataplane

        log("the DRBD emulator's data plane")
        sections.append(dataplane.measure())
    return sections


def render(plan: Plan, quick: bool, only: Sequence[str], sections: Sequence[str]) -> str:
    from lab.accel import detect

    from bench import machine

    accel = detect()
    header = (
        "# tandem side by side: first measurements\n\n"
        "Written by `python -m bench"
        + (" --quick" if quick else "")
        + (f" --only {','.join(only)}" if list(only) != list(PARTS) else "")
        + f"` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Every number below comes from "
        "that one run on this one machine: ours and the anchor of each pair ran in the same lab, "
        "against the same emulated DRBD state and the same running guest, interleaved. These are "
        "measurements, not targets: nothing asserts on them.\n"
    )
    mach = section(
        "Machine",
        table(["", ""], [[k, v] for k, v in machine.describe(f"{accel.kind.upper()} ({accel.reason})")]),
    )
    method = section(
        "Method",
        "- Lab: a 2-node Corosync 3 + Pacemaker 2.1 cluster in namespaces on this host (lab/), STONITH on, "
        "the DRBD emulator (lab/drbd_emu: fake drbdsetup/drbdadm, /proc/drbd shim) and one libvirtd per node "
        "with the lab's tiny guest. Our agents come from a private `tandem install` of this checkout, "
        "bind-mounted in the nodes over /usr/lib/ocf/resource.d/tandem and /usr/lib/ocf/lib/tandem; the "
        "anchors are Debian's, unchanged.\n"
        "- Each agent runs as pacemaker-execd runs it: its installed path, execd's own environment (read "
        "from /proc of the node's pacemaker-execd) plus the OCF variables, parameters and meta "
        "(CRM_meta_interval, CRM_meta_timeout=30000, clone meta) of a recurring monitor. The resources are "
        "in the CIB, unmanaged and without recurring operations, so the agents' cluster tools find them "
        "and Pacemaker never runs them meanwhile.\n"
        "- Timed: from posix_spawn to the reaped exit (`time.perf_counter_ns`), by a small runner inside the "
        "node (bench/spawn.py), so no nsenter sits in the measurement. Runs of both agents alternate, the "
        "order rotating per round; warm-up rounds are discarded. Statistics: median and p90 (linear "
        "interpolation), spread as IQR and min–max.\n"
        f"- This run: {plan.rounds} rounds, {plan.warmup} warm-up, {plan.census_runs} traced monitors per "
        f"agent for the counts, scaling points "
        f"{', '.join(map(str, plan.scale_points))} with {plan.scale_rounds} rounds, {plan.move_repeats} "
        "move/failover repetition(s) per pair.\n"
        "- The machine is shared with other work (see the load average): the interleaving and the paired "
        "ratios are there so that load changes hit both agents alike.",
    )
    reading = section(
        "How to read this",
        "- The DRBD tools in the lab are the emulator's Python fakes, 10-30 times slower than the real "
        "ones, and the anchor makes more DRBD calls than ours: the raw monitor wall times favour ours. "
        "Compare the agents on the emulator-share section, which takes the fakes' time out and adds a "
        "real tool's start back.\n"
        "- Peak RSS is that of the largest single process of a monitor's tree; an emulator call (a Python "
        "process) can be that process, for either agent.\n"
        "- CIB updates count real changes of the CIB; a write request of an unchanged transient attribute "
        "ends in attrd without one.\n"
        "- Live move and failover run the guest on the accelerator shown above, timed by a 0.5 s crm_mon "
        "poll; the pacemaker.log rows have millisecond stamps. Few repetitions: the min–max ranges say "
        "how far to trust a ratio.",
    )
    return "\n".join([header, mach, method, reading, *sections])


if __name__ == "__main__":
    sys.exit(main())
