# SPDX-License-Identifier: GPL-2.0-or-later
"""What an agent declares about itself: its name, parameters and actions (the metadata's source)."""

from __future__ import annotations

from tandem.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from tandem.ocf.params import Param


class ActionSpec(NamedTuple):
    """One <action> line of the metadata. Several may share a name (monitor per role)."""

    name: str
    timeout: int
    interval: int | None = None
    role: str | None = None
    depth: int | None = None


class AgentSpec(NamedTuple):
    name: str
    version: str
    shortdesc: str
    longdesc: str
    params: tuple[Param, ...]
    actions: tuple[ActionSpec, ...]

    def timeout_of(self, action: str) -> int:
        """The advertised timeout, used when Pacemaker did not pass CRM_meta_timeout (a person ran us)."""
        return next((a.timeout for a in self.actions if a.name == action), 20)

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.name for a in self.actions))
