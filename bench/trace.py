# SPDX-License-Identifier: GPL-2.0-or-later
"""What an agent run did, from `strace -f -e trace=execve` output and the CIB's version counters (pure).

Every program an agent starts is one execve; the cluster tools among them are classified as CIB reads or
CIB write requests from their arguments. Whether a write request really changed the CIB is another matter
(attrd drops an unchanged transient attribute): the CIB's own counters say that.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

# 1234  execve("/usr/sbin/crm_attribute", ["crm_attribute", "-p", "x"], 0x7ff... /* 40 vars */) = 0
_EXECVE = re.compile(r'^(?:\[pid\s+)?(\d+)\]?\s+execve\("((?:[^"\\]|\\.)*)", (\[.*?\]), .*\)\s+=\s+(-?\d+)')


@dataclass(frozen=True)
class Exec:
    pid: int
    path: str
    argv: tuple[str, ...]

    @property
    def program(self) -> str:
        return os.path.basename(self.path)


def _strace_string(text: str) -> str:
    """strace prints C-escaped strings; Python's literal syntax reads them (octal and \\x escapes too)."""
    try:
        value = ast.literal_eval(f'"{text}"')
    except (SyntaxError, ValueError):
        return text
    return value if isinstance(value, str) else text


def parse_execs(text: str) -> list[Exec]:
    """The successful execve calls of an strace log, in order (failed PATH probes are left out)."""
    found = []
    for line in text.splitlines():
        m = _EXECVE.match(line.strip())
        if not m or m.group(4) != "0":
            continue
        args = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(3))
        found.append(Exec(int(m.group(1)), _strace_string(m.group(2)), tuple(map(_strace_string, args))))
    return found


class Kind(Enum):
    CIB_WRITE = "cib-write"
    CIB_READ = "cib-read"
    DRBD = "drbd"
    HYPERVISOR = "hypervisor"
    OTHER = "other"


# crm_master is a shell wrapper that always runs crm_attribute: the crm_attribute call is what counts
_CLUSTER = {"crm_attribute", "crm_resource", "cibadmin", "attrd_updater", "crm_node"}
_DRBD = {"drbdsetup", "drbdadm", "drbdmeta"}
_HYPERVISOR = {"virsh", "xl"}
# options that ask the cluster to change something, per tool
_WRITES = {
    "crm_attribute": {"-v", "--update", "-D", "--delete"},
    "crm_resource": {"-p", "--set-parameter", "-d", "--delete-parameter", "-C", "--cleanup", "-M", "--move"},
    "cibadmin": {"-C", "--create", "-M", "--modify", "-R", "--replace", "-D", "--delete", "-P", "--patch"},
    "attrd_updater": {"-U", "--update", "-D", "--delete", "-B", "--update-both", "-Y", "--update-delay"},
}


def classify(e: Exec) -> Kind:
    prog = e.program
    if prog in _CLUSTER:
        writes = _WRITES.get(prog, set())
        for arg in e.argv[1:]:
            if arg in writes or arg.split("=", 1)[0] in writes:
                return Kind.CIB_WRITE
        return Kind.CIB_READ
    if prog in _DRBD:
        return Kind.DRBD
    if prog in _HYPERVISOR:
        return Kind.HYPERVISOR
    return Kind.OTHER


@dataclass(frozen=True)
class Counts:
    """Programs one agent run started (the agent itself not counted), by kind."""

    processes: int
    cib_writes: int
    cib_reads: int
    drbd: int
    hypervisor: int
    programs: tuple[str, ...]  # in order, for the record


def count(execs: Sequence[Exec], skip_first: int = 1) -> Counts:
    """Counts over an strace log of one agent run; `skip_first` leaves out the exec of the agent itself
    (and of strace's own wrapper, if any)."""
    rest = list(execs[skip_first:])
    kinds = [classify(e) for e in rest]
    return Counts(
        processes=len(rest),
        cib_writes=kinds.count(Kind.CIB_WRITE),
        cib_reads=kinds.count(Kind.CIB_READ),
        drbd=kinds.count(Kind.DRBD),
        hypervisor=kinds.count(Kind.HYPERVISOR),
        programs=tuple(e.program for e in rest),
    )


def mean_counts(runs: Iterable[Counts]) -> dict[str, float]:
    """Per-run averages of each count."""
    items = list(runs)
    if not items:
        raise ValueError("no runs")
    keys = ("processes", "cib_writes", "cib_reads", "drbd", "hypervisor")
    return {k: sum(getattr(c, k) for c in items) / len(items) for k in keys}


@dataclass(frozen=True)
class CibVersion:
    admin_epoch: int
    epoch: int
    num_updates: int

    def updates_since(self, before: CibVersion) -> int:
        """How many times the CIB changed between two readings: every configuration change bumps epoch and
        resets num_updates; every status change bumps num_updates."""
        if (self.admin_epoch, self.epoch) == (before.admin_epoch, before.epoch):
            return self.num_updates - before.num_updates
        return (self.epoch - before.epoch) + self.num_updates


_CIB_TAG = re.compile(r"<cib\b[^>]*>")


def cib_version(xml: str) -> CibVersion:
    """The version counters of the <cib> element of `cibadmin -Q` output."""
    m = _CIB_TAG.search(xml)
    if not m:
        raise ValueError("no <cib> element")
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(0)))
    try:
        return CibVersion(int(attrs["admin_epoch"]), int(attrs["epoch"]), int(attrs["num_updates"]))
    except KeyError as exc:
        raise ValueError(f"<cib> without {exc.args[0]}") from None
