# SPDX-License-Identifier: GPL-2.0-or-later
"""Whether a VM can live-migrate now, and the status report. Pure: a ClusterView and DRBD state in.

The DRBD checks are the domain agent's own (tandem.domain.storage.target_problems), so `can-migrate` says
"no" exactly when migrate_to would refuse; the cluster checks add what Pacemaker decides before it ever
calls migrate_to: the target online and eligible, the clone Promoted there, no fencing constraint, no
location constraint that keeps the VM away, allow-migrate set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tandem.domain.state import Observed
from tandem.domain.storage import target_problems
from tandem.drbd.model import Resource, Status
from tandem.fence import ID_PREFIX, constraint_id
from tandem.operator.cluster import INFINITY, ClusterView, DomainRsc, Location

PROMOTED = ("Promoted", "Master")
Findings = tuple[list[str], list[str], list[str]]  # problems (each a "no"), unknowns, notes


@dataclass(frozen=True)
class Verdict:
    """The answer of can-migrate: yes only when nothing stands in the way and everything could be checked."""

    vm: str
    source: str | None
    target: str
    problems: tuple[str, ...] = ()  # each one is a "no"
    unknowns: tuple[str, ...] = ()  # what could not be checked from here: not a "yes" either
    notes: tuple[str, ...] = ()

    @property
    def yes(self) -> bool:
        return not self.problems and not self.unknowns

    def as_dict(self) -> dict[str, object]:
        return {
            "vm": self.vm,
            "source": self.source,
            "target": self.target,
            "can_migrate": self.yes,
            "problems": list(self.problems),
            "unknowns": list(self.unknowns),
            "notes": list(self.notes),
        }


def applies(loc: Location, node: str) -> bool | None:
    """Whether a location constraint applies to `node`; None when its rule uses more than node names."""
    if loc.node is not None:
        return loc.node == node
    if not loc.expressions:
        return None
    results = []
    for e in loc.expressions:
        if e.attribute != "#uname" or e.operation not in ("eq", "ne", "defined", "not_defined"):
            return None
        results.append(
            {"eq": node == e.value, "ne": node != e.value, "defined": True, "not_defined": False}[e.operation]
        )
    return all(results) if loc.boolean_op == "and" else any(results)


def allowed_nodes(loc: Location) -> tuple[str, ...]:
    """The nodes a tandem fencing constraint still allows to be Promoted (its `#uname ne` expressions)."""
    return tuple(e.value for e in loc.expressions if e.operation == "ne" and e.value)


def drbd_resources(dom: DomainRsc, view: ClusterView, from_config: Iterable[str] | None) -> tuple[str, ...]:
    """The VM's DRBD resources as the agent finds them (parameter, else disks), else its colocations."""
    if override := dom.param("drbd_resources").split():
        return tuple(override)
    if from_config:
        return tuple(from_config)
    with_clones = {c.with_rsc for c in view.colocations if c.rsc == dom.id and (c.score or 0) > 0}
    return tuple(c.drbd_resource for c in view.clones if c.id in with_clones)


def node_problems(view: ClusterView, target: str) -> list[str]:
    node = view.node(target)
    if node is None:
        return [f"{target} is not a node of this cluster"]
    why = [
        word
        for word, bad in (
            ("offline", not node.online),
            ("in standby", node.standby),
            ("in maintenance", node.maintenance),
            ("unclean", node.unclean),
        )
        if bad
    ]
    return [f"{target} is {' and '.join(why)}"] if why else []


def cluster_checks(
    view: ClusterView, vm: str, target: str, resources: Iterable[str]
) -> tuple[str | None, list[str], list[str], list[str]]:
    """(source, problems, unknowns, notes) from Pacemaker's side alone."""
    problems: list[str] = []
    unknowns: list[str] = []
    notes: list[str] = []
    dom = view.domain(vm)
    if dom is None:
        return None, [f"{vm} is not an ocf:tandem:domain resource in the CIB"], [], []
    if view.maintenance_mode:
        problems.append("the cluster is in maintenance mode: Pacemaker moves nothing")
    if not dom.meta_flag("allow-migrate"):
        problems.append(f"{vm} has no allow-migrate=true: a move would stop and restart it")
    running = sorted(view.roles(vm))
    source = running[0] if len(running) == 1 else None
    if not running:
        problems.append(f"{vm} is not running")
    elif len(running) > 1:
        problems.append(f"{vm} is active on {' and '.join(running)}")
    elif source == target:
        problems.append(f"{vm} already runs on {target}")
    for inst in (i for i in view.instances if i.id == vm):
        if inst.failed:
            problems.append(f"{vm} has failed on {' '.join(inst.nodes) or 'a node'}: clean it up first")
        if not inst.managed:
            problems.append(f"{vm} is unmanaged: Pacemaker does not move it")
    problems += node_problems(view, target)
    for loc in (loc for loc in view.locations if loc.rsc == vm):
        hit = applies(loc, target)
        if hit is None:
            unknowns.append(f"location constraint {loc.id} has a rule tandem cannot evaluate")
        elif hit and loc.score is not None and loc.score <= -INFINITY:
            problems.append(f"location constraint {loc.id} keeps {vm} off {target}")
        elif loc.id.startswith("cli-prefer-") and not hit:
            notes.append(
                f"{loc.id} (a crm resource move) holds {vm} elsewhere: move replaces it, or clear it"
            )
    for name in resources:
        clone = view.clone_of(name)
        if clone is None:
            problems.append(f"no Pacemaker clone manages DRBD resource {name}")
            continue
        role = view.roles(clone.id).get(target)
        if role not in PROMOTED:
            problems.append(f"{clone.id} is {role or 'not running'} on {target}, not Promoted")
        score = view.attribute(target, f"master-{clone.primitive}")
        if score is None or not score.lstrip("-").isdigit() or int(score) <= 0:
            problems.append(f"{clone.id} has no promotion score on {target}")
        for loc in (loc for loc in view.locations if loc.rsc == clone.id):
            if loc.id == constraint_id(name):
                allowed = " ".join(allowed_nodes(loc)) or "no node"
                problems.append(
                    f"fencing constraint {loc.id} is in place (Promoted allowed on {allowed} only)"
                )
            elif applies(loc, target) and loc.score is not None and loc.score <= -INFINITY:
                problems.append(f"location constraint {loc.id} keeps {clone.id} off {target}")
    return source, problems, unknowns, notes


def drbd_checks(
    status: Status | None,
    unavailable: str,
    resources: tuple[str, ...],
    here: str,
    source: str | None,
    target: str,
) -> Findings:
    """The agent's own DRBD check, from this node's view of the link between source and target."""
    if not resources:
        return [], ["no DRBD resource found under the VM's disks (set drbd_resources): disks not checked"], []
    if status is None:
        return [], [f"cannot read this node's DRBD state: {unavailable}"], []
    if source is None:
        return [], [], []
    if here not in (source, target):
        return (
            [],
            [f"this node ({here}) cannot see DRBD between {source} and {target}: run on one of them"],
            [],
        )
    return target_problems(status, resources, target if here == source else source), [], []


def libvirt_checks(vm_name: str, target: str, remote: str, seen: Observed | None) -> list[str]:
    """The target's libvirtd must answer (migrate_to connects to it), and must not run the VM already."""
    if seen is None or not seen.known:
        return [f"libvirtd on {target} does not answer at {remote}: {seen.detail if seen else 'not asked'}"]
    if not seen.gone:
        return [f"{vm_name} is already {seen.describe()} on {target}"]
    return []


def verdict(
    vm: str, target: str, source: str | None, *parts: tuple[list[str], list[str], list[str]]
) -> Verdict:
    return Verdict(
        vm,
        source,
        target,
        tuple(p for part in parts for p in part[0]),
        tuple(u for part in parts for u in part[1]),
        tuple(n for part in parts for n in part[2]),
    )


def status_report(
    view: ClusterView,
    here: str,
    status: Status | None,
    unavailable: str,
    vm_resources: Mapping[str, tuple[str, ...]],
) -> dict[str, object]:
    """Everything `tandem status` shows, as plain data (printed as JSON, or as text by render_status)."""
    local = {r.name: r for r in status.resources} if status else {}
    resyncs = [
        {
            "resource": name,
            "volume": pd.volume,
            "peer": c.peer,
            "replication": str(pd.replication),
            "done": pd.done,
        }
        for name, r in local.items()
        for c in r.connections
        for pd in c.peer_devices
        if pd.replication.resyncing
    ]
    return {
        "node": here,
        "maintenance_mode": view.maintenance_mode,
        "nodes": [
            {"name": n.name, "online": n.online, "standby": n.standby, "maintenance": n.maintenance}
            for n in view.nodes
        ],
        "vms": [
            {
                "id": d.id,
                "nodes": sorted(view.roles(d.id)),
                "role": ",".join(sorted(set(view.roles(d.id).values()))) or "Stopped",
                "failed": any(i.failed for i in view.instances if i.id == d.id),
                "allow_migrate": d.meta_flag("allow-migrate"),
                "drbd": list(vm_resources.get(d.id, ())),
            }
            for d in view.domains
        ],
        "drbd": [
            {
                "resource": c.drbd_resource,
                "clone": c.id,
                "roles": view.roles(c.id),
                "promotion_scores": {
                    n.name: score
                    for n in view.nodes
                    if (score := view.attribute(n.name, f"master-{c.primitive}")) is not None
                },
                "here": _local_resource(local.get(c.drbd_resource)),
            }
            for c in view.clones
        ],
        "drbd_unavailable": unavailable if status is None else None,
        "resyncs": resyncs,
        "fencing_constraints": [
            {"id": loc.id, "clone": loc.rsc, "promoted_allowed_on": list(allowed_nodes(loc))}
            for loc in view.locations
            if loc.id.startswith(f"{ID_PREFIX}-")
        ],
        "degraded": [
            {
                "operation": f.op_key,
                "node": f.node,
                "exitcode": f.exitcode,
                "reason": f.exitreason or f.exitstatus,
            }
            for f in view.failures
        ],
    }


def _local_resource(res: Resource | None) -> dict[str, object] | None:
    if res is None:
        return None
    return {
        "role": str(res.role),
        "disks": {str(d.volume): str(d.disk) for d in res.devices},
        "connections": [
            {
                "peer": c.peer,
                "connection": str(c.connection),
                "peer_role": str(c.peer_role),
                "peer_disks": {str(p.volume): str(p.peer_disk) for p in c.peer_devices},
                "replication": {str(p.volume): str(p.replication) for p in c.peer_devices},
            }
            for c in res.connections
        ],
    }


def render_status(report: Mapping[str, object]) -> str:
    """The report as text for a person: one line per node, VM, DRBD resource, resync, constraint, failure."""
    lines = [f"seen from {report['node']}" + ("  MAINTENANCE MODE" if report["maintenance_mode"] else "")]
    for n in _rows(report, "nodes"):
        flags = [w for w in ("standby", "maintenance") if n[w]]
        lines.append(
            f"node {n['name']}: {'online' if n['online'] else 'OFFLINE'}{''.join(' ' + f for f in flags)}"
        )
    for v in _rows(report, "vms"):
        where = " ".join(v["nodes"]) or "nowhere"
        extra = (" FAILED" if v["failed"] else "") + ("" if v["allow_migrate"] else " (no allow-migrate)")
        lines.append(f"vm {v['id']}: {v['role']} on {where}{extra}; DRBD {' '.join(v['drbd']) or '-'}")
    for d in _rows(report, "drbd"):
        roles = ", ".join(f"{n} {r}" for n, r in sorted(d["roles"].items()))
        lines.append(f"drbd {d['resource']} ({d['clone']}): {roles or 'not running'}")
        here = d["here"]
        if isinstance(here, dict):
            disks = " ".join(f"{v}:{s}" for v, s in here["disks"].items())
            lines.append(f"  here: {here['role']} disk {disks}")
            for c in here["connections"]:
                repl = " ".join(f"{v}:{s}" for v, s in c["replication"].items())
                peer_disks = " ".join(f"{v}:{s}" for v, s in c["peer_disks"].items())
                lines.append(
                    f"  to {c['peer']}: {c['connection']}, peer {c['peer_role']} disk {peer_disks}, {repl}"
                )
    if report["drbd_unavailable"]:
        lines.append(f"DRBD state of this node unavailable: {report['drbd_unavailable']}")
    for r in _rows(report, "resyncs"):
        done = f" {r['done']:.1f}% done" if isinstance(r["done"], float) else ""
        lines.append(f"resync {r['resource']}/{r['volume']} with {r['peer']}: {r['replication']}{done}")
    for f in _rows(report, "fencing_constraints"):
        allowed = " ".join(f["promoted_allowed_on"]) or "no node"
        lines.append(f"fencing constraint {f['id']} on {f['clone']}: Promoted only on {allowed}")
    for f in _rows(report, "degraded"):
        lines.append(f"failed/degraded {f['operation']} on {f['node']} (rc {f['exitcode']}): {f['reason']}")
    return "\n".join(lines)


def _rows(report: Mapping[str, object], key: str) -> list[dict[str, Any]]:
    rows = report[key]
    assert isinstance(rows, list)
    return rows


def render_verdict(v: Verdict) -> str:
    if v.yes:
        head = f"yes: {v.vm} can live-migrate from {v.source} to {v.target}"
    elif v.problems:
        head = f"no: {v.vm} cannot live-migrate to {v.target}"
    else:
        head = f"cannot tell whether {v.vm} can live-migrate to {v.target}"
    body = (
        [f"  - {p}" for p in v.problems]
        + [f"  ? {u}" for u in v.unknowns]
        + [f"  note: {n}" for n in v.notes]
    )
    return "\n".join([head, *body])
