# SPDX-License-Identifier: GPL-2.0-or-later
"""OCF 1.1 exit codes and the one exception type that carries a code and a reason to the dispatcher."""

from __future__ import annotations

from tandem.enums import IntEnum


class Rc(IntEnum):
    """Exit codes of OCF 1.1 (with Pacemaker's degraded codes 190/191)."""

    SUCCESS = 0
    ERR_GENERIC = 1
    ERR_ARGS = 2
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5
    ERR_CONFIGURED = 6
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190
    DEGRADED_PROMOTED = 191

    @property
    def ocf_name(self) -> str:
        """The name as Pacemaker and ocf-returncodes spell it (OCF_RUNNING_PROMOTED, ...)."""
        return "OCF_" + self.name


class OcfError(Exception):
    """Ends the action with `rc`; `reason` becomes the one-line exit reason."""

    def __init__(self, rc: Rc, reason: str) -> None:
        super().__init__(reason)
        self.rc = rc
        self.reason = reason


def configured(reason: str) -> OcfError:
    """A parameter that is invalid in itself (fatal cluster-wide)."""
    return OcfError(Rc.ERR_CONFIGURED, reason)


def installed(reason: str) -> OcfError:
    """Something this node lacks (a tool, a file): hard error on this node only."""
    return OcfError(Rc.ERR_INSTALLED, reason)


def generic(reason: str) -> OcfError:
    """A soft failure Pacemaker may retry or recover from."""
    return OcfError(Rc.ERR_GENERIC, reason)
