# SPDX-License-Identifier: GPL-2.0-or-later
"""Turning what the lab shows into the checkers' frozen history: the sampler thread and the readers of the
emulator's state, the CIB's fencing constraints, the cluster's logs and the guest's serial console.

The parsers are pure (text or JSON in, checkers' data out); `Recorder` is the only thing with a clock.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from lab.campaign.checkers import Boot, DrbdView, FailedAction, Sample
from lab.netns import NodeDown
from lab.scenarios import RES, VM, VmCluster, qemu_processes
from lab.timeline import Event

FENCE_IDS = ("tandem-fence-", "drbd-fence-by-handler-")  # ours, crm-fence-peer.9.sh's
_GEN = re.compile(r"alive t=\d+ gen=(\d+)")
_DISK = re.compile(r"disk (?:gen=(\d+)|(\w+))")


def drbd_views(st: Mapping[str, Any], nodes: Sequence[str], res: str = RES) -> tuple[DrbdView, ...]:
    """Each node's DRBD resource as the emulator holds it (nodes whose resource is down are left out)."""
    views = []
    for node in nodes:
        r = st.get("nodes", {}).get(node, {}).get(res)
        if r is None:
            continue
        conns = r.get("conns", {})
        views.append(
            DrbdView(
                node=node,
                role=str(r["role"]),
                disk=str(r["disks"]["0"]["state"]),
                connected=frozenset(p for p, c in conns.items() if c["state"] == "Connected"),
                peer_disks=tuple(
                    sorted((p, str(c.get("peer_disk", {}).get("0", "DUnknown"))) for p, c in conns.items())
                ),
                split_brain=any(c.get("split_brain") for c in conns.values()),
                client=bool(r["disks"]["0"].get("client")),
            )
        )
    return tuple(views)


def data_view(
    st: Mapping[str, Any], nodes: Sequence[str], on: Collection[str]
) -> tuple[tuple[DrbdView, ...], tuple[tuple[str, int], ...], frozenset[str]]:
    """A sample's DRBD views, data generations and nodes behind. A node powered on whose DRBD is not up
    counts as down for the last two: its meta data is what it went down with (tandem-23001: node1, back
    on but its DRBD not started yet, still held the bits of a write it made without quorum, never
    acknowledged; node2's promotion beside it was flagged S3)."""
    drbd = drbd_views(st, nodes)
    up = frozenset(on) & {v.node for v in drbd}
    return drbd, data_generations(st, nodes, on=up), behind(st, nodes, on=up)


def _readable_meta(st: Mapping[str, Any], nodes: Sequence[str], res: str) -> dict[str, Mapping[str, Any]]:
    """Each node's meta data that still speaks for a copy (also for nodes that are down); a failed disk's
    does not: nobody can read what it holds (tandem-16504), and the writes lost with it are S2's to judge."""
    meta, faults = st.get("meta", {}), st.get("faults", {})
    return {
        n: meta[f"{n}/{res}/0"]
        for n in nodes
        if f"{n}/{res}/0" in meta and not faults.get(f"disk/{n}/{res}/0")
    }


def data_generations(
    st: Mapping[str, Any], nodes: Sequence[str], res: str = RES, on: Collection[str] | None = None
) -> tuple[tuple[str, int], ...]:
    """Each node's data generation as its disk's meta data holds it; for a node that is down (not in
    `on`) only what it acknowledged: on the generation tag of a live node, or one a live node went on
    from (its history: a promotion without that node starts a new tag, tandem-23011), a count beyond the
    highest live one is writes in flight when it died (a write acknowledged without a peer starts a new
    tag, DK NEW_CUR_UUID), as `behind` says of its bits (tandem-17622's replay: S3 flagged its in-flight
    write)."""
    meta = _readable_meta(st, nodes, res)
    live: dict[str, int] = {}
    for n, md in meta.items():
        if on is None or n in on:
            for tag in (md.get("tag", ""), *md.get("history", ())):
                live[tag] = max(live.get(tag, 0), int(md["gen"]))

    def acknowledged(n: str, md: Mapping[str, Any]) -> int:
        tag = md.get("tag", "")
        down = on is not None and n not in on
        return min(int(md["gen"]), live[tag]) if down and tag in live else int(md["gen"])

    return tuple((n, acknowledged(n, md)) for n, md in meta.items())


def behind(
    st: Mapping[str, Any], nodes: Sequence[str], res: str = RES, on: Collection[str] | None = None
) -> frozenset[str]:
    """Nodes whose copy lacks blocks a peer wrote: in that peer's out-of-sync bitmap for them. Only a peer
    whose data may be the newest (UpToDate or Consistent, as its meta data last said) speaks: an
    Inconsistent one, being resynced, holds bits from writes it only passed on (tandem-16809). Nor does a
    peer that is down (not in `on`) still on the node's own generation: a write acknowledged without the
    node would have started a new one (DK NEW_CUR_UUID), so its bits are writes in flight when it died,
    never acknowledged, which its activity log gives back to the peers' resync (tandem-17622)."""
    every = _readable_meta(st, nodes, res)
    meta = {p: md for p, md in every.items() if md.get("disk", "UpToDate") in ("UpToDate", "Consistent")}

    def unacknowledged(peer: str, md: Mapping[str, Any], node: str) -> bool:
        mine = every.get(node)
        return (
            on is not None
            and peer not in on
            and mine is not None
            and md.get("tag") in (mine.get("tag"), *mine.get("history", ()))
        )

    return frozenset(
        n
        for n in nodes
        for p, md in meta.items()
        if p != n and md.get("oos", {}).get(n) and not unacknowledged(p, md, n)
    )


def fencing_allowed(constraints_xml: str) -> frozenset[str] | None:
    """The nodes the DRBD fencing constraint (ours or crm-fence-peer's) lets be Primary; None: no such
    constraint. Both forbid the promoted role on every node but the named ones (#uname ne NODE)."""
    from lxml import etree

    for loc in etree.fromstring(constraints_xml.encode()).iter("rsc_location"):
        if str(loc.get("id", "")).startswith(FENCE_IDS):
            return frozenset(
                str(e.get("value")) for e in loc.iter("expression") if e.get("operation") == "ne"
            )
    return None


def failed_actions(crm_mon_xml: str) -> tuple[FailedAction, ...]:
    """crm_mon's failed resource actions (what `crm resource cleanup` would clear)."""
    from lxml import etree

    root = etree.fromstring(crm_mon_xml.encode())
    return tuple(
        FailedAction(
            str(f.get("op_key")),
            str(f.get("node")),
            str(f.get("exitreason") or f.get("exitstatus")),
            _crm_mon_time(f.get("last-rc-change", "")),
        )
        for f in root.iterfind("failures/failure")
    )


def _crm_mon_time(text: str) -> float:
    """A failure's last-rc-change as epoch seconds: Pacemaker 2.1 writes "2026-11-29 23:24:24Z" or with an
    offset, " +01:00" (crm_time_as_string); 0 when it is neither."""
    from datetime import UTC, datetime

    try:
        if text.endswith("Z"):
            return datetime.strptime(text[:-1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return 0.0


def failure_timeout(cib_xml: str) -> float | None:
    """rsc_defaults' failure-timeout in seconds (None: not set, failures stay until a cleanup)."""
    from lxml import etree

    from tandem.ocf.params import parse_seconds

    root = etree.fromstring(cib_xml.encode())
    for pair in root.iterfind("configuration/rsc_defaults/meta_attributes/nvpair"):
        if pair.get("name") == "failure-timeout":
            try:
                return parse_seconds(pair.get("value", ""))
            except ValueError:
                return None
    return None


class LogFacts(NamedTuple):
    actions: tuple[float, ...]
    migrations: tuple[tuple[float, float], ...]
    fenced: tuple[tuple[float, str], ...]
    joining: tuple[tuple[float, float, str], ...]  # (started, joined, node)


def log_facts(events: Iterable[Event], end: float) -> LogFacts:
    """From the cluster's log events: action times, migration windows of vm1 (migrate_to initiated → the
    source's stop result, or 120 s: a stop on the target does not end a migrate_to still running, which
    can deliver the guest there later, tandem-17007), successful fencings (completed, target), and the
    windows in which a node's controller, just started, was joining (until it joined a DC or, DC itself,
    finished a join round; `end` if neither): Pacemaker discards the status section of the CIB it starts
    with, so until then that node knows nothing the others run (tandem-18505)."""
    evs = list(events)
    actions = tuple(e.t for e in evs if e.kind not in ("join", "dc-join"))
    windows = []
    for e in evs:
        if e.kind == "initiate" and e.op == "migrate_to" and e.subject == VM:
            until = next(
                (
                    x.t
                    for x in evs
                    if x.t >= e.t
                    and x.kind == "result"
                    and x.op == "stop"
                    and x.subject == VM
                    and x.where == e.where
                ),
                e.t + 120.0,
            )
            windows.append((e.t, until))
    fenced = tuple(
        (e.t, e.subject)
        for e in evs
        if e.kind == "fence-done" and e.text.rsplit(": ", 1)[-1].startswith("OK")
    )
    joining = tuple(
        (
            e.t,
            next((x.t for x in evs if x.t >= e.t and x.node == e.node and x.op == "joined"), end),
            e.node,
        )
        for e in evs
        if e.kind == "join" and e.op == "joining"
    )
    return LogFacts(actions, tuple(windows), fenced, joining)


def boots(text: str, acked_before: int, sizes: Sequence[tuple[float, int]], offset: int) -> tuple[Boot, ...]:
    """Each boot of the guest in `text` (its serial log from byte `offset` on) with the last generation it
    had reported written before it. `sizes` are (time, log size) samples, which date the lines."""
    found = []
    acked = acked_before
    at = offset
    booting = False  # the disk line that follows "booted" is the boot's look at the disk; a later
    # "disk error=" is a write that failed while running (DRBD froze I/O), not a boot
    for line in text.splitlines(keepends=True):
        at += len(line.encode())
        if m := _GEN.search(line):
            acked = int(m.group(1))
        elif "tandem-guest: booted" in line:
            booting = True
        elif booting and (m := _DISK.search(line)) and "tandem-guest: disk" in line:
            booting = False
            t = next((t for t, size in sizes if size >= at), sizes[-1][0] if sizes else 0.0)
            error = line.split("error=", 1)[1].strip() if m.group(2) == "error" else ""
            found.append(Boot(t, acked, int(m.group(1)) if m.group(1) else None, error=error))
    return tuple(found)


class Recorder:
    """Samples the lab twice a second (power, QEMUs, emulated DRBD, serial log size); a second thread
    polls the CIB's fencing constraint (a cibadmin call may hang while nodes die)."""

    def __init__(self, vc: VmCluster, interval: float = 0.5) -> None:
        self.vc = vc
        self.interval = interval
        self.samples: list[Sample] = []
        self.sizes: list[tuple[float, int]] = []
        self.fence: tuple[frozenset[str] | None, float | None] = (None, None)  # allowed, and when read
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._sample,), daemon=True),
            threading.Thread(target=self._guard, args=(self._poll_cib,), daemon=True),
        ]

    def start(self) -> Recorder:
        self._poll_cib_once()
        for th in self._threads:
            th.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join(timeout=30)

    def _guard(self, loop: Any) -> None:
        try:
            while not self._stop.is_set():
                loop()
        except BaseException as exc:  # the runner reports it with the run
            self.error = exc

    def _sample(self) -> None:
        began = time.time()  # the sample's time: what it shows was true at or after it
        lab = self.vc.lab
        names = [n.name for n in lab.nodes]
        on = frozenset(n.name for n in lab.nodes if n.is_on())
        qemu = tuple(qemu_processes(lab))
        drbd, gens, lacking = data_view(self.vc.emu_state(), names, on)
        now = time.time()
        fence, fence_at = self.fence
        self.samples.append(Sample(began, on, qemu, drbd, fence, gens, lacking, fence_at))
        self.sizes.append((now, self.vc.serial.stat().st_size if self.vc.serial.exists() else 0))
        self._stop.wait(self.interval)

    def _poll_cib(self) -> None:
        self._poll_cib_once()
        self._stop.wait(self.interval)

    def _poll_cib_once(self) -> None:
        for node in self.vc.lab.live_nodes():
            asked = time.time()
            try:
                done = node.run(["cibadmin", "--query", "--scope", "constraints"], timeout=5, check=False)
            except (NodeDown, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0:
                self.fence = (fencing_allowed(done.stdout), asked)
                return
