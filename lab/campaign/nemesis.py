# SPDX-License-Identifier: GPL-2.0-or-later
"""The nemesis: puts each fault kind of lab.campaign.schedule into a running VmCluster, and takes it out.

Node faults go through lab.faults (the supervisor's power, signals by namespace); link faults are blackhole
routes on the cluster network (eth0) and on the replication network (eth1, DRBD's addresses), each cut
both ways, so that either network fails alone; handler faults are the emulator's own (its state's
`handler/NODE/fence-peer` fault, what `drbd-emu handler` sets); the fence device fails while the lab
supervisor's socket (fence_tandemlab's power switch, and the nemesis's own power button) is renamed
away. A killed libvirtd is started again
LIBVIRTD_RESTART s later, as systemd's Restart=on-failure does on a real host (pacemakerd respawns its own
daemons). Nothing here decides anything: the schedule says what and when, the checkers judge.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from lab import faults
from lab.campaign import controls
from lab.campaign.checkers import Injection
from lab.campaign.schedule import Event
from lab.cluster import LabError, poll, sh
from lab.libvirt import Libvirtd, LibvirtError
from lab.netns import Node, NodeDown
from lab.scenarios import RES, VM, VmCluster, qemu_processes

DAEMONS = {
    "crash-corosync": "corosync",
    "crash-controld": "pacemaker-controld",
    "crash-execd": "pacemaker-execd",
    "crash-fenced": "pacemaker-fenced",
    "crash-libvirtd": "libvirtd",
    "crash-qemu": "qemu-system-x86_64",
}
HANDLER_FAULTS: dict[str, str | int] = {"fence-peer-hang": "hang", "fence-peer-fail": 1}
SLOW_RATE = "256kbit"
LIBVIRTD_RESTART = 5.0
MIGRATION_WAIT = 20.0  # a move's migrate_to/migrate_from starts within this (seconds), or the fault is off


class Skipped(Exception):
    """A fault left out because it would be beyond what the cluster is built to survive."""


class Nemesis:
    """Faults on one VmCluster whose lab has a replication network (LabConfig.repl_net)."""

    def __init__(self, vc: VmCluster) -> None:
        self.vc = vc
        self.lab = vc.lab
        self._background: list[threading.Thread] = []
        # overlapping faults of one thing (a network, the handlers, a disk): the last undo heals it
        self._cuts: dict[str, int] = {}  # network, "handlers" or "disk/NODE" → faults of it in force
        self.errors: list[str] = []

    # ---- where things are -------------------------------------------------------------------------
    def resolve(self, role: str) -> str | None:
        """The node a role names now (None: nobody holds it, e.g. no VM running)."""
        if role == "dc":
            state = self.lab.state()
            return None if state is None else state.dc()
        qemu = qemu_processes(self.lab)
        vm = qemu[0] if len(qemu) == 1 else None
        if role == "vm":
            return vm
        others = [n.name for n in self.lab.nodes if n.name != vm]
        return others[0] if vm is not None and others else None

    def repl_address(self, node: Node) -> str:
        return f"{self.lab.config.repl_net}.{node.index}"

    # ---- the faults ------------------------------------------------------------------------------
    def inject(self, event: Event) -> Injection:
        node = self.resolve(event.role) if event.role else ""
        now = time.time()
        if node is None:
            return Injection(now, event.kind, "", False, f"skipped: no node is {event.role}")
        if node and not self.lab.node(node).is_on():
            return Injection(now, event.kind, node, False, "skipped: node off")
        try:
            if event.during:
                self._migrating(event.during)
                now = time.time()
            self._do(event.kind, node)
        except Skipped as why:
            return Injection(now, event.kind, node, False, f"skipped: {why}")
        except (LabError, subprocess.SubprocessError, OSError) as exc:
            return Injection(now, event.kind, node, False, f"failed: {exc}"[:200])
        return Injection(now, event.kind, node, False, "")

    def _migrating(self, phase: str) -> None:
        """Start a live migration of vm1 and return as soon as the DC initiates its `phase` (migrate_to on
        the source, migrate_from on the target), read from the nodes' pacemaker.log as it is written."""
        logs = [n.dir / "var-log-pacemaker" / "pacemaker.log" for n in self.lab.nodes]
        offsets = [p.stat().st_size if p.exists() else 0 for p in logs]
        self._do("move", "")
        wanted = f"Initiating {phase} operation {VM}_{phase}_0".encode()
        end = time.monotonic() + MIGRATION_WAIT
        while time.monotonic() < end:
            for i, path in enumerate(logs):
                with contextlib.suppress(FileNotFoundError), path.open("rb") as fh:
                    fh.seek(offsets[i])
                    if wanted in fh.read():
                        return
            time.sleep(0.02)
        raise LabError(f"no {phase} of {VM} within {MIGRATION_WAIT:.0f}s of the move")

    def _do(self, kind: str, node: str) -> None:
        if kind == "power-cut":
            faults.kill(self.lab, node)
        elif kind == "reboot":
            faults.reboot(self.lab, node)
        elif kind == "stop-start":  # a clean stop waits for pacemaker to move everything away: not here
            self._later(0.0, self._stop, node)
        elif kind in ("partition", "cluster-cut"):
            self._cluster_link(cut=True)
            if kind == "partition":
                self._repl(cut=True)
        elif kind == "repl-cut":
            self._repl(cut=True)
        elif kind == "slow-link":
            faults.slow(self.lab, node, rate=SLOW_RATE)
        elif kind in DAEMONS:
            faults.crash_daemon(self.lab, node, DAEMONS[kind])
            if kind == "crash-libvirtd":
                self._later(LIBVIRTD_RESTART, self._start_libvirtd, node)
        elif kind in HANDLER_FAULTS:
            self._count("handlers", cut=True)
            self._handlers(HANDLER_FAULTS[kind])
            self._repl(cut=True)
        elif kind == "fence-fail":
            self._fence_device(works=False)
        elif kind == "disk-fail":
            self._disk(node, works=False)
            self._count(f"disk/{node}", cut=True)
        elif kind == "move":
            target = self.resolve("other")
            if target is None:
                raise LabError("vm1 runs nowhere: nothing to move")
            self.lab.crm("resource", "move", VM, target)
        elif kind == "clear":
            self.lab.crm("resource", "clear", VM)
        elif kind in controls.CONTROLS:
            controls.sabotage(self.vc, kind, node)
        else:
            raise LabError(f"unknown fault kind {kind}")

    def undo(self, event: Event, node: str) -> Injection:
        """Take a lasting fault out again (the node is the one its injection hit)."""
        try:
            if event.kind == "stop-start":
                self._join_background()
                faults.start(self.lab, node)
            elif event.kind in ("partition", "cluster-cut"):
                self._cluster_link(cut=False)
                if event.kind == "partition":
                    self._repl(cut=False)
            elif event.kind == "repl-cut":
                self._repl(cut=False)
            elif event.kind == "slow-link":
                faults.unslow(self.lab, node)
            elif event.kind in HANDLER_FAULTS:
                if self._count("handlers", cut=False):
                    self._handlers(None)
                self._repl(cut=False)
            elif event.kind == "fence-fail":
                self._fence_device(works=True)
            elif event.kind == "disk-fail" and self._count(f"disk/{node}", cut=False):
                self._disk(node, works=True)
            elif event.kind in controls.CONTROLS:
                controls.repair(self.vc, event.kind, node)
        except (LabError, NodeDown, subprocess.SubprocessError, OSError) as exc:
            return Injection(time.time(), event.kind, node, True, f"failed: {exc}"[:200])
        return Injection(time.time(), event.kind, node, True, "")

    def heal_all(self, boot_wait: float) -> None:
        """Every fault out: links healed and unshaped, handlers normal, every node on (a fenced node is
        given `boot_wait` s to come back by itself first, as fencing reboots it)."""
        self._fence_device(works=True)
        for n in self.lab.nodes:
            self._disk(n.name, works=True)
        faults.heal(self.lab)
        self._cuts.clear()
        faults.unslow(self.lab)
        self._handlers(None)
        self._join_background()
        end = time.monotonic() + boot_wait
        while any(not n.is_on() for n in self.lab.nodes) and time.monotonic() < end:
            time.sleep(0.5)
        for n in self.lab.nodes:
            if not n.is_on():
                with contextlib.suppress(LabError):
                    faults.start(self.lab, n)

    # ---- helpers ---------------------------------------------------------------------------------
    def _later(self, delay: float, what: Callable[[str], None], node: str) -> None:
        """`what(node)` in a thread after `delay` s; its errors are reported with the run."""

        def run() -> None:
            time.sleep(delay)
            try:
                what(node)
            except (LabError, LibvirtError, NodeDown, subprocess.SubprocessError, OSError) as exc:
                self.errors.append(f"{what.__name__.strip('_')} {node}: {exc}"[:300])

        th = threading.Thread(target=run, daemon=True)
        th.start()
        self._background.append(th)

    def _stop(self, node: str) -> None:
        faults.stop(self.lab, node)

    def _start_libvirtd(self, node: str) -> None:
        if self.lab.node(node).is_on():
            Libvirtd(self.lab.node(node)).start()

    def _join_background(self) -> None:
        for th in self._background:
            th.join(timeout=600)
        self._background.clear()

    def _routes(self, addresses: dict[str, str], cut: bool) -> None:
        """Blackhole (or restore) the routes from each node to the others' `addresses` (node -> address)."""
        for src in self.lab.nodes:
            for name, addr in addresses.items():
                if name == src.name:
                    continue
                verb = "replace" if cut else "del"
                sh(["ip", "-n", src.netns, "route", verb, "blackhole", f"{addr}/32"], check=cut)

    def _repl(self, cut: bool) -> None:
        if self._count("repl", cut):
            self._routes({n.name: self.repl_address(n) for n in self.lab.nodes}, cut)

    def _cluster_link(self, cut: bool) -> None:
        if self._count("cluster", cut):
            self._routes({n.name: n.address for n in self.lab.nodes}, cut)

    def _count(self, network: str, cut: bool) -> bool:
        """Whether to act: every cut of a network (or handler fault) acts, only its last undo heals it."""
        self._cuts[network] = max(0, self._cuts.get(network, 0) + (1 if cut else -1))
        return cut or self._cuts[network] == 0

    def _fence_device(self, works: bool) -> None:
        live, away = self.lab.socket_path, self.lab.socket_path.with_name("control.sock.off")
        if works and away.exists():
            away.rename(live)
        elif not works and live.exists():
            live.rename(away)

    def _disk(self, node: str, works: bool) -> None:
        """The node's backing disk fails under DRBD, or (works) is replaced and attached again, as an
        operator does: a blank disk, `create-md` on it, attach; DRBD resyncs it in full from its peer. A node
        that is off attaches when it boots."""
        from lab.drbd_emu import engine, replica

        with engine.Store(self.vc.emu_dir).locked() as st:
            key = f"disk/{node}/{RES}/0"

            def disk(n: str) -> dict[str, Any]:
                return (engine.res_state(st, n, RES) or {}).get("disks", {}).get("0", {})  # type: ignore[no-any-return]

            if not works:
                if disk(node).get("client"):
                    raise Skipped(f"{node} is a diskless client: no disk to fail")
                if not any(disk(n.name).get("state") == "UpToDate" for n in self.lab.nodes if n.name != node):
                    raise Skipped("no other UpToDate copy: a second failed disk would lose the data")
                engine.fail_disk(st, node, RES, "0", time.time())
                return
            if not st["faults"].pop(key, None):
                return
            copy = replica.backing(node, RES, "0", self.vc.emu_dir)
            if copy.exists():  # not touched while the disk is failed (replica.py)
                size = copy.stat().st_size
                os.truncate(copy, 0)
                os.truncate(copy, size)
            engine.create_md(st, node, RES, ["0"])
        if self.lab.node(node).is_on():
            poll(lambda: self._detached(node) or None, 30, f"{node}'s failed disk detached")
            self.lab.run(node, ["drbdadm", "attach", RES], check=True, timeout=60)

    def _detached(self, node: str) -> bool:
        """DRBD has finished with the failed disk (Failed → Diskless): the operator's new one can be
        attached (an attach while it is still Failed would find a disk there; tandem-16317 was left
        Diskless so)."""
        from lab.drbd_emu import engine

        r = engine.res_state(self.vc.emu_state(), node, RES)
        return r is None or r["disks"]["0"]["state"] != "Failed"

    def _handlers(self, fault: str | int | None) -> None:
        """Every node's fence-peer handler hangs, fails with `fault`, or (None) runs normally again."""
        from lab.drbd_emu import engine

        with engine.Store(self.vc.emu_dir).locked() as st:
            for n in self.lab.nodes:
                key = f"handler/{n.name}/fence-peer"
                if fault is None:
                    st["faults"].pop(key, None)
                else:
                    st["faults"][key] = fault
