# SPDX-License-Identifier: GPL-2.0-or-later
"""The `tandem` command: one entry point, subcommands imported only when used (agents start often)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# name -> (module, function, one-line help). Each function takes argv (without the subcommand) and returns rc.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "drbd-status": (
        "tandem.drbd.status_cli",
        "main",
        "print the DRBD state as JSON (from a file or this node)",
    ),
    "status": (
        "tandem.operator.cli",
        "status_main",
        "the cluster's VMs, DRBD, resyncs and constraints (--json)",
    ),
    "can-migrate": (
        "tandem.operator.cli",
        "can_migrate_main",
        "whether VM can live-migrate to NODE now, and why not (exit 0 yes, 1 no)",
    ),
    "install": ("tandem.install", "main", "install the agents and DRBD handlers under OCF_ROOT"),
    "docs": ("tandem.docs", "main", "man pages and README parameter tables from the agents' metadata"),
    "fence-peer": (
        "tandem.fence",
        "fence_main",
        "DRBD fence-peer handler: constraint (and STONITH) for a lost peer",
    ),
    "unfence-peer": (
        "tandem.fence",
        "unfence_main",
        "DRBD unfence-peer handler: remove our constraint once UpToDate",
    ),
    "disconnected": (
        "tandem.watch",
        "main",
        "DRBD 9 disconnected handler: the promotion score follows the state until the connection is back",
    ),
    "after-resync-target": (
        "tandem.fence",
        "resync_main",
        "DRBD after-resync-target handler: the promotion score as soon as the data is UpToDate",
    ),
}


def usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in sorted(COMMANDS.items())]
    return "usage: tandem COMMAND [ARGS...]\n\ncommands:\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    entry = COMMANDS.get(args[0])
    if entry is None:
        print(f"tandem: unknown command {args[0]!r}\n{usage()}", file=sys.stderr)
        return 2
    module, function, _ = entry
    __import__(module)  # importlib's own import costs a DRBD handler more than this line does
    rc = getattr(sys.modules[module], function)(args[1:])
    return int(rc)
