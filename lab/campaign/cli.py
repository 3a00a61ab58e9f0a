# SPDX-License-Identifier: GPL-2.0-or-later
"""`python3 -m lab campaign`: the fault campaign from the command line (as root, like every lab command).

  python3 -m lab campaign --runs 20 --seed 1000 --agents tandem [--faults power-cut,partition,...]
  python3 -m lab campaign --agents anchors --faults power-cut --replay 1003     one run again, by its seed
  python3 -m lab campaign --nodes 3 --shape three-data --runs 10 --seed 2000     three nodes, all with data
  python3 -m lab campaign --shrink tandem-9003              the smallest schedule that still fails
  python3 -m lab campaign --report                          only docs/campaign.md from runs.jsonl
Runs already in OUT/runs.jsonl are skipped, so the same command resumes a campaign; --minutes bounds a batch
(the lab lock is shared). Replays go to OUT/replays.jsonl. Ctrl-C tears the cluster down (exit 130).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from lab.campaign.runner import AGENTS, Plan, campaign, seeds_for, sigterm_as_interrupt
from lab.campaign.schedule import KINDS, validate
from lab.netns import TOP

if TYPE_CHECKING:
    from lab.cluster import LabConfig

OUT = TOP / "docs" / "campaign"
DOC = TOP / "docs" / "campaign.md"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m lab campaign", description=__doc__.split("\n", 1)[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--agents", choices=AGENTS, default="tandem")
    p.add_argument("--faults", default=",".join(KINDS), help=f"comma-separated, from: {', '.join(KINDS)}")
    p.add_argument(
        "--nodes",
        type=int,
        default=2,
        choices=[2, 3],
        help="nodes per cluster: 2, or 3 (of --shape)",
    )
    p.add_argument(
        "--shape",
        choices=["tiebreaker", "three-data"],
        default="tiebreaker",
        help="of three nodes: the README's two data nodes and a diskless tiebreaker, or three data nodes",
    )
    p.add_argument("--out", type=Path, default=OUT, help="where runs.jsonl goes (default docs/campaign)")
    p.add_argument("--replay", type=int, metavar="SEED", help="run this one seed again (into replays.jsonl)")
    p.add_argument(
        "--shrink", metavar="RUN", help="shrink a failing run of OUT/runs.jsonl (into shrinks.jsonl)"
    )
    p.add_argument("--minutes", type=float, default=9.0, help="start no run after this long")
    p.add_argument("--prefix", help="lab prefix (default $TANDEM_LAB_PREFIX or tcamp)")
    p.add_argument("--report", action="store_true", help="only write docs/campaign.md from OUT/runs.jsonl")
    p.add_argument(
        "--rejudge",
        action="store_true",
        help="recompute the verdicts of OUT/runs.jsonl from the kept histories",
    )
    return p


def main(argv: list[str]) -> int:
    """The command; Ctrl-C (or SIGTERM) ends it with one line, once the lab is torn down."""
    try:
        return command(argv)
    except KeyboardInterrupt:
        print("campaign: interrupted; the lab is torn down, the runs recorded are kept", file=sys.stderr)
        return 130


def command(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.rejudge:
        from lab.campaign.runner import rejudge

        kept, dropped = rejudge(args.out)
        print(f"rejudged {kept} runs, dropped {dropped} without a history (they run again)")
    if args.report or args.rejudge:
        from lab.campaign.report import write

        print(write(args.out, DOC))
        return 0
    from lab.cluster import LabConfig

    try:
        kinds = validate(tuple(k for k in args.faults.split(",") if k))
    except ValueError as exc:
        print(f"campaign: {exc}", file=sys.stderr)
        return 2
    base = LabConfig.from_env(prefix=args.prefix or None, nodes=args.nodes)
    if base.prefix == "tlab" and args.prefix is None:
        base = LabConfig.from_env(prefix="tcamp", nodes=args.nodes)
    if args.shrink:
        return shrink_run(args.out, args.shrink, base)
    shape = args.shape if args.nodes == 3 else ""
    replay = args.replay is not None
    plan = Plan(
        agents=args.agents,
        seeds=(args.replay,) if replay else seeds_for(args.seed, args.runs),
        kinds=kinds,
        out=args.out,
        minutes=args.minutes,
        runs_file="replays.jsonl" if replay else "runs.jsonl",
        shape=shape,
    )
    with sigterm_as_interrupt():
        campaign(plan, base, Path(f"/tmp/{base.prefix}-campaign"), lambda line: print(line, flush=True))
    return 0


def shrink_run(out: Path, run: str, base: LabConfig) -> int:
    from lab.campaign import shrink
    from lab.campaign.report import load

    record = next((r for r in load(out / "runs.jsonl") if r["run"] == run and r["violations"]), None)
    if record is None:
        print(f"campaign: no failing run {run} in {out / 'runs.jsonl'}", file=sys.stderr)
        return 2
    base = replace(base, nodes=int(record.get("nodes", 2)))  # the cluster the run had
    with sigterm_as_interrupt():
        result = shrink.shrink(record, base, Path(f"/tmp/{base.prefix}-campaign"), print)
    shrink.save(out, result)
    print(f"shrunk {run} to: {result['shrunk']}")
    return 0
