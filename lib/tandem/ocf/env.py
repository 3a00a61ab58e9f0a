# SPDX-License-Identifier: GPL-2.0-or-later
"""Pacemaker's meta environment as a typed context: timeout, interval, clone and notify variables."""

from __future__ import annotations

from tandem.ocf.log import env_true
from tandem.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

META = "OCF_RESKEY_CRM_meta_"


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(META + name, "").strip()
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


class Notify(NamedTuple):
    """One clone notification: which operation, before or after (what the agents switch on)."""

    type: str
    operation: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Notify | None:
        kind = env.get(META + "notify_type", "")
        operation = env.get(META + "notify_operation", "")
        if not kind or not operation:
            return None
        return cls(type=kind, operation=operation)

    @property
    def key(self) -> str:
        """ "pre-start", "post-promote", ...: what the agent switches on."""
        return f"{self.type}-{self.operation}"


class Meta(NamedTuple):
    """What Pacemaker says about this call, beside the instance parameters."""

    action: str
    instance: str = ""
    timeout_ms: int | None = None
    interval_ms: int | None = None
    clone: str | None = None
    clone_max: int | None = None
    clone_node_max: int | None = None
    promoted_max: int | None = None
    promoted_node_max: int | None = None
    notify_enabled: bool = False
    notify: Notify | None = None
    on_node: str | None = None
    migrate_source: str | None = None
    migrate_target: str | None = None
    crm_feature_set: str | None = None

    @classmethod
    def from_env(cls, action: str, env: Mapping[str, str]) -> Meta:
        promoted_max = _int(env, "promoted_max")
        if promoted_max is None:
            promoted_max = _int(env, "master_max")
        promoted_node_max = _int(env, "promoted_node_max")
        if promoted_node_max is None:
            promoted_node_max = _int(env, "master_node_max")
        return cls(
            action=action,
            instance=env.get("OCF_RESOURCE_INSTANCE", ""),
            timeout_ms=_int(env, "timeout"),
            interval_ms=_int(env, "interval"),
            clone=env.get(META + "clone") or None,
            clone_max=_int(env, "clone_max"),
            clone_node_max=_int(env, "clone_node_max"),
            promoted_max=promoted_max,
            promoted_node_max=promoted_node_max,
            notify_enabled=env_true(env.get(META + "notify")),
            notify=Notify.from_env(env) if action == "notify" else None,
            on_node=env.get(META + "on_node") or None,
            migrate_source=env.get(META + "migrate_source") or None,
            migrate_target=env.get(META + "migrate_target") or None,
            crm_feature_set=env.get("OCF_RESKEY_crm_feature_set") or None,
        )

    @property
    def is_probe(self) -> bool:
        """A one-off monitor (interval 0, or none at all as crm_resource --force-check sends)."""
        return self.action == "monitor" and not self.interval_ms

    @property
    def is_clone(self) -> bool:
        return self.clone is not None or self.clone_max is not None

    @property
    def resource(self) -> str:
        """The resource id without the clone suffix (`drbd-r0:1` -> `drbd-r0`)."""
        return self.instance.split(":", 1)[0]
