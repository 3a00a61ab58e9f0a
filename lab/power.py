# SPDX-License-Identifier: GPL-2.0-or-later
"""Power for lab nodes: on (boot a fresh init in the node's network namespace), off (a power cut: SIGKILL
every process of the node, its TCP sockets destroyed, then the node's /run is gone as after a reboot) and a
clean shutdown.

Only the supervisor powers nodes on, because the init's launcher is its child and must be reaped by a live
parent (PID 1 of this host does not reap orphans). Anyone may power a node off (kill needs no parentage).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from lab.netns import HOLDER_FILE, Node, NodeDown, init_argv, kill_pid


class PowerError(Exception):
    pass


def power_on(node: Node, timeout: float = 120.0) -> subprocess.Popen[bytes]:
    """Boot the node; returns the launcher (`unshare`, parent of the init) once the boot plan has run."""
    if node.is_on():
        raise PowerError(f"{node.name} is already on")
    for name in (HOLDER_FILE, "boot.state"):
        (node.dir / name).unlink(missing_ok=True)
    wipe(node.dir / "run")
    links(node, up=True)
    argv = ["ip", "netns", "exec", node.netns]
    argv += ["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--propagation", "private"]
    argv += init_argv("boot", str(node.dir))
    with open(node.dir / "holder.log", "ab") as out:
        launcher = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    end = time.monotonic() + timeout
    state = node.dir / "boot.state"
    while not state.exists():
        if launcher.poll() is not None:
            raise PowerError(
                f"{node.name}: init exited {launcher.returncode}: {(node.dir / 'holder.log').read_text()}"
            )
        if time.monotonic() > end:
            raise PowerError(f"{node.name}: no boot after {timeout:.0f}s")
        time.sleep(0.05)
    verdict = state.read_text().strip()
    if verdict != "booted":
        raise PowerError(f"{node.name}: {verdict}")
    return launcher


def power_off(node: Node, timeout: float = 30.0) -> bool:
    """SIGKILL everything of the node, init first (the kernel then kills its whole PID namespace at once),
    and wipe its /run. Returns whether anything was running."""
    try:
        holder: int | None = node.holder()
    except NodeDown:
        holder = None
    pids = node.pids()
    end = time.monotonic() + timeout
    links(node, up=False)  # first: a dead machine sends nothing, not even the FIN of a killed process
    if holder is not None:
        kill_pid(holder)
        # its launcher must reap it before dying itself, or it becomes a zombie of this host's PID 1 (which
        # never reaps): so the rest waits until the init is fully gone
        while os.path.exists(f"/proc/{holder}") and time.monotonic() < end:
            time.sleep(0.02)
    for pid in pids:
        kill_pid(pid)
    while node.pids():
        if time.monotonic() > end:
            raise PowerError(f"{node.name}: processes {node.pids()} survive SIGKILL")
        for pid in node.pids():
            kill_pid(pid)
        time.sleep(0.05)
    forget_sockets(node)
    (node.dir / HOLDER_FILE).unlink(missing_ok=True)
    wipe(node.dir / "run")
    return holder is not None or bool(pids)


def forget_sockets(node: Node) -> None:
    """The TCP sockets its killed processes left behind die with the machine: the namespace's kernel would
    otherwise keep retransmitting what they had not sent yet, and deliver it once the node is powered on
    again (tandem-19379: a replicated write sent before the node was fenced reached the survivor after the
    reboot). Destroyed while the links are down, so even their resets vanish."""
    subprocess.run(
        ["ip", "netns", "exec", node.netns, "ss", "-K", "-t", "-a"], capture_output=True, check=False
    )


def links(node: Node, *, up: bool) -> None:
    """The node's network interfaces (all but lo) up, or down as with the power gone: its peers' packets
    vanish (no RST, no FIN), as on the wire of a real power cut."""
    shown = subprocess.run(
        ["ip", "-n", node.netns, "-j", "link", "show"], capture_output=True, text=True, check=False
    )
    if shown.returncode != 0:  # no namespace (the lab is being torn down): nothing to do
        return
    for name in (link["ifname"] for link in json.loads(shown.stdout or "[]")):
        if name != "lo":
            subprocess.run(
                ["ip", "-n", node.netns, "link", "set", name, "up" if up else "down"],
                capture_output=True,
                check=False,
            )


def stop_services(node: Node, timeout: float = 300.0) -> None:
    """Stop pacemaker (which stops the resources) and corosync inside the node, as a clean shutdown does."""
    node.run([*init_argv("stop-services", str(timeout))], timeout=timeout * 2 + 10)


def wipe(run_dir: Path) -> None:
    """Empty a node's /run (it is a tmpfs on a real machine)."""
    if not run_dir.is_dir():
        return
    for entry in run_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
