# SPDX-License-Identifier: GPL-2.0-or-later
"""Markdown for bench/results.md: tables and number formats (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.stats import Summary


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A GitHub Markdown table; columns whose index is in `right` are right-aligned (numbers)."""
    if any(len(row) != len(headers) for row in rows):
        raise ValueError("every row needs one cell per header")

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    widths = [max([len(cell(h)), *(len(cell(r[i])) for r in rows), 3]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell(c).rjust(w) if i in right else cell(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(headers), "| " + " | ".join(rule) + " |", *(line(r) for r in rows)])


def num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def times(value: float | None) -> str:
    """A ratio as 0.42×."""
    return "n/a" if value is None else f"{value:.2f}×"


def med_p90(s: Summary | None, digits: int = 1) -> str:
    """'median / p90' of a summary."""
    return "n/a" if s is None else f"{s.median:.{digits}f} / {s.p90:.{digits}f}"


def spread(s: Summary | None, digits: int = 1) -> str:
    """'IQR a–b, range c–d'."""
    if s is None:
        return "n/a"
    return f"IQR {s.p25:.{digits}f}–{s.p75:.{digits}f}, range {s.minimum:.{digits}f}–{s.maximum:.{digits}f}"


def section(title: str, *parts: str) -> str:
    return "\n\n".join([f"## {title}", *(p.strip() for p in parts if p.strip())]) + "\n"
