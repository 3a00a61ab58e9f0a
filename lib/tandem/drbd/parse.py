# SPDX-License-Identifier: GPL-2.0-or-later
"""Read DRBD state from any of its four outputs into the one model.

    parse(text, fmt="auto") -> Status     detect(text) -> "proc" | "status" | "json" | "events2"

Each parser takes the full text of one command output and raises model.ParseError, naming the line,
on anything it cannot read for certain.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tandem.drbd.model import ParseError, Status
from tandem.drbd.parse_events2 import parse_events2
from tandem.drbd.parse_json import parse_status_json
from tandem.drbd.parse_proc import parse_proc
from tandem.drbd.parse_status import parse_status_text

PARSERS: dict[str, Callable[[str], Status]] = {
    "proc": parse_proc,
    "status": parse_status_text,
    "json": parse_status_json,
    "events2": parse_events2,
}
FORMATS = tuple(PARSERS)

_PROC = re.compile(r"version: |\s*\d+: cs:")
_PROC_DEVICE = re.compile(r"^ *\d+: cs:\S+ (?:ro|st):", re.MULTILINE)
_EVENTS2 = re.compile(
    r"(?:\d{4}-\d\d-\d\dT\S+ )?(?:(?:exists|create|change|destroy|call|response|rename)"
    r" (?:-|resource|device|connection|peer-device|path|helper)(?: |$)|- skipped )"
)


def detect(text: str) -> str:
    """The format of an output, from its first non-blank line."""
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise ParseError("empty input: no DRBD output to read")
    if first.lstrip().startswith(("[", "{")):
        return "json"
    if _PROC.match(first) or _PROC_DEVICE.search(text):  # /proc/drbd with a cut or missing header
        return "proc"
    if _EVENTS2.match(first):
        return "events2"
    return "status"


def parse(text: str, fmt: str = "auto") -> Status:
    if fmt == "auto":
        fmt = detect(text)
    if fmt not in PARSERS:
        raise ValueError(f"unknown DRBD output format {fmt!r} (expected auto or one of {', '.join(FORMATS)})")
    return PARSERS[fmt](text)


__all__ = [
    "FORMATS",
    "ParseError",
    "detect",
    "parse",
    "parse_events2",
    "parse_proc",
    "parse_status_json",
    "parse_status_text",
]
