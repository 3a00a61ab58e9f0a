# SPDX-License-Identifier: GPL-2.0-or-later
"""/proc/drbd of DRBD 8.3 and 8.4: one unnamed resource per minor, with a single unnamed connection.

DRBD 9's /proc/drbd shows only the version, so it parses to no resources. Format: the kernel's
`drbd_proc.c` (8.3 prints five I/O flags, 8.4 six; StandAlone prints a blank protocol column; 0.7 and
early 8.0 print `st:` and only the local disk as `ld:`; copies of the file in documents may show spaces where
the kernel printed TABs). The device lines carry the state: the header before them (version and build lines
of any build, cut or joined by a mail client, or absent) is read for the version and otherwise passed over;
inside a device's lines every line must be one the kernel prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tandem.drbd.model import (
    SUSPENDED_UNKNOWN,
    Connection,
    Device,
    DiskState,
    PeerDevice,
    Resource,
    Role,
    Status,
)
from tandem.drbd.parse_common import Line, lines, percent, split_cs, state

_VERSION = re.compile(r"version: (\S+) \(api:\S+")
# Build tags (git or distribution builds, 8.0's SVN) and DRBD 9's transport list.
_HEADER = ("GIT-hash:", "srcversion:", "SVN Revision:", "Transports ")
_MINOR = re.compile(r"\s*(\d+): cs:(\S+)(.*)")
# 8.0-8.2 printed `st:` where 8.3+ print `ro:`.
_STATE = re.compile(r" (?:ro|st):([^\s/]+)/(\S+) ds:([^\s/]+)/(\S+)(?: +([ABC]))?(?: +([rs][-a-z]*))? *")
_LOCAL_DISK = re.compile(r" st:([^\s/]+)/(\S+) ld:(\S+) *")  # the peer's disk state is not shown
_COUNTERS = re.compile(r"\s+ns:\d+(?: \w+:\S+)*\s*")
_PROGRESS = re.compile(r"\s*\[[=>.]*\] (?:sync'ed|verified): *(\d+(?:\.\d+)?)% ")
# Lines of the progress block and of proc_details >= 1 that say nothing the model holds.
_DETAILS = re.compile(
    r"\s+(?:finish: |resync: |act_log: |blocked on activity log: |\d+% sector pos: |stalled\s*$)"
)
# role, peer role, disk, peer disk, protocol, I/O flags
States = tuple[str, str, str, str, str | None, str | None]


@dataclass
class _Minor:
    """What one minor's lines said so far (the progress line comes after the state line)."""

    line: Line
    minor: int
    cs: str
    state: States | None
    done: float | None = None

    def resource(self) -> Resource:
        if self.state is None:  # cs:Unconfigured: StandAlone, Diskless, Secondary, no net config
            device = Device(volume=None, minor=self.minor, disk=DiskState.DISKLESS)
            return Resource(name=None, role=Role.UNCONFIGURED, devices=(device,))
        at = self.line
        role, peer_role, disk, peer_disk, _protocol, flags = self.state
        connection, replication = split_cs(self.cs, at)
        peer_device = PeerDevice(
            volume=None,
            replication=replication,
            peer_disk=state(DiskState, peer_disk, "peer disk state", at),
            done=self.done,
        )
        return Resource(
            name=None,
            role=state(Role, role, "role", at),
            devices=(Device(volume=None, minor=self.minor, disk=state(DiskState, disk, "disk state", at)),),
            connections=(
                Connection(
                    peer=None,
                    connection=connection,
                    peer_role=state(Role, peer_role, "peer role", at),
                    peer_devices=(peer_device,),
                ),
            ),
            suspended=SUSPENDED_UNKNOWN if flags and flags.startswith("s") else (),
        )


def _start(match: re.Match[str], at: Line) -> _Minor:
    minor, cs, rest = match.groups()
    if cs == "Unconfigured":
        if rest.strip():
            raise at.error("an unconfigured minor has no states")
        return _Minor(at, int(minor), cs, None)
    found = _STATE.fullmatch(rest)
    local_only = _LOCAL_DISK.fullmatch(rest)
    if found is not None:
        role, peer_role, disk, peer_disk, protocol, flags = found.groups()
        states: States = (role, peer_role, disk, peer_disk, protocol, flags)
    elif local_only is not None:
        role, peer_role, disk = local_only.group(1, 2, 3)
        states = (role, peer_role, disk, "DUnknown", None, None)
    else:
        raise at.error("expected ro:ROLE/ROLE ds:DISK/DISK after cs:")
    split_cs(cs, at)  # an unknown cs: fails on its own line
    return _Minor(at, int(minor), cs, states)


def parse_proc(text: str) -> Status:
    version: str | None = None
    stray: Line | None = None  # the first header line that is no version or build line
    minors: list[_Minor] = []
    for line in lines(text, "/proc/drbd"):
        if not line.text.strip():
            continue  # the kernel prints a blank line where minors are missing
        started = _MINOR.fullmatch(line.text)
        if started:
            minors.append(_start(started, line))
            continue
        if not minors:
            head = _VERSION.search(line.text)
            if head and version is None:
                version = head.group(1)
            elif not head and stray is None and not line.text.lstrip().startswith(_HEADER):
                stray = line
            continue
        current = minors[-1]
        if current.state is None:
            raise line.error(f"minor {current.minor} is unconfigured and has no detail lines")
        progress = _PROGRESS.match(line.text)
        if progress:
            current.done = percent(progress.group(1), "sync'ed", line)
        elif not (_COUNTERS.fullmatch(line.text) or _DETAILS.match(line.text)):
            raise line.error(f"unexpected line under minor {current.minor}")
    if stray is not None and not minors:  # no device line vouches for the text: the header is all there is
        raise stray.error("not a /proc/drbd header line")
    return Status(format="proc", version=version, resources=tuple(m.resource() for m in minors))
