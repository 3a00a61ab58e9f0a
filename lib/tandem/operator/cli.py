# SPDX-License-Identifier: GPL-2.0-or-later
"""`tandem status [--json]` and `tandem can-migrate [--json] VM NODE`: read-only, on a cluster node.

Every question goes through one Runner (tests replace it): crm_node -n, cibadmin --query, crm_mon, this
node's DRBD state (the sources of `tandem drbd-status`), and for can-migrate the target's libvirtd.
Exit codes: status 0, or 1 when it cannot read the cluster; can-migrate 0 yes, 1 no or cannot tell; 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tandem.domain.config import DomainConfig
from tandem.domain.storage import drbd_refs, resolve
from tandem.drbd.model import ParseError, Status
from tandem.ocf.runner import CommandMissing, CommandTimeout, ProcessRunner
from tandem.operator.checks import (
    Findings,
    Verdict,
    cluster_checks,
    drbd_checks,
    drbd_resources,
    libvirt_checks,
    render_status,
    render_verdict,
    status_report,
    verdict,
)
from tandem.operator.cluster import ClusterView, ClusterXmlError, DomainRsc, parse_view

if TYPE_CHECKING:
    from tandem.ocf.runner import Runner

QUERY = 10.0
PEER_QUERY = 5.0


class NotAvailable(Exception):
    """This is not a working cluster node, or a tool is missing: the message says which."""


@dataclass(frozen=True)
class Local:
    """What this node can tell: its name, the cluster, and its own DRBD state (or why it has none)."""

    here: str
    view: ClusterView
    drbd: Status | None
    drbd_unavailable: str


def ask(runner: Runner, argv: Sequence[str]) -> str:
    try:
        res = runner.run(argv, timeout=QUERY)
    except CommandMissing:
        raise NotAvailable(f"{argv[0]} is not installed: run this on a Pacemaker cluster node") from None
    except CommandTimeout as exc:
        raise NotAvailable(f"{exc}: is Pacemaker running on this node?") from None
    if not res.ok:
        raise NotAvailable(f"{res.describe()}: is this a cluster node with Pacemaker running?")
    return res.out


def gather(runner: Runner) -> Local:
    """Pacemaker's answers are required; DRBD's are not (status still shows the cluster without them)."""
    from tandem.drbd.parse import parse
    from tandem.drbd.status_cli import Unavailable, read_local

    here = ask(runner, ["crm_node", "-n"]).strip()
    try:
        view = parse_view(
            ask(runner, ["cibadmin", "--query"]), ask(runner, ["crm_mon", "-1", "--output-as=xml"])
        )
    except ClusterXmlError as exc:
        raise NotAvailable(f"cannot read the cluster: {exc}") from None
    try:
        fmt, text = read_local(runner)
        return Local(here, view, parse(text, fmt), "")
    except (Unavailable, ParseError) as exc:
        return Local(here, view, None, str(exc))


def read_config(dom: DomainRsc) -> DomainConfig | None:
    """The domain's config file as this node has it (the same path on every node), None when unreadable."""
    from tandem.domain.config import ConfigError, parse

    try:
        with open(dom.param("config"), encoding="utf-8") as fh:
            return parse(fh.read())
    except (OSError, ConfigError):
        return None


def config_resources(
    config: DomainConfig | None, status: Status | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(resources, disks DRBD does not know) under the config's disks, resolved as the agent resolves them."""
    if config is None:
        return (), ()
    refs = drbd_refs(config.disks, os.path.realpath)
    if status is None:
        return tuple(r.resource for r in refs if r.resource), ()
    return resolve(refs, status)


def domain_name(dom: DomainRsc, config: DomainConfig | None) -> tuple[str, str]:
    """(name, backend) of the domain as the agent finds them: the parameters, else its config file."""
    from tandem.domain.config import Format

    backend = dom.param("backend", "auto")
    if backend == "auto" and config is not None:
        backend = "libvirt" if config.format is Format.LIBVIRT else "xl"
    elif backend == "auto":
        backend = "libvirt" if dom.param("config").endswith(".xml") else "xl"
    return dom.param("name") or (config.name if config else dom.id), backend


def libvirt_probe(runner: Runner, dom: DomainRsc, config: DomainConfig | None, target: str) -> Findings:
    """Ask the target's libvirtd, over the URI migrate_to would use, whether it answers and has the VM."""
    from tandem.domain.backend import Virsh
    from tandem.domain.uri import Route, UriError

    name, backend = domain_name(dom, config)
    if backend != "libvirt":
        return [], [], [f"{dom.id} runs under xl: the target's toolstack is not checked"]
    route = Route(
        local_uri=dom.param("hypervisor") or "qemu:///system",
        transport=dom.param("migration_transport") or None,
        user=dom.param("migration_user") or None,
        suffix=dom.param("migration_network_suffix") or None,
        remote_template=dom.param("remote_uri") or None,
    )
    try:
        remote = route.remote_uri(target)
    except UriError as exc:
        return [f"no libvirt URI for {target}: {exc}"], [], []
    try:
        seen = Virsh(runner).observe_remote(name, remote, PEER_QUERY)
    except CommandMissing:
        return [], ["virsh is not installed here: the target's libvirtd is not checked"], []
    return libvirt_checks(name, target, remote, seen), [], []


def can_migrate(runner: Runner, vm: str, target: str) -> Verdict:
    local = gather(runner)
    dom = local.view.domain(vm)
    config = read_config(dom) if dom else None
    found, unknown = config_resources(config, local.drbd)
    names = drbd_resources(dom, local.view, found) if dom else ()
    source, problems, unknowns, notes = cluster_checks(local.view, vm, target, names)
    if dom is None:
        return verdict(vm, target, source, (problems, unknowns, notes))
    if unknown and not dom.param("drbd_resources"):  # migrate_to refuses these too
        problems.append("; ".join(unknown) + " (set drbd_resources if discovery is wrong)")
    return verdict(
        vm,
        target,
        source,
        (problems, unknowns, notes),
        drbd_checks(local.drbd, local.drbd_unavailable, names, local.here, source, target),
        libvirt_probe(runner, dom, config, target),
    )


def status(runner: Runner) -> dict[str, object]:
    local = gather(runner)
    per_vm = {
        d.id: drbd_resources(d, local.view, config_resources(read_config(d), local.drbd)[0])
        for d in local.view.domains
    }
    return status_report(local.view, local.here, local.drbd, local.drbd_unavailable, per_vm)


def status_main(argv: Sequence[str], runner: Runner | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tandem status", description="The cluster's VMs and DRBD, read-only."
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    args = parser.parse_args(list(argv))
    try:
        report = status(runner or ProcessRunner())
    except NotAvailable as exc:
        print(f"tandem status: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else render_status(report))
    return 0


def can_migrate_main(argv: Sequence[str], runner: Runner | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tandem can-migrate",
        description="Whether VM can live-migrate to NODE now: the checks of migrate_to, without moving it. "
        "Exit 0 yes, 1 no (or cannot tell).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument("vm", help="the ocf:tandem:domain resource id")
    parser.add_argument("node", help="the target node")
    args = parser.parse_args(list(argv))
    try:
        answer = can_migrate(runner or ProcessRunner(), args.vm, args.node)
    except NotAvailable as exc:
        print(f"tandem can-migrate: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer.as_dict(), indent=2) if args.json else render_verdict(answer))
    return 0 if answer.yes else 1
