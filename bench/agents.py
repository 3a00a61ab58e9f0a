# SPDX-License-Identifier: GPL-2.0-or-later
"""The agent pairs under comparison and the environment pacemaker-execd gives them (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

OCF_ROOT = "/usr/lib/ocf"
FEATURE_SET = "3.16.2"  # Pacemaker 2.1.5's CRM feature set, as execd passes it


@dataclass(frozen=True)
class Agent:
    """One resource agent as the CIB names it, with the parameters of one resource."""

    standard_provider_type: str  # "ocf:tandem:drbd"
    instance: str  # the resource id in the CIB
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        return self.standard_provider_type.split(":")[1]

    @property
    def type(self) -> str:
        return self.standard_provider_type.split(":")[2]

    @property
    def path(self) -> str:
        """Where Pacemaker runs it from."""
        return f"{OCF_ROOT}/resource.d/{self.provider}/{self.type}"


@dataclass(frozen=True)
class Pair:
    ours: Agent
    anchor: Agent

    @property
    def names(self) -> tuple[str, str]:
        return ("ours", "anchor")

    def agent(self, name: str) -> Agent:
        return self.ours if name == "ours" else self.anchor


def clone_meta(promoted_max: int, role: str) -> dict[str, str]:
    """The meta attributes of a promotable clone of 2 instances with notifications (both spellings of the
    promoted limits, as Pacemaker 2.1 passes them)."""
    return {
        "clone_max": "2",
        "clone_node_max": "1",
        "promoted_max": str(promoted_max),
        "promoted_node_max": "1",
        "master_max": str(promoted_max),
        "master_node_max": "1",
        "notify": "true",
        "globally_unique": "false",
        "promotable": "true",
        "role": role,
    }


def ocf_env(
    base: Mapping[str, str],
    agent: Agent,
    action: str,
    *,
    node: str,
    node_id: str,
    interval_ms: int,
    timeout_ms: int,
    meta: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """What execd adds to its own environment for one operation: the OCF variables, the parameters as
    OCF_RESKEY_*, the operation's meta (interval, timeout, name, node) and the resource's meta."""
    env = dict(base)
    env.update(
        {
            "OCF_ROOT": OCF_ROOT,
            "OCF_RA_VERSION_MAJOR": "1",
            "OCF_RA_VERSION_MINOR": "1",
            "OCF_RESOURCE_INSTANCE": agent.instance,
            "OCF_RESOURCE_PROVIDER": agent.provider,
            "OCF_RESOURCE_TYPE": agent.type,
            "OCF_RESKEY_crm_feature_set": FEATURE_SET,
            "OCF_RESKEY_CRM_meta_name": action,
            "OCF_RESKEY_CRM_meta_interval": str(interval_ms),
            "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
            "OCF_RESKEY_CRM_meta_on_node": node,
            "OCF_RESKEY_CRM_meta_on_node_uuid": node_id,
        }
    )
    env.update({f"OCF_RESKEY_{k}": v for k, v in agent.params.items()})
    env.update({f"OCF_RESKEY_CRM_meta_{k}": v for k, v in (meta or {}).items()})
    return env
