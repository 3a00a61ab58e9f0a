# SPDX-License-Identifier: GPL-2.0-or-later
"""Shrinking a failing run: the smallest sub-schedule of its events that still makes one of its checkers
fire, found as QuickCheck and Jepsen shrink (leave one event out at a time, keep the first smaller schedule
that still fails, start again from it), each attempt a real run on one cluster.

    python3 -m lab campaign --agents tandem --shrink tandem-9003     → OUT/shrinks.jsonl, shown in the report

Timing is not reproducible, so a schedule that stops failing may only have been lucky: the report shows
every attempt with the checkers it fired, and the shrunk schedule is the smallest one seen failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lab.campaign import checkers
from lab.campaign.runner import cluster, one_run, restore
from lab.campaign.schedule import Schedule
from lab.cluster import LabConfig

MAX_ATTEMPTS = 12  # each is a run of a few minutes


def smaller(schedule: Schedule) -> Iterator[Schedule]:
    """Every schedule with one event left out (pure)."""
    for i in range(len(schedule.events)):
        yield Schedule(schedule.seed, schedule.events[:i] + schedule.events[i + 1 :])


def shrink(record: dict[str, Any], base: LabConfig, work: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Shrink the run `record` (a runs.jsonl line with violations) against a fresh cluster of its agents."""
    wanted = {v["checker"] for v in record["violations"]}
    best = Schedule.from_json(record["seed"], record["schedule"])
    attempts: list[dict[str, Any]] = []
    with cluster(record["agents"], base, work, say, record.get("shape", "tiebreaker")) as vc:
        fresh, progress = True, True
        while progress and len(best.events) > 1 and len(attempts) < MAX_ATTEMPTS:
            progress = False
            for candidate in smaller(best):
                if len(attempts) >= MAX_ATTEMPTS:
                    break
                if not fresh:
                    restore(vc)
                fresh = False
                fired = sorted({v.checker for v in checkers.check(one_run(vc, candidate).history)})
                attempts.append({"schedule": candidate.to_json(), "fired": fired})
                say(f"shrink {record['run']}: {' '.join(candidate.kinds())} → {' '.join(fired) or 'ok'}")
                if wanted & set(fired):
                    best, progress = candidate, True
                    break
    return {"run": record["run"], "wanted": sorted(wanted), "shrunk": best.to_json(), "attempts": attempts}


def save(out: Path, result: dict[str, Any]) -> None:
    with (out / "shrinks.jsonl").open("a") as fh:
        fh.write(json.dumps(result) + "\n")
