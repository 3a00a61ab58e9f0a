# SPDX-License-Identifier: GPL-2.0-or-later
"""Where the files that ship beside the library are: the agents, and their metadata as generated from the
agents' declarations (metadata/*.xml, checked current by the tests).

Cheap to import: the agents serve `meta-data` from here without loading their own code.
"""

from __future__ import annotations

import os
import sys

PACKAGE = os.path.dirname(os.path.abspath(__file__))
AGENT_NAMES = ("drbd", "domain")


def agent_sources() -> str:
    """The agents folder: inside the package when installed from a wheel, beside lib/ in a checkout."""
    for candidate in (os.path.join(PACKAGE, "agent_files"), os.path.join(PACKAGE, "..", "..", "agents")):
        if os.path.isfile(os.path.join(candidate, "drbd")):
            return os.path.normpath(candidate)
    raise FileNotFoundError("cannot find the agents (agents/drbd) beside the tandem package")


def metadata_file(agent: str) -> str:
    return os.path.join(PACKAGE, "metadata", f"{agent}.xml")


def print_metadata(agent: str) -> bool:
    """Print the shipped metadata of `agent`; False when it is not there (the agent then builds it)."""
    try:
        with open(metadata_file(agent), "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return True
