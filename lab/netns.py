# SPDX-License-Identifier: GPL-2.0-or-later
"""A lab node: one machine of the lab cluster, made of Linux namespaces on this host.

Contract for everyone who runs things in lab nodes (libvirt/guest, DRBD emulator, agents, end-to-end tests):

- A `Node` is a plain value: `name` ("node1"), `index` (1), `dir` (its state dir on the host), `address` (its
  IPv4 address, reachable only from inside the lab's namespaces), `netns` (the `ip netns` name of its network
  namespace, which lives as long as the lab) and `hub` (the namespace holding the bridge all nodes plug into).
- While a node is powered on, its PID 1 (the "holder", lab/init.py) pins its mount, UTS and PID namespaces.
  Private per node (bind mounts of entries of `dir`, e.g. dir/etc-corosync, plus LabConfig.binds):
  /etc/corosync, /var/lib/{pacemaker,corosync,heartbeat}, /var/log/{pacemaker,corosync,crmsh}, /run
  (`dir/run`, wiped at power-off like a tmpfs), /dev/shm (a tmpfs that dies with the node) and /dev/log (a
  syslog socket served by the holder into `dir/syslog.log`).
  Everything else (/usr, /tmp, /etc, the rest of /var) is the host's, shared by all nodes.
- `run()` executes an argv inside all four namespaces (nsenter on the holder), never through a shell, with a
  clean environment (`base_env()` plus what the caller adds). It waits, with a timeout; on timeout the command
  is killed inside the node too. `popen()` is the same for processes the caller manages; `spawn()` starts a
  detached daemon that the node's init adopts, so it lives until the node powers off.
- A powered-off node raises `NodeDown` from all three. Power (on, off, reboot) is the lab's business
  (Lab.power, lab.faults), not the node's: a node only finds its processes and runs things in itself.
- Pids: `holder()` and `pids()` are host pids (for signals from the host); pids printed inside a node are
  node-local and must only be used inside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parent.parent
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOLDER_FILE = "holder.pid"


class NodeDown(Exception):
    """The node is powered off (no live holder), so nothing can run in it."""


def proc_starttime(pid: int) -> int | None:
    """Start time of a live (non-zombie) process in clock ticks, or None; guards against pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def ns_inode(pid: int | str, kind: str) -> int | None:
    """Inode of a process's namespace of the given kind ("net", "pid", ...), or None if it is gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def pids_in(kind: str, inode: int) -> list[int]:
    """Host pids of the processes whose `kind` namespace has this inode (by namespace, never by name)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and ns_inode(entry.name, kind) == inode:
            found.append(int(entry.name))
    return found


def children(pid: int) -> list[int]:
    """Direct children of a host process."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass(frozen=True)
class Node:
    name: str
    index: int
    dir: Path
    address: str
    netns: str
    hub: str

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    def netns_inode(self) -> int | None:
        try:
            return self.netns_path.stat().st_ino
        except OSError:
            return None

    def holder(self) -> int:
        """Host pid of the node's PID 1; raises NodeDown when the node is off."""
        try:
            pid_text, start_text = (self.dir / HOLDER_FILE).read_text().split()
        except (OSError, ValueError):
            raise NodeDown(f"{self.name} is off") from None
        pid = int(pid_text)
        if proc_starttime(pid) != int(start_text):
            raise NodeDown(f"{self.name} is off (holder {pid} is gone)")
        return pid

    def is_on(self) -> bool:
        try:
            self.holder()
        except NodeDown:
            return False
        return True

    def ns_paths(self) -> dict[str, str]:
        """Paths of the node's namespaces (net, mnt, uts, pid) for tools that take namespace files."""
        holder = self.holder()
        paths = {kind: f"/proc/{holder}/ns/{kind}" for kind in ("mnt", "uts", "pid")}
        paths["net"] = str(self.netns_path)
        return paths

    def pids(self) -> list[int]:
        """Host pids of every process that belongs to this node: in its network or its PID namespace."""
        found: set[int] = set()
        net = self.netns_inode()
        if net is not None:
            found.update(pids_in("net", net))
        try:
            holder = self.holder()
        except NodeDown:
            return sorted(found)
        pidns = ns_inode(holder, "pid")
        if pidns is not None:
            found.update(pids_in("pid", pidns))
        return sorted(found)

    def base_env(self) -> dict[str, str]:
        """The clean environment commands get inside the node (crmsh writes to $HOME, so it is per node)."""
        return {
            "PATH": PATH,
            "HOME": str(self.dir / "home"),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PCMK_logfacility": "none",
            "PCMK_logfile": "/var/log/pacemaker/pacemaker.log",
        }

    def _argv(self, argv: Sequence[str]) -> list[str]:
        if not argv:
            raise ValueError("empty argv")
        return ["nsenter", "-t", str(self.holder()), "-n", "-m", "-u", "-p", "--", *argv]

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        return {**self.base_env(), **(env or {})}

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the node and wait; CalledProcessError if check and it fails, TimeoutExpired after
        killing it (inside the node too) when it outlives the timeout."""
        full = self._argv(argv)
        with subprocess.Popen(
            full,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=self._env(env),
        ) as proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                # nsenter forked the command into the node's PID namespace: kill it, not only nsenter.
                for child in children(proc.pid):
                    kill_pid(child)
                proc.kill()
                try:
                    out, err = proc.communicate(timeout=5)
                except subprocess.TimeoutExpired:  # a grandchild (e.g. a background virsh) holds the pipes
                    out, err = "", ""
                raise subprocess.TimeoutExpired(list(argv), timeout, out, err) from None
        return finished(argv, proc.returncode, out, err, check=check)

    def popen(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[Any]:
        """Start argv inside the node; the caller waits for it. `.pid` is the host pid of the nsenter
        wrapper, whose only child is the command (`children(p.pid)`); killing the wrapper orphans the
        command to the node's init, so kill the child too (or power the node off)."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self._argv(argv), env=self._env(env), **kwargs)

    def spawn(self, argv: Sequence[str], *, log: Path | str, env: Mapping[str, str] | None = None) -> int:
        """Start a daemon inside the node, detached (new session, adopted by the node's init) with stdout
        and stderr appended to `log` (a path inside the node). Returns its node-local pid."""
        result = self.run([*init_argv("spawn", str(log)), "--", *argv], timeout=30, env=env)
        return int(result.stdout.strip())


def finished(
    argv: Sequence[str], returncode: int, out: str, err: str, *, check: bool
) -> subprocess.CompletedProcess[str]:
    """A command's outcome as subprocess.run gives it (CalledProcessError if `check` and it failed)."""
    if check and returncode != 0:
        raise subprocess.CalledProcessError(returncode, list(argv), out, err)
    return subprocess.CompletedProcess(list(argv), returncode, out, err)


def init_argv(*args: str) -> list[str]:
    """argv of lab/init.py (stdlib only, run by path so that nodes need no PYTHONPATH)."""
    return [sys.executable, str(TOP / "lab" / "init.py"), *args]


def kill_pid(pid: int) -> None:
    """SIGKILL a host pid that may already be gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
