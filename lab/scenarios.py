# SPDX-License-Identifier: GPL-2.0-or-later
"""The three end-to-end scenarios of the demo and the scenario tests, on one 2-node lab cluster.

The cluster: STONITH (fence_tandemlab), a dual-primary DRBD resource r0 on the emulator (allow-two-primaries,
fencing resource-and-stonith, handlers tandem-fence-peer/tandem-unfence-peer) as the promotable clone
drbd-r0-clone (ocf:tandem:drbd), and vm1 (ocf:tandem:domain), a real QEMU guest under each node's libvirtd
whose disk is the emulated /dev/drbdN, configured from lab/config/crm.txt (the README's crm block).

Each node's /dev/drbdN is that node's own copy of the data (the emulator's data plane, replica.py): the
guest's writes are replicated while the nodes are connected, marked out of sync while they are not, and
resynced when a node returns. So data safety is checked on the data itself: after every restart of the guest
and at the end of every scenario, what the guest finds on its disk, and what each node's copy holds, must
be at least the last generation the guest acknowledged (`check_copies`, `lab.guest.disk.data_check`). The
`Observer` samples the nodes' power and where QEMU runs, which is what "never two copies" is checked on; the
resyncs come from the emulator's own log of those it started (however short: exactly the changed blocks).

Use: `with VmCluster.start(base_config, work_dir, progress) as vc:` then `live_migration(vc)`,
`node_failure(vc)`, `partition(vc)`; each returns its measurements and raises ScenarioError when the
cluster does not do what it should.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from lab.cluster import Bind, Lab, LabConfig, LabError, poll, teardown
from lab.crm import ClusterState
from lab.guest.serial import SerialLog
from lab.netns import TOP, NodeDown

RES = "r0"
VM = "vm1"
CLONE = "drbd-r0-clone"
MINOR = 9271
DEVICE = f"/dev/drbd{MINOR}"
DOMAIN_XML = "/etc/libvirt/tandem/vm1.xml"  # the path crm.txt names; per node, under its private /etc/libvirt
CRM_CONFIG = TOP / "lab" / "config" / "crm.txt"
README = TOP / "README.md"
CRM_MARKERS = ("<!-- crm-config -->", "<!-- /crm-config -->")
RESYNC_KIB_S = 64  # emulated resync speed after the initial sync: slow enough to see a resync happen
# A fenced node stays off this long before it boots again (a real server takes minutes): the survivor runs
# the VM alone meanwhile, so its writes must reach the returning node by a resync.
REBOOT_DELAY = 15.0
# drbd.conf's handlers: every one the README installs; for the anchors, drbd-utils' own as DRBD's user guide
# configures them for Pacemaker (it has no after-resync-target for Pacemaker)
TANDEM_HANDLERS = {
    "fence-peer": "/usr/sbin/tandem-fence-peer",
    "unfence-peer": "/usr/sbin/tandem-unfence-peer",
    "after-resync-target": "/usr/sbin/tandem-after-resync-target",
    "disconnected": "/usr/sbin/tandem-disconnected",
}
ANCHOR_HANDLERS = {
    "fence-peer": "/usr/lib/drbd/crm-fence-peer.9.sh",
    "unfence-peer": "/usr/lib/drbd/crm-unfence-peer.9.sh",
}
WAIT = 240.0  # generous: the machine has 2 shared cores and the guest runs under TCG


class ScenarioError(AssertionError):
    """The cluster did not do what the scenario expects; the message says what and where to look."""


Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """A Progress that says nothing."""


def crm_block(
    readme: Path = README, fallback: Path = CRM_CONFIG, markers: tuple[str, str] = CRM_MARKERS
) -> str:
    """The README's crm configuration block (between its markers, without the code fence), else crm.txt."""
    text = readme.read_text() if readme.exists() else ""
    start, end = markers
    if start in text and end in text:
        body = text.split(start, 1)[1].split(end, 1)[0]
        lines = [ln for ln in body.strip().splitlines() if not ln.startswith("```")]
        return "\n".join(lines).strip() + "\n"
    return fallback.read_text()


# ---------------------------------------------------------------- observing the guest and the nodes


@dataclass(frozen=True)
class Sample:
    t: float  # epoch seconds
    on: frozenset[str]  # nodes powered on
    qemu: tuple[str, ...]  # the node of every QEMU process of the guest (a node twice: two processes)


def qemu_processes(lab: Lab, vm: str = VM) -> list[str]:
    """The lab node of each QEMU process running `vm` (a host /proc scan: cheap enough 4 times a second)."""
    by_net = {n.netns_inode(): n.name for n in lab.nodes}
    found = []
    needle = f"guest={vm},".encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmdline = fh.read()
            if b"qemu-system" not in cmdline.split(b"\0", 1)[0] or needle not in cmdline:
                continue
            net = os.stat(f"/proc/{entry.name}/ns/net").st_ino
        except OSError:
            continue
        if net in by_net:
            found.append(by_net[net])
    return sorted(found)


class Observer:
    """A thread that samples the lab: power, and where QEMU runs."""

    def __init__(self, vc: VmCluster, interval: float = 0.25) -> None:
        self.vc = vc
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-observer", daemon=True)
        self._error: BaseException | None = None

    def start(self) -> Observer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def check(self) -> None:
        if self._error is not None:
            raise ScenarioError(f"the lab observer failed: {self._error!r}")

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                on = {n.name for n in self.vc.lab.nodes if n.is_on()}
                qemu = qemu_processes(self.vc.lab)
                self.samples.append(Sample(time.time(), frozenset(on), tuple(qemu)))
        except BaseException as exc:  # reported to the scenario thread by check()
            self._error = exc

    def doubles(self, windows: list[tuple[float, float]]) -> list[Sample]:
        """Samples with more than one QEMU of the guest outside every allowed (migration) window."""
        return [s for s in self.samples if len(s.qemu) > 1 and not any(a <= s.t <= b for a, b in windows)]


# ---------------------------------------------------------------- the cluster


@dataclass
class VmCluster:
    """The lab with DRBD, libvirt and the guest; `work` holds the emulator state, drbd.conf and serial log."""

    lab: Lab
    work: Path
    progress: Progress = quiet
    t0: float = field(default_factory=time.monotonic)
    observer: Observer | None = None
    migration_windows: list[tuple[float, float]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)  # (epoch, what the scenario did)

    @property
    def emu_dir(self) -> Path:
        return self.work / "emu"

    @property
    def serial(self) -> Path:
        return self.work / f"{VM}.serial"

    drbd_handlers: ClassVar[Mapping[str, str]] = TANDEM_HANDLERS
    node_count: ClassVar[int] = 2
    resync_kib_s: ClassVar[float] = RESYNC_KIB_S
    promoted_max: ClassVar[int] = 2  # Promoted instances of the clone when healthy (the crm's promoted-max)
    kernel: ClassVar[str | None] = None  # the emulated DRBD release (None: the emulator's default)
    reconcile_s: ClassVar[float | None] = None  # how long 9.2.19's hold after a Primary loss lasts

    # ---- set-up ----------------------------------------------------------------------------
    @classmethod
    def drbd_conf(cls, net: str) -> str:
        """The lab's drbd.conf: r0 dual primary on node1 and node2, fencing by the handlers."""
        from lab.drbd_emu.setup import two_node_conf

        return two_node_conf(
            net=net,
            minor=MINOR,
            res=RES,
            dual=True,
            fencing="resource-and-stonith",
            handlers=cls.drbd_handlers,
            comment="lab drbd.conf (emulated DRBD 9): dual primary, fencing by its handlers",
        )

    @classmethod
    def crm(cls) -> str:
        """The crm configuration the cluster runs: the README's block."""
        return crm_block()

    @classmethod
    def lab_config(cls, base: LabConfig, work: Path) -> LabConfig:
        """`base` plus what every node needs before its cluster starts: libvirtd at boot, the DRBD emulator
        (state as after the initial full sync: UpToDate on both nodes), and /etc/hosts with the node names
        (the domain agent reaches the peer's libvirtd by node name)."""
        from lab.drbd_emu.install import lab_hooks
        from lab.drbd_emu.setup import fresh_dir, initial_sync
        from lab.libvirt import boot_hook

        base = replace(base, nodes=cls.node_count)
        fresh_dir(work / "emu")  # the loop devices a crashed run left over its copies, detached
        shutil.rmtree(work, ignore_errors=True)
        emu = work / "emu"
        emu.mkdir(parents=True)
        conf = emu / "drbd.conf"
        conf.write_text(cls.drbd_conf(base.net))
        initial_sync(
            emu, conf, RES, resync_kib_s=cls.resync_kib_s, kernel=cls.kernel, reconcile_s=cls.reconcile_s
        )
        hosts = work / "hosts"
        names = "".join(f"{base.net}.{i} node{i}\n" for i in range(1, base.nodes + 1))
        hosts.write_text(f"127.0.0.1 localhost\n{names}")
        hooks = lab_hooks(emu, conf)
        config = base.with_hooks(boot=[boot_hook()]).with_hooks(**hooks)  # type: ignore[arg-type]
        return replace(
            config, binds=(*config.binds, Bind(str(hosts), "/etc/hosts")), reboot_delay=REBOOT_DELAY
        )

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, base: LabConfig, work: Path, progress: Progress = quiet, crm: str | None = None
    ) -> Iterator[VmCluster]:
        """Build the whole cluster, yield it, and always tear it down (logs kept in work/logs on failure)."""
        t0 = time.monotonic()
        config = cls.lab_config(base, work)
        teardown(config)
        lab = Lab(config)
        vc = cls(lab, work, progress, t0)
        try:
            took = lab.up()
            vc.say(f"lab cluster up: {len(lab.nodes)} nodes online with STONITH ({took:.1f}s)")
            vc.configure(crm if crm is not None else cls.crm())
            yield vc
        finally:
            with _no_interrupts():  # a second Ctrl-C must not leave the lab half torn down
                if vc.observer is not None:
                    vc.observer.stop()
                with contextlib.suppress(Exception):
                    vc.collect(work / "logs")
                lab.down()
                from lab.drbd_emu.devices import detach_loops

                detach_loops(vc.emu_dir)  # the emulator's loop devices outlive the lab

    def collect(self, dest: Path) -> Path:
        """The cluster's own record, for the timeline: every node's logs and CIB (lab.collect_logs), plus
        the fencing history and the CIB as a live node sees them now (files stonith-history.txt, cib.xml)."""
        self.lab.collect_logs(dest)
        for node in self.lab.live_nodes():
            history = node.run(["stonith_admin", "--history", "*", "--verbose"], timeout=30, check=False)
            cib = node.run(["cibadmin", "--query"], timeout=30, check=False)
            if history.returncode == 0 and cib.returncode == 0:
                (dest / "stonith-history.txt").write_text(history.stdout)
                (dest / "cib.xml").write_text(cib.stdout)
                break
        (dest / "marks.json").write_text(json.dumps(self.marks))
        return dest

    def say(self, text: str) -> None:
        self.progress(f"[{time.monotonic() - self.t0:6.1f}s] {text}")

    def configure(self, crm: str) -> None:
        """tandem install, the guest's domain XML on every node, the crm configuration; until vm1 runs."""
        from lab.accel import detect
        from lab.guest.build import ensure_built
        from lab.libvirt import GuestSpec, domain_xml

        fresh = ensure_installed()
        self.say("tandem install: " + ("agents and DRBD handlers installed" if fresh else "already current"))
        accel = detect()
        xml = domain_xml(GuestSpec(VM, ensure_built(), self.serial, DEVICE), accel.domain_type)
        for node in self.lab.nodes:
            path = node.dir / "libvirt" / "etc" / Path(DOMAIN_XML).relative_to("/etc/libvirt")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(xml)
        self.observer = Observer(self).start()
        self.lab.crm("configure", input=crm)
        state = self.wait(
            lambda s: len(promoted(s)) == self.promoted_max and len(s.locations(VM)) == 1,
            f"drbd-r0-clone promoted on {self.promoted_max} node(s) and vm1 started",
        )
        self.wait_guest_running()
        on = " and ".join(sorted(promoted(state)))
        self.say(f"drbd-r0-clone Promoted on {on}; vm1 runs on {self.vm_node(state)} ({accel.kind})")

    # ---- looking -------------------------------------------------------------------------------
    def wait(self, check: Callable[[ClusterState], bool], what: str, timeout: float = WAIT) -> ClusterState:
        def checked(s: ClusterState) -> bool:
            if self.observer is not None:
                self.observer.check()
            return check(s)

        try:
            return self.lab.wait_for(checked, what, timeout)
        except LabError as exc:
            raise ScenarioError(f"{exc}\n{self.status_text()}") from None

    def status_text(self) -> str:
        try:
            return self.lab.status_text()
        except LabError as exc:
            return str(exc)

    @staticmethod
    def vm_node(state: ClusterState) -> str:
        nodes = sorted(state.locations(VM))
        if len(nodes) != 1:
            raise ScenarioError(f"vm1 is active on {nodes or 'no node'}")
        return nodes[0]

    def other(self, node: str) -> str:
        return next(n.name for n in self.lab.nodes if n.name != node)

    def drbd_primaries(self) -> set[str]:
        st = self.emu_state()
        return {n for n, rs in st["nodes"].items() if rs.get(RES, {}).get("role") == "Primary"}  # type: ignore[attr-defined]

    def last_gen(self) -> int:
        from lab.guest import serial

        gens = serial.parse(serial.read(self.serial)).gens
        return gens[-1] if gens else 0

    def wait_guest_running(self, after: int = 0) -> re.Match[str]:
        """Until the guest prints a heartbeat past byte `after` of its serial log."""
        from lab.guest import serial

        return serial.wait_for(self.serial, r"alive t=\d+ gen=(\d+)", after=after, timeout=WAIT)

    def constraints(self) -> list[str]:
        """Ids of the location constraints in the CIB (the agents', crm resource move's, and any others but
        the lab's fence devices')."""
        from lab.timeline import constraints_left

        for node in self.lab.live_nodes():  # the first that answers: a node may be fenced while asked
            try:
                done = node.run(["cibadmin", "--query", "--scope", "configuration"], timeout=30, check=False)
            except (NodeDown, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0:
                return constraints_left(done.stdout)
        raise LabError("no node answers cibadmin --query")

    def emu_state(self) -> dict[str, object]:
        from lab.drbd_emu.engine import Store

        return Store(self.emu_dir).read()

    def drbd_summary(self) -> str:
        """e.g. "node1 Primary/UpToDate, node2 Secondary/Inconsistent (SyncTarget)" from the emulator."""
        st = self.emu_state()
        parts = []
        for node in self.lab.nodes:
            r = st["nodes"].get(node.name, {}).get(RES)  # type: ignore[attr-defined]
            if r is None:
                parts.append(f"{node.name} down")
                continue
            disk = r["disks"]["0"]["state"]
            repl = {v for c in r["conns"].values() for v in c["repl"].values()} - {"Established"}
            parts.append(
                f"{node.name} {r['role']}/{disk}" + (f" ({', '.join(sorted(repl))})" if repl else "")
            )
        return ", ".join(parts)

    def drbd_synced(self) -> bool | None:
        """True when every node has the resource up, Connected, UpToDate (a client: Diskless), no resync
        running."""
        st = self.emu_state()
        if st.get("resyncs"):
            return None
        for node in self.lab.nodes:
            r = st["nodes"].get(node.name, {}).get(RES)  # type: ignore[attr-defined]
            d = r["disks"]["0"] if r is not None else None
            if d is None or d["state"] != ("Diskless" if d["client"] else "UpToDate"):
                return None
            if any(c["state"] != "Connected" for c in r["conns"].values()) or not r["conns"]:
                return None
        return True

    # ---- the emulator in step with the lab ---------------------------------------------------------
    def emu_link(self, a: str, b: str, *, cut: bool) -> None:
        """The DRBD replication link between two nodes fails or comes back (with the lab's network)."""
        self.emu_links([(a, b)], cut=cut)

    def emu_links(self, pairs: list[tuple[str, str]], *, cut: bool) -> None:
        """Several replication links at the same instant, as a partition cuts them: one at a time, DRBD
        would see a transient topology (a Secondary reaching the Primary only through a third node outdates
        itself) that the network never had."""
        from lab.drbd_emu import engine

        with engine.Store(self.emu_dir).locked() as st:
            for a, b in pairs:
                st["links"][engine.link_key(a, b)] = {"cut": cut}
            engine.settle(st, time.time())

    def check_copies(self, when: str) -> dict[str, int]:
        """Every node's own copy (read through its /dev/drbdN) holds at least the last generation the guest
        acknowledged before the read, and each of the last ones in its journal slot (a copy taken as in
        sync without the resync it needed shows there); returns node → generation found. Raises
        ScenarioError otherwise."""
        from lab.guest.disk import data_check, journal_check, read_copy_on

        acked = self.last_gen()
        found = {}
        for node in self.lab.live_nodes():
            try:
                rec, journal = read_copy_on(node, DEVICE)
            except subprocess.CalledProcessError as exc:
                r = self.emu_state()["nodes"].get(node.name, {}).get(RES)  # type: ignore[attr-defined]
                raise ScenarioError(
                    f"{node.name}'s copy of r0 {when}: {exc.stderr.strip()}; {self.drbd_summary()}; {r}"
                ) from None
            where = f"{node.name}'s copy of r0 {when}"
            problem = data_check(rec, acked, where) or journal_check(journal, acked, where)
            if problem:
                raise ScenarioError(problem)
            found[node.name] = rec.gen if rec else 0
        return found


@contextlib.contextmanager
def _no_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def ensure_installed(ocf_root: Path = Path("/usr/lib/ocf"), bindir: Path = Path("/usr/sbin")) -> bool:
    """`tandem install` into the system, unless what is installed is already this checkout's (the lab's
    nodes share /usr with the host, and other labs may be running agents from it). True if it installed."""
    import tempfile

    from tandem.install import install

    with tempfile.TemporaryDirectory(prefix="tandem-install-") as tmp:
        fresh = Path(tmp)
        install(fresh / "ocf", fresh / "sbin", None)
        pairs = [(fresh / "ocf" / "resource.d" / "tandem", ocf_root / "resource.d" / "tandem")]
        pairs.append((fresh / "ocf" / "lib" / "tandem" / "tandem", ocf_root / "lib" / "tandem" / "tandem"))
        if all(_same_tree(a, b) for a, b in pairs) and all(
            (bindir / h).exists() for h in ("tandem-fence-peer", "tandem-unfence-peer")
        ):
            return False
    install(ocf_root, bindir, None)
    return True


def _same_tree(a: Path, b: Path) -> bool:
    if not b.is_dir():
        return False
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(_same_tree(a / d, b / d) for d in cmp.common_dirs)


# ---------------------------------------------------------------- scenario helpers


def mark(vc: VmCluster, text: str) -> float:
    """Note what the scenario did, and when (epoch seconds), for the timeline; also says it."""
    now = time.time()
    vc.marks.append((now, text))
    vc.say(text)
    return now


def promoted(s: ClusterState) -> set[str]:
    return {n for n, role in s.roles(CLONE).items() if role == "Promoted"}


def healthy(vc: VmCluster, what: str = "a healthy cluster", timeout: float = WAIT) -> ClusterState:
    """Every node online, the clone Promoted on promoted_max nodes, vm1 on one of them, DRBD connected and
    UpToDate on every node with data and Primary where the clone is Promoted, no location constraint left
    (the agents' fencing constraint or crm resource move's)."""

    def ok(s: ClusterState) -> bool:
        return (
            len(s.online()) == len(vc.lab.nodes)
            and len(promoted(s)) == vc.promoted_max
            and len(s.locations(VM)) == 1
            and bool(vc.drbd_synced())
            and vc.drbd_primaries() == promoted(s)
            and not answer(vc.constraints, ["?"])
        )

    return vc.wait(ok, what, timeout)


def answer(ask: Callable[[], list[str]], otherwise: list[str] | None = None) -> list[str]:
    """`ask()`, or `otherwise` (default: nothing) while no node can answer (fenced, rebooting)."""
    try:
        return ask()
    except LabError:
        return otherwise or []


def guest_log(vc: VmCluster, after: int = 0) -> SerialLog:
    from lab.guest import serial

    return serial.parse(serial.read(vc.serial, after=after))


def wait_fenced(vc: VmCluster, since: float) -> tuple[str, float]:
    """The node fenced at or after `since` (epoch), and when (crm_mon's fence history: whole seconds)."""

    def fenced(s: ClusterState) -> bool:
        return any(s.fenced(n.name, since) for n in vc.lab.nodes)

    state = vc.wait(fenced, "a node fenced")
    event = min(
        (e for n in vc.lab.nodes for e in state.fenced(n.name, since)), key=lambda e: e.completed or 0
    )
    return event.target, event.completed or time.time()


def power_back(vc: VmCluster, node: str) -> None:
    """Fencing reboots (stonith-action=reboot, and tandem-fence-peer follows it), so the node comes back by
    itself after the lab's reboot delay; where it stays off (stonith-action=off), the scenario turns it on."""
    target = vc.lab.node(node)
    end = time.monotonic() + vc.lab.config.reboot_delay + 10
    while not target.is_on() and time.monotonic() < end:
        time.sleep(0.5)
    if not target.is_on():
        mark(vc, f"{node} stays off (fenced with off): powering it on")
        vc.lab.power("on", node)


def wait_resync(vc: VmCluster, since: float) -> int:
    """Until the emulated DRBD is connected and UpToDate on both nodes again; returns the KiB resynced
    since `since` (epoch), from the emulator's record of resyncs."""
    poll(vc.drbd_synced, WAIT, "DRBD connected and UpToDate on both nodes", interval=0.5)
    started = vc.emu_state().get("resync_log") or []
    assert isinstance(started, list)
    return sum(int(r["total_kib"]) for r in started if float(r["start"]) >= since)


# ---------------------------------------------------------------- the three scenarios


@dataclass(frozen=True)
class Move:
    source: str
    target: str
    wall_s: float  # crm resource move until crm_mon shows vm1 started on the target, one QEMU left
    libvirt_ms: int  # the migration job's elapsed time (virsh domjobinfo --completed on the target)
    downtime_ms: int | None  # the guest's pause at switch-over (libvirt's job statistics)
    heartbeat_gaps: int  # lost guest heartbeats (1 per second) across the move


def live_migration(vc: VmCluster) -> list[Move]:
    """vm1 to the other node and back, with crm resource move / clear: live, no restart, memory intact."""
    home = vc.vm_node(healthy(vc, "a healthy cluster before the migrations"))
    return live_moves(vc, home, [vc.other(home), home])


def live_moves(vc: VmCluster, source: str, targets: list[str]) -> list[Move]:
    """vm1 from `source` to each target in turn, with crm resource move / clear: live, no restart, memory
    intact; then a healthy cluster and the data check on every node's copy."""
    booted = guest_log(vc).boots
    moves = moves_of(vc, source, targets)
    settled(vc, booted, "the migrations")
    return moves


def settled(vc: VmCluster, booted: int, what: str) -> None:
    """After `what`: the guest never restarted (still `booted` boots), the cluster healthy, the move
    constraints gone, the data check on every node's copy."""
    log = guest_log(vc)
    if log.boots != booted:
        raise ScenarioError(f"the guest restarted during {what} ({booted} → {log.boots} boots)")
    healthy(vc, f"a healthy cluster after {what}, the move constraints cleared")
    say_copies(vc, f"after {what}")


def moves_of(vc: VmCluster, source: str, targets: list[str], *, clear: bool = True) -> list[Move]:
    """The live migrations alone, each move's preference cleared after it; without `clear` it stays until
    the next move replaces it (a VM kept on a diskless client on purpose: without its preference Pacemaker
    moves it back to a data node)."""
    from lab.guest import serial
    from lab.libvirt import Libvirtd, parse_jobinfo

    moves = []
    for target in targets:
        at = serial.size(vc.serial)
        t0 = mark(vc, f"crm resource move {VM} {target}")
        vc.lab.crm("resource", "move", VM, target)
        vc.wait(lambda s: s.locations(VM) == {target}, f"vm1 started on {target}")  # noqa: B023 (waited on here)
        poll(lambda: qemu_processes(vc.lab) == [target] or None, WAIT, f"one QEMU, on {target}")  # noqa: B023
        done = time.time()
        vc.migration_windows.append((t0, done))
        job = parse_jobinfo(Libvirtd(vc.lab.node(target)).virsh("domjobinfo", "--completed", VM).stdout)
        if clear:
            vc.lab.crm("resource", "clear", VM)
        serial.wait_for(vc.serial, r"verify=ok", after=at, timeout=WAIT)  # memory checked on the target
        vc.wait_guest_running(after=serial.size(vc.serial))
        after = guest_log(vc, at)
        move = Move(source, target, done - t0, job.elapsed_ms, job.downtime_ms, len(after.heartbeat_gaps()))
        moves.append(move)
        mark(
            vc,
            f"vm1 live-migrated {source} → {target} in {move.wall_s:.1f}s (libvirt job {job.elapsed_ms} ms, "
            f"guest paused {job.downtime_ms} ms, {move.heartbeat_gaps} heartbeats lost)"
            + ("; crm resource clear" if clear else ""),
        )
        if after.corrupt:
            raise ScenarioError(f"the guest's memory check failed after the move: {after.corrupt}")
        source = target
    return moves


def say_copies(vc: VmCluster, when: str) -> dict[str, int]:
    """The data check on every node's own copy, and what it found, said."""
    copies = vc.check_copies(when)
    found = ", ".join(f"{node} generation {gen}" for node, gen in sorted(copies.items()))
    mark(vc, f"data check {when}: {found} (acknowledged {vc.last_gen()} before the reads)")
    return copies


@dataclass(frozen=True)
class Failover:
    victim: str
    survivor: str
    fenced_s: float  # power cut → fencing of the victim confirmed (whole seconds, from the fence history)
    restarted_s: float  # power cut → vm1 started on the survivor (crm_mon)
    guest_s: float  # power cut → the guest's first heartbeat on the survivor
    gen_before: int  # last generation the guest printed (so had written) before the cut
    gen_found: int  # the generation the guest found on the survivor's own copy when it booted there
    returned_s: float  # power cut → the victim back online in the cluster
    resync_kib: int  # what DRBD resynced to the victim when it came back
    healthy_s: float  # power cut → everything healthy again (both Promoted, no constraints)
    copies: dict[str, int]  # node → the generation its own copy held at the end (after the resync)


def node_failure(vc: VmCluster) -> Failover:
    """Power cut of the node running vm1 → fencing → vm1 restarted on the survivor from the same disk →
    the node comes back (fence_tandemlab reboots it) → DRBD resyncs it → the fencing constraint goes."""
    from lab import faults

    victim = vc.vm_node(healthy(vc, "a healthy cluster before the power cut"))
    survivor = vc.other(victim)
    gen_before = vc.last_gen()
    at = vc.serial.stat().st_size
    t0 = mark(vc, f"power cut of {victim} (runs vm1; last generation written {gen_before})")
    faults.kill(vc.lab, victim)
    who, when = wait_fenced(vc, t0)
    if who != victim:
        raise ScenarioError(f"{who} was fenced, not the node that lost power ({victim})")
    mark(vc, f"{victim} fenced ({when - t0:.0f}s after the cut)")
    vc.wait(lambda s: s.locations(VM) == {survivor}, f"vm1 started on {survivor}")
    restarted = time.time()
    mark(vc, f"vm1 started on {survivor} ({restarted - t0:.1f}s after the cut)")
    from lab.guest import serial

    found = serial.wait_for(vc.serial, r"disk gen=(\d+) boots=(\d+)", after=at, timeout=WAIT)
    vc.wait_guest_running(after=at)
    alive = time.time()
    gen_found = int(found.group(1))
    check_boot(vc, survivor, gen_found, gen_before)
    power_back(vc, victim)
    vc.wait(lambda s: victim in s.online(), f"{victim} back online")
    returned = time.time()
    mark(vc, f"{victim} back online ({returned - t0:.1f}s after the cut); DRBD reconnects")
    kib = wait_resync(vc, t0)
    mark(vc, f"DRBD resynced {kib} KiB {survivor} → {victim}: {vc.drbd_summary()}")
    healthy(vc, "a healthy cluster after the failover")
    done = mark(vc, "fencing constraint cleared; drbd-r0-clone Promoted on both nodes again")
    copies = say_copies(vc, "after the failover")
    return Failover(
        victim,
        survivor,
        when - t0,
        restarted - t0,
        alive - t0,
        gen_before,
        gen_found,
        returned - t0,
        kib,
        done - t0,
        copies,
    )


def check_boot(vc: VmCluster, node: str, gen_found: int, acked: int) -> None:
    """The guest restarted on `node` found `gen_found` on that node's copy: at least `acked`, or a
    ScenarioError naming both."""
    from lab.guest.disk import GenRecord, data_check

    problem = data_check(GenRecord(gen_found, 0, 0), acked, f"the disk vm1 booted from on {node}")
    if problem:
        raise ScenarioError(problem)
    mark(vc, f"guest alive on {node}: found generation {gen_found} ≥ {acked} on {node}'s own copy")


@dataclass(frozen=True)
class Partition:
    fenced: str  # the node that lost the fence race
    vm_moved: bool  # vm1 ran on the fenced node and was restarted on the other
    constraint_s: float  # partition → tandem-fence-r0 in the CIB
    fenced_s: float  # partition → the fencing done
    healed_s: float  # partition → healed (network back)
    cleared_s: float  # partition → the constraint gone again, everything healthy
    gen_before: int
    gen_after: int  # the first generation the guest printed after the partition


def partition(vc: VmCluster) -> Partition:
    """The network between the nodes fails (cluster and DRBD links): the nodes race to fence each other,
    the winner's fence-peer handler places tandem-fence-r0; healing lets the loser rejoin, resync, and
    unfence-peer clears the constraint."""
    from lab import faults

    vm_node = vc.vm_node(healthy(vc, "a healthy cluster before the partition"))
    gen_before = vc.last_gen()
    at = vc.serial.stat().st_size
    t0 = mark(vc, f"network partition node1 | node2 (vm1 on {vm_node}; last generation written {gen_before})")
    faults.partition(vc.lab, ["node1"], ["node2"])
    vc.emu_link("node1", "node2", cut=True)
    cid = "tandem-fence-" + RES
    poll(lambda: cid in answer(vc.constraints) or None, WAIT, f"the fencing constraint {cid}", interval=0.5)
    placed = mark(vc, f"fence-peer placed {cid}")
    loser, when = wait_fenced(vc, t0)
    winner = vc.other(loser)
    mark(vc, f"{loser} fenced by {winner} ({when - t0:.0f}s after the partition)")
    vc.wait(lambda s: s.locations(VM) == {winner}, f"vm1 running on {winner}")
    power_back(vc, loser)
    healed = mark(vc, "network healed")
    faults.heal(vc.lab)
    vc.emu_link("node1", "node2", cut=False)
    vc.wait(lambda s: len(s.online()) == 2, f"{loser} back online")
    mark(vc, f"{loser} rejoined; DRBD reconnects")
    kib = wait_resync(vc, healed)
    mark(vc, f"DRBD resynced {kib} KiB {winner} → {loser}")
    poll(lambda: cid not in answer(vc.constraints, [cid]) or None, WAIT, f"{cid} cleared", interval=0.5)
    cleared = mark(vc, f"unfence-peer cleared {cid}")
    healthy(vc, "a healthy cluster after the partition")
    gen_after = int(vc.wait_guest_running(after=at).group(1))
    log = guest_log(vc, at)
    if vm_node == loser:
        found = log.disk[0] if log.disk else ""
        m = re.match(r"gen=(\d+)", found)
        if m is None:
            raise ScenarioError(f"vm1 restarted on {winner} found {found!r} on its disk")
        check_boot(vc, winner, int(m.group(1)), gen_before)
    elif log.boots:
        raise ScenarioError(f"vm1 restarted on {winner} although {winner} won the fence race")
    say_copies(vc, "after the partition")
    return Partition(
        loser, vm_node == loser, placed - t0, when - t0, healed - t0, cleared - t0, gen_before, gen_after
    )


PCS_SCRIPT = TOP / "lab" / "config" / "pcs.sh"


def reconfigure_with_pcs(vc: VmCluster) -> None:
    """Stop and delete the crmsh-made configuration, then build the same one with pcs (lab/config/pcs.sh),
    until it is healthy again. Needs pcs (Debian package pcs)."""
    vc.lab.crm("resource", "stop", VM)
    vc.wait(lambda s: not s.locations(VM), "vm1 stopped")
    vc.lab.crm("resource", "stop", CLONE)
    vc.wait(lambda s: not s.roles(CLONE), "drbd-r0-clone stopped")
    vc.lab.crm("configure", "delete", "--force", VM, CLONE, "drbd-r0")
    mark(vc, "crmsh configuration deleted; the same with pcs (lab/config/pcs.sh)")
    vc.lab.first_live().run(["sh", str(PCS_SCRIPT)], timeout=120)
    healthy(vc, "a healthy cluster configured with pcs")
    vc.wait_guest_running(after=vc.serial.stat().st_size)


# ---------------------------------------------------------------- three nodes: a diskless tiebreaker
