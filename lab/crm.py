# SPDX-License-Identifier: GPL-2.0-or-later
"""What a lab test asks of the cluster, read from `crm_mon --output-as=xml`: nodes, resources, fencing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class NodeState:
    name: str
    online: bool
    unclean: bool
    pending: bool
    standby: bool
    is_dc: bool


@dataclass(frozen=True)
class ResourceState:
    """One resource instance (a primitive, or one instance of a clone) and where it is active."""

    id: str
    agent: str
    role: str
    active: bool
    failed: bool
    nodes: tuple[str, ...]
    parent: str | None  # the clone/group it belongs to


@dataclass(frozen=True)
class FenceEvent:
    action: str
    target: str
    status: str
    delegate: str
    origin: str
    completed: float | None  # epoch seconds (crm_mon gives whole seconds)


@dataclass(frozen=True)
class ClusterState:
    nodes: tuple[NodeState, ...]
    resources: tuple[ResourceState, ...]
    fencing: tuple[FenceEvent, ...]

    def online(self) -> set[str]:
        return {n.name for n in self.nodes if n.online}

    def unclean(self) -> set[str]:
        return {n.name for n in self.nodes if n.unclean or n.pending}

    def dc(self) -> str | None:
        return next((n.name for n in self.nodes if n.is_dc), None)

    def instances(self, rsc: str) -> list[ResourceState]:
        """A primitive by id, or every instance of a clone (by the clone's id or its primitive's id)."""
        return [r for r in self.resources if rsc in (r.id, r.parent)]

    def roles(self, rsc: str) -> dict[str, str]:
        """node -> role of `rsc` (or of its clone instances) on the nodes where it is active."""
        return {node: r.role for r in self.instances(rsc) if r.active for node in r.nodes}

    def locations(self, rsc: str) -> set[str]:
        return set(self.roles(rsc))

    def fenced(self, target: str, since: float = 0.0) -> list[FenceEvent]:
        """Successful fencing of `target` completed at or after `since` (epoch seconds). A node keeps fencing
        history in memory only, so a node that rebooted knows less than one that did not."""
        return [
            f
            for f in self.fencing
            if f.target == target and f.status == "success" and (f.completed or 0) >= int(since)
        ]


def _flag(value: str | None) -> bool:
    return value == "true"


def _epoch(stamp: str | None) -> float | None:
    """crm_mon's "2026-11-22 00:26:05Z" as epoch seconds."""
    if not stamp:
        return None
    try:
        when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return when.timestamp()


def parse_crm_mon(xml: str) -> ClusterState:
    from lxml import etree

    root = etree.fromstring(xml.encode())
    nodes = tuple(
        NodeState(
            name=n.get("name", ""),
            online=_flag(n.get("online")),
            unclean=_flag(n.get("unclean")),
            pending=_flag(n.get("pending")),
            standby=_flag(n.get("standby")),
            is_dc=_flag(n.get("is_dc")),
        )
        for n in root.iterfind("nodes/node")
    )
    resources = []
    for rsc in root.iterfind("resources//resource"):
        parent = rsc.getparent()
        resources.append(
            ResourceState(
                id=rsc.get("id", ""),
                agent=rsc.get("resource_agent", ""),
                role=rsc.get("role", ""),
                active=_flag(rsc.get("active")),
                failed=_flag(rsc.get("failed")),
                nodes=tuple(n.get("name", "") for n in rsc.iterfind("node")),
                parent=parent.get("id") if parent is not None and parent.tag in ("clone", "group") else None,
            )
        )
    fencing = tuple(
        FenceEvent(
            action=f.get("action", ""),
            target=f.get("target", ""),
            status=f.get("status", ""),
            delegate=f.get("delegate", ""),
            origin=f.get("origin", ""),
            completed=_epoch(f.get("completed")),
        )
        for f in root.iterfind("fence_history/fence_event")
    )
    return ClusterState(nodes, tuple(resources), fencing)
