# SPDX-License-Identifier: GPL-2.0-or-later
"""The machine a run was made on: what results.md prints next to the numbers."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from lab.netns import TOP


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _dpkg(package: str) -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "not installed"


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(TOP), *args], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def describe(accel: str) -> list[tuple[str, str]]:
    """(what, value) rows; `accel` is the lab's choice for guests (lab.accel)."""
    mem_kib = int(_first("/proc/meminfo", "MemTotal").split()[0] or 0)
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    python = subprocess.run(
        ["/usr/bin/python3", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        ("CPU", f"{_first('/proc/cpuinfo', 'model name')}, {os.cpu_count()} CPUs (nproc)"),
        ("memory", f"{mem_kib / 2**20:.1f} GiB"),
        ("kernel", platform.release()),
        ("Debian", Path("/etc/debian_version").read_text().strip()),
        ("agents' python", f"/usr/bin/python3: {python}"),
        ("pacemaker", _dpkg("pacemaker")),
        ("corosync", _dpkg("corosync")),
        ("libvirt", _dpkg("libvirt-daemon")),
        ("qemu", _dpkg("qemu-system-x86")),
        ("drbd-utils (ocf:linbit:drbd)", _dpkg("drbd-utils")),
        ("resource-agents (VirtualDomain)", _dpkg("resource-agents")),
        ("guest accelerator", accel),
        ("load average at start", " ".join(Path("/proc/loadavg").read_text().split()[:3])),
        ("tandem", f"{_git('rev-parse', '--short', 'HEAD')}{' + uncommitted changes' if dirty else ''}"),
    ]
