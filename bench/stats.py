# SPDX-License-Identifier: GPL-2.0-or-later
"""Statistics of repeated measurements: pure functions, no timing of their own.

Percentiles interpolate linearly between order statistics (numpy's default, `statistics.quantiles`'
"inclusive" method), so a handful of runs still gives a p90 between the two largest values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of values, linearly interpolated; ValueError when there are none."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True)
class Summary:
    """Median and p90 with the spread around them (interquartile range, extremes)."""

    n: int
    median: float
    p90: float
    p25: float
    p75: float
    minimum: float
    maximum: float

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25

    def scaled(self, factor: float) -> Summary:
        """The same summary in another unit (e.g. ns to ms)."""
        return Summary(
            self.n,
            self.median * factor,
            self.p90 * factor,
            self.p25 * factor,
            self.p75 * factor,
            self.minimum * factor,
            self.maximum * factor,
        )


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        n=len(values),
        median=percentile(values, 50),
        p90=percentile(values, 90),
        p25=percentile(values, 25),
        p75=percentile(values, 75),
        minimum=min(values),
        maximum=max(values),
    )


def ratio(ours: float, anchor: float) -> float | None:
    """ours/anchor; None when the anchor is zero (no meaningful ratio)."""
    return None if anchor == 0 else ours / anchor


def paired_ratios(ours: Sequence[float], anchor: Sequence[float]) -> list[float]:
    """Per-round ratios of runs made back to back (round i of ours with round i of the anchor): a load
    change on a shared machine moves both members of a pair, so their ratio is steadier than the totals."""
    if len(ours) != len(anchor):
        raise ValueError(f"unpaired runs: {len(ours)} vs {len(anchor)}")
    return [o / a for o, a in zip(ours, anchor, strict=True) if a != 0]


def round_robin(names: Sequence[str], rounds: int) -> list[str]:
    """The order of runs: every name once per round, the order rotated each round so that no agent always
    runs first (right after a cold cache or while another's exit is still being reaped)."""
    order: list[str] = []
    for r in range(rounds):
        shift = r % len(names) if names else 0
        order += [*names[shift:], *names[:shift]]
    return order
