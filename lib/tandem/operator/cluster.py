# SPDX-License-Identifier: GPL-2.0-or-later
"""The cluster as Pacemaker describes it, parsed once into frozen data. Pure: XML text in, ClusterView out.

The CIB says what is configured (the domains and their parameters, the DRBD clones, the constraints);
`crm_mon --output-as xml` says what runs where (roles, failures with their exit reasons, node attributes
such as the promotion scores). Both are read as the tools print them, never as a person would scrape text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml.etree import _Element

INFINITY = 1_000_000  # Pacemaker's INFINITY: every larger score is clipped to it


class ClusterXmlError(ValueError):
    """XML that is not a CIB or a crm_mon result."""


@dataclass(frozen=True)
class NodeInfo:
    name: str
    online: bool
    standby: bool
    maintenance: bool
    unclean: bool


@dataclass(frozen=True)
class DomainRsc:
    """A configured ocf:tandem:domain primitive, with its instance and meta attributes."""

    id: str
    params: tuple[tuple[str, str], ...]
    meta: tuple[tuple[str, str], ...]

    def param(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.params if k == name), default)

    def meta_flag(self, name: str) -> bool:
        value = next((v for k, v in self.meta if k == name), "false")
        return value.lower() in ("true", "yes", "on", "1", "y")


@dataclass(frozen=True)
class DrbdClone:
    """A clone (promotable) of a primitive that manages one DRBD resource."""

    id: str
    primitive: str
    drbd_resource: str


@dataclass(frozen=True)
class Instance:
    """One active (or failed) instance of a resource, from crm_mon."""

    id: str
    clone: str | None
    role: str
    nodes: tuple[str, ...]
    failed: bool
    managed: bool


@dataclass(frozen=True)
class Expression:
    attribute: str
    operation: str
    value: str | None


@dataclass(frozen=True)
class Location:
    """A rsc_location: a node and score, or one rule (what crmsh, pcs and the fence handler write)."""

    id: str
    rsc: str
    score: int | None
    node: str | None
    role: str | None
    boolean_op: str = "and"
    expressions: tuple[Expression, ...] = ()


@dataclass(frozen=True)
class Colocation:
    id: str
    rsc: str
    with_rsc: str
    with_role: str | None
    score: int | None


@dataclass(frozen=True)
class Failure:
    """A failed action crm_mon lists, with the agent's exit reason (how 190/191 degraded states show)."""

    op_key: str
    node: str
    exitcode: int | None
    exitstatus: str
    exitreason: str


@dataclass(frozen=True)
class ClusterView:
    nodes: tuple[NodeInfo, ...]
    maintenance_mode: bool
    domains: tuple[DomainRsc, ...]
    clones: tuple[DrbdClone, ...]
    instances: tuple[Instance, ...]
    attributes: tuple[tuple[str, str, str], ...]  # (node, name, value)
    locations: tuple[Location, ...]
    colocations: tuple[Colocation, ...]
    failures: tuple[Failure, ...]

    def node(self, name: str) -> NodeInfo | None:
        return next((n for n in self.nodes if n.name == name), None)

    def domain(self, rsc: str) -> DomainRsc | None:
        return next((d for d in self.domains if d.id == rsc), None)

    def clone_of(self, drbd_resource: str) -> DrbdClone | None:
        return next((c for c in self.clones if c.drbd_resource == drbd_resource), None)

    def roles(self, rsc: str) -> dict[str, str]:
        """node -> role of a primitive, or of the instances of a clone (by the clone's or primitive's id)."""
        return {n: i.role for i in self.instances if rsc in (i.id, i.clone) for n in i.nodes}

    def attribute(self, node: str, name: str) -> str | None:
        return next((v for n, k, v in self.attributes if n == node and k == name), None)


def parse_score(text: str | None) -> int | None:
    if text is None:
        return None
    word = text.strip().upper().lstrip("+")
    if word == "INFINITY":
        return INFINITY
    if word == "-INFINITY":
        return -INFINITY
    try:
        return max(-INFINITY, min(INFINITY, int(word)))
    except ValueError:
        return None


def _root(xml: str, tag: str) -> _Element:
    from lxml import etree

    try:
        root = etree.fromstring(xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise ClusterXmlError(f"not XML: {exc}") from None
    if root.tag != tag:
        raise ClusterXmlError(f"expected <{tag}>, got <{root.tag}>")
    return root


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "yes", "on", "1", "y")


def _pairs(parent: _Element, tag: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (str(p.get("name")), p.get("value", ""))
        for attrs in parent.findall(tag)
        for p in attrs.findall("nvpair")
        if p.get("name")
    )


def parse_view(cib_xml: str, crm_mon_xml: str) -> ClusterView:
    """One view from `cibadmin --query` and `crm_mon -1 --output-as xml`."""
    cib = _root(cib_xml, "cib")
    mon = _root(crm_mon_xml, "pacemaker-result")
    config = cib.find("configuration")
    if config is None:
        raise ClusterXmlError("the CIB has no <configuration>")
    options = mon.find("summary/cluster_options")
    return ClusterView(
        nodes=tuple(
            NodeInfo(
                name=n.get("name", ""),
                online=_flag(n.get("online")),
                standby=_flag(n.get("standby")),
                maintenance=_flag(n.get("maintenance")),
                unclean=_flag(n.get("unclean")) or _flag(n.get("pending")),
            )
            for n in mon.iterfind("nodes/node")
        ),
        maintenance_mode=options is not None and _flag(options.get("maintenance-mode")),
        domains=tuple(
            DomainRsc(str(p.get("id")), _pairs(p, "instance_attributes"), _pairs(p, "meta_attributes"))
            for p in config.iter("primitive")
            if (p.get("class"), p.get("provider"), p.get("type")) == ("ocf", "tandem", "domain")
        ),
        clones=tuple(_clones(config)),
        instances=tuple(
            Instance(
                id=r.get("id", ""),
                clone=parent.get("id")
                if (parent := r.getparent()) is not None and parent.tag == "clone"
                else None,
                role=r.get("role", ""),
                nodes=tuple(n.get("name", "") for n in r.iterfind("node")),
                failed=_flag(r.get("failed")),
                managed=_flag(r.get("managed", "true")),
            )
            for r in mon.iterfind("resources//resource")
        ),
        attributes=tuple(
            (n.get("name", ""), a.get("name", ""), a.get("value", ""))
            for n in mon.iterfind("node_attributes/node")
            for a in n.iterfind("attribute")
        ),
        locations=tuple(_locations(config)),
        colocations=tuple(
            Colocation(
                id=c.get("id", ""),
                rsc=c.get("rsc", ""),
                with_rsc=c.get("with-rsc", ""),
                with_role=c.get("with-rsc-role"),
                score=parse_score(c.get("score")),
            )
            for c in config.iter("rsc_colocation")
            if c.get("rsc") and c.get("with-rsc")
        ),
        failures=tuple(
            Failure(
                op_key=f.get("op_key", ""),
                node=f.get("node", ""),
                exitcode=int(code) if (code := f.get("exitcode", "")).lstrip("-").isdigit() else None,
                exitstatus=f.get("exitstatus", ""),
                exitreason=f.get("exitreason", ""),
            )
            for f in mon.iterfind("failures/failure")
        ),
    )


def _clones(config: _Element) -> list[DrbdClone]:
    found = []
    for clone in config.iter("clone", "master"):
        for prim in clone.iter("primitive"):
            resource = dict(_pairs(prim, "instance_attributes")).get("drbd_resource")
            if resource:
                found.append(DrbdClone(str(clone.get("id")), str(prim.get("id")), resource))
    return found


def _locations(config: _Element) -> list[Location]:
    found = []
    for loc in config.iter("rsc_location"):
        rsc = loc.get("rsc")
        if not rsc:  # rsc-pattern and resource sets are not evaluated
            continue
        base = Location(
            str(loc.get("id")), rsc, parse_score(loc.get("score")), loc.get("node"), loc.get("role")
        )
        rules = loc.findall("rule")
        if not rules:
            found.append(base)
        for rule in rules:
            found.append(
                Location(
                    base.id,
                    rsc,
                    parse_score(rule.get("score")),
                    None,
                    rule.get("role") or base.role,
                    rule.get("boolean-op", "and"),
                    tuple(
                        Expression(e.get("attribute", ""), e.get("operation", ""), e.get("value"))
                        for e in rule.iter("expression")
                    ),
                )
            )
    return found
