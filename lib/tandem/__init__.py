# SPDX-License-Identifier: GPL-2.0-or-later
"""tandem: Pacemaker OCF agents for virtual machines on (dual-primary) DRBD."""

__version__ = "0.1.0"

import sys

if sys.flags.no_site:
    # The agents start with -S (no site: ~10 ms less per call). What they import from site-packages (lxml,
    # only where XML is built) is then found where site would have put it, without running .pth files.
    import site

    sys.path += [p for p in site.getsitepackages() if p not in sys.path]


def exit_now(rc: int) -> None:
    """End the process with `rc` once stdout and stderr are flushed, skipping the interpreter's teardown of
    its modules (about 3 ms of an agent's monitor here). For the agents and DRBD's handlers, which leave
    nothing to clean up: every command reaped, every file written and closed, the log sent."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib costs the agents' start more than this whole function)
            stream.flush()
        except (OSError, ValueError):  # the reader went away, or the stream is closed: nothing to keep
            pass
    os._exit(rc)
