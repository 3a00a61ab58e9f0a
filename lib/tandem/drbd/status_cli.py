# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem drbd-status`: the DRBD state as JSON, from a file, stdin or this node."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tandem.drbd.model import ParseError, to_json_dict
from tandem.drbd.parse import FORMATS, parse

if TYPE_CHECKING:
    from tandem.ocf.runner import Runner

USAGE = f"usage: tandem drbd-status [--format auto|{'|'.join(FORMATS)}] [FILE|-]"
PROC_DRBD = Path("/proc/drbd")
# What this node is asked, best first: JSON needs drbd-utils >= 9.x with a DRBD 9 kernel;
# events2 also works on 8.4 kernels (utils >= 8.9.3); /proc/drbd holds the state only up to 8.4.
LOCAL_COMMANDS = (
    ("json", ("drbdsetup", "status", "--json")),
    ("events2", ("drbdsetup", "events2", "--now")),
)
COMMAND_TIMEOUT = 10.0


class UsageError(Exception):
    pass


class Unavailable(Exception):
    """No source on this node gave the DRBD state."""


def _arguments(argv: list[str]) -> tuple[str, str | None]:
    fmt, source = "auto", None
    args = iter(argv)
    for arg in args:
        if arg == "--format" or arg.startswith("--format="):
            fmt = arg.partition("=")[2] if "=" in arg else next(args, "")
            if fmt not in ("auto", *FORMATS):
                raise UsageError(f"unknown format {fmt!r}")
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown option {arg!r}")
        elif source is not None:
            raise UsageError("only one FILE")
        else:
            source = arg
    if source is None and fmt != "auto":
        raise UsageError("--format applies to a FILE; this node is read in the best format it has")
    return fmt, source


def read_local(runner: Runner, proc: Path = PROC_DRBD) -> tuple[str, str]:
    """(format, text) from the first source on this node that answers."""
    from tandem.ocf.runner import CommandMissing, CommandTimeout

    failures: list[str] = []
    for fmt, argv in LOCAL_COMMANDS:
        try:
            result = runner.run(argv, timeout=COMMAND_TIMEOUT)
        except (CommandMissing, CommandTimeout) as exc:
            failures.append(str(exc))
            continue
        if result.ok:
            return fmt, result.out
        failures.append(result.describe())
    try:
        return "proc", proc.read_bytes().decode(errors="replace")
    except OSError as exc:
        failures.append(f"{proc}: {exc.strerror}")
    raise Unavailable("; ".join(failures))


def main(argv: list[str], *, runner: Runner | None = None, proc: Path = PROC_DRBD) -> int:
    if "-h" in argv or "--help" in argv:
        print(USAGE)
        return 0
    try:
        fmt, source = _arguments(argv)
    except UsageError as exc:
        print(f"tandem drbd-status: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    try:
        if source is None:
            if runner is None:
                from tandem.ocf.runner import ProcessRunner

                runner = ProcessRunner()
            fmt, text = read_local(runner, proc)
            source = "this node"
        elif source == "-":
            text = sys.stdin.buffer.read().decode(errors="replace")
            source = "stdin"
        else:
            text = Path(source).read_bytes().decode(errors="replace")
        status = parse(text, fmt)
    except Unavailable as exc:
        print(f"tandem drbd-status: cannot read the DRBD state of this node: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"tandem drbd-status: {source}: {exc.strerror}", file=sys.stderr)
        return 1
    except ParseError as exc:
        print(f"tandem drbd-status: {source}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(to_json_dict(status), indent=2))
    return 0
