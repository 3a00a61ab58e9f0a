# SPDX-License-Identifier: GPL-2.0-or-later
"""The OCF framework shared by tandem's agents."""

from tandem.ocf.agent import Context, main, run_agent
from tandem.ocf.codes import OcfError, Rc, configured, generic, installed
from tandem.ocf.deadline import Deadline, DeadlineExceeded
from tandem.ocf.env import Meta, Notify
from tandem.ocf.log import Logger
from tandem.ocf.params import ALNUM, Chars, Kind, Param, Params
from tandem.ocf.runner import CommandMissing, CommandTimeout, ProcessRunner, Result
from tandem.ocf.spec import ActionSpec, AgentSpec

__all__ = [
    "ALNUM",
    "ActionSpec",
    "AgentSpec",
    "Chars",
    "CommandMissing",
    "CommandTimeout",
    "Context",
    "Deadline",
    "DeadlineExceeded",
    "Kind",
    "Logger",
    "Meta",
    "Notify",
    "OcfError",
    "Param",
    "Params",
    "ProcessRunner",
    "Rc",
    "Result",
    "configured",
    "generic",
    "installed",
    "main",
    "run_agent",
]
