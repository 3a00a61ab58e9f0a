# SPDX-License-Identifier: GPL-2.0-or-later
"""What a domain is doing, read from virsh, xl or the process table, and what monitor reports for it. Pure.

VirtualDomain counts every paused domain as running and reads "cannot reach libvirtd" as "stopped" after a
while (research §1.4, RA#546). Here each state has its own meaning, and "cannot tell" is a state of its own
that never becomes OCF_NOT_RUNNING.
"""

from __future__ import annotations

import os

from tandem.enums import StrEnum
from tandem.ocf.codes import Rc
from tandem.record import NamedTuple
from tandem.regex import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class Phase(StrEnum):
    RUNNING = "running"
    MIGRATING_OUT = "migrating out"  # the source of a live migration (running, or paused at the switch-over)
    MIGRATING_IN = "migrating in"  # the paused copy on the target of a live migration
    PAUSED_USER = "paused by a user"
    PAUSED = "paused"  # for another reason: I/O error, watchdog, a failed post-copy, ...
    SHUTTING_DOWN = "shutting down"
    CRASHED = "crashed"
    PM_SUSPENDED = "suspended by the guest"
    SHUT_OFF = "shut off"  # defined but not running
    ABSENT = "absent"  # the hypervisor does not know it
    UNKNOWN = "unknown"  # the hypervisor could not be asked


GONE = frozenset({Phase.SHUT_OFF, Phase.ABSENT})


class Observed(NamedTuple):
    phase: Phase
    detail: str = ""  # what the tool said, for logs and exit reasons
    vcpus: int | None = None
    memory_mib: int | None = None
    persistent: bool | None = None
    pids: tuple[int, ...] = ()  # emulator processes, when the state was read from the process table
    hypervisor_down: bool = False  # the toolstack could not be asked; the state comes from the process table

    @property
    def gone(self) -> bool:
        return self.phase in GONE

    @property
    def known(self) -> bool:
        return self.phase is not Phase.UNKNOWN

    @property
    def answered(self) -> bool:
        """The toolstack itself told the state (not the process table, not a failed query)."""
        return self.known and not self.hypervisor_down

    def describe(self) -> str:
        return f"{self.phase} ({self.detail})" if self.detail else str(self.phase)


def monitor_verdict(obs: Observed) -> tuple[Rc, str]:
    """The monitor result for a state the hypervisor reported (UNKNOWN is for the caller to resolve)."""
    match obs.phase:
        case Phase.RUNNING | Phase.MIGRATING_OUT | Phase.SHUTTING_DOWN:
            return Rc.SUCCESS, obs.describe()
        case Phase.PAUSED_USER | Phase.PM_SUSPENDED:
            # It holds its disks and memory, so it is active; degraded tells the admin it does no work.
            return Rc.DEGRADED, f"domain is {obs.describe()}"
        case Phase.SHUT_OFF | Phase.ABSENT:
            return Rc.NOT_RUNNING, obs.describe()
        case Phase.MIGRATING_IN:
            return Rc.ERR_GENERIC, "domain is paused, waiting for an incoming migration"
        case _:
            return Rc.ERR_GENERIC, f"domain is {obs.describe()}"


# ---- virsh ------------------------------------------------------------------------------------------

_VIRSH_STATES = {
    "running": Phase.RUNNING,
    "idle": Phase.RUNNING,
    "blocked": Phase.RUNNING,
    "paused": Phase.PAUSED,
    "in shutdown": Phase.SHUTTING_DOWN,
    "shut off": Phase.SHUT_OFF,
    "crashed": Phase.CRASHED,
    "pmsuspended": Phase.PM_SUSPENDED,
}
_ABSENT_ERRORS = ("failed to get domain", "domain not found", "no domain with matching")
_UNREACHABLE_ERRORS = (
    "failed to connect",
    "cannot recv data",
    "cannot send data",
    "end of file while reading",
    "broken pipe",
    "connection reset",
    "no connection driver",
    "unable to connect",
    "client socket is closed",
    "cannot connect",
    "keepalive timeout",
    "no route to host",
    "connection refused",
)


def virsh_failure(stderr: str) -> Phase:
    """ABSENT for "no such domain", UNKNOWN for everything else (above all: libvirtd unreachable)."""
    text = stderr.lower()
    if any(e in text for e in _ABSENT_ERRORS) and not any(e in text for e in _UNREACHABLE_ERRORS):
        return Phase.ABSENT
    return Phase.UNKNOWN


_REASON = lazy(r"(.+?)\s*\((.*)\)")


def parse_domstate(out: str) -> tuple[str, str]:
    """`virsh domstate --reason` prints e.g. "paused (migrating)"; returns ("paused", "migrating")."""
    line = next((ln.strip() for ln in out.splitlines() if ln.strip()), "")
    m = _REASON.fullmatch(line)
    return (m.group(1).lower(), m.group(2).lower()) if m else (line.lower(), "")


def parse_dominfo(out: str) -> dict[str, str]:
    """`virsh dominfo`: "Key:   value" lines."""
    fields: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def job_operation(domjobinfo_out: str) -> str:
    """The `Operation:` of `virsh domjobinfo` ("Outgoing migration", ...), or "" when no job runs."""
    return parse_dominfo(domjobinfo_out).get("Operation", "").lower()


def classify_virsh(state: str, reason: str = "", operation: str = "") -> Phase:
    phase = _VIRSH_STATES.get(state, Phase.UNKNOWN)
    if phase is Phase.PAUSED:
        if reason == "user":
            return Phase.PAUSED_USER
        if reason in ("migrating", "migration", "post-copy"):
            return Phase.MIGRATING_OUT if "outgoing" in operation else Phase.MIGRATING_IN
        if reason in ("starting up",):
            return Phase.RUNNING
    if phase is Phase.RUNNING and "outgoing" in operation:
        return Phase.MIGRATING_OUT
    return phase


def observed_from_dominfo(fields: dict[str, str]) -> Observed:
    """A first look from dominfo (state, vCPUs, memory); a paused state needs the reason from domstate."""
    kib = fields.get("Max memory", "")
    kib = kib[:-3].rstrip() if kib.endswith("KiB") else ""
    cpus = fields.get("CPU(s)", "")
    state = fields.get("State", "").lower()
    return Observed(
        phase=classify_virsh(state),
        detail=state,
        vcpus=int(cpus) if cpus.isdigit() else None,
        memory_mib=int(kib) // 1024 if kib.isdecimal() else None,
        persistent={"yes": True, "no": False}.get(fields.get("Persistent", "")),
    )


# ---- xl ---------------------------------------------------------------------------------------------------

INCOMING_SUFFIX = "--incoming"
MIGRATED_SUFFIX = "--migratedaway"


class XlRow(NamedTuple):
    name: str
    domid: int
    memory_mib: int
    vcpus: int
    flags: str  # six columns: r b p s c d, '-' when unset


def parse_xl_list(out: str) -> tuple[XlRow, ...]:
    """`xl list`: a header line, then "Name ID Mem VCPUs State Time(s)" rows (names have no spaces)."""
    rows: list[XlRow] = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 5 or parts[0] == "Name":
            continue
        name, domid, mem, vcpus, flags = parts[:5]
        if not (domid.isdigit() and mem.isdigit() and vcpus.isdigit()):
            continue
        rows.append(XlRow(name, int(domid), int(mem), int(vcpus), flags))
    return tuple(rows)


def classify_xl(rows: Iterable[XlRow], name: str) -> Observed:
    by_name = {r.name: r for r in rows}
    row = by_name.get(name)
    if row is None:
        if (moving := by_name.get(name + MIGRATED_SUFFIX)) is not None:
            return Observed(Phase.MIGRATING_OUT, moving.name, moving.vcpus, moving.memory_mib)
        if (moving := by_name.get(name + INCOMING_SUFFIX)) is not None:
            return Observed(Phase.MIGRATING_IN, moving.name, moving.vcpus, moving.memory_mib)
        return Observed(Phase.ABSENT, "not in xl list")
    flags = row.flags
    if "c" in flags:
        phase = Phase.CRASHED
    elif "s" in flags or "d" in flags:
        phase = Phase.SHUTTING_DOWN
    elif "p" in flags:
        phase = Phase.PAUSED_USER
    else:  # r, b, or "------" (runnable but not scheduled right now)
        phase = Phase.RUNNING
    return Observed(phase, f"xl state {flags}", row.vcpus, row.memory_mib)


# ---- the process table --------------------------------------------------------------------------------

_QEMU = lazy(r"qemu-system-[\w-]+|qemu-kvm|kvm")


def qemu_name(argv: list[str]) -> str | None:
    """The domain name in a qemu command line: `-name guest=NAME,...` (libvirt) or `-name NAME`."""
    if not argv or not _QEMU.fullmatch(os.path.basename(argv[0])):
        return None
    for i, arg in enumerate(argv[:-1]):
        if arg in ("-name", "--name"):
            values = split_qemu_opts(argv[i + 1])
            for value in values:
                if value.startswith("guest="):
                    return value[len("guest=") :]
            return values[0] if values and "=" not in values[0] else None
    return None


def split_qemu_opts(text: str) -> list[str]:
    """qemu option syntax: ',' separates keys, ',,' is a literal comma."""
    parts, current, i = [], [], 0
    while i < len(text):
        if text[i] == "," and text[i + 1 : i + 2] == ",":
            current.append(",")
            i += 2
            continue
        if text[i] == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(text[i])
        i += 1
    parts.append("".join(current))
    return parts


def emulator_pids(processes: Iterable[tuple[int, list[str]]], name: str) -> tuple[int, ...]:
    return tuple(pid for pid, argv in processes if qemu_name(argv) == name)
