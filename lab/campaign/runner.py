# SPDX-License-Identifier: GPL-2.0-or-later
"""Running the campaign: clusters (ours or the anchors, DRBD on a replication network of its own), one run
after another on the same cluster while it can be made healthy again, results appended to runs.jsonl.

A run: restore the known good state (links healed, every node on, no move constraint, failed actions
cleaned up, DRBD Primary/UpToDate on both nodes, vm1 on one), then the seeded schedule's steps at their
seconds, then heal everything, then settle until the goal state or reboot delay + 60 s, then the checkers.
A cluster that cannot be restored is torn down and built afresh. Finished runs are never run again: a
campaign started again with the same arguments continues where it stopped (`--replay SEED` reruns one).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.campaign import checkers
from lab.campaign.nemesis import Nemesis
from lab.campaign.record import Recorder, boots, failed_actions, failure_timeout, log_facts
from lab.campaign.schedule import Event, Schedule, generate, run_seed
from lab.cluster import LabConfig, LabError, poll
from lab.scenarios import (
    ANCHOR_HANDLERS,
    MINOR,
    VM,
    ScenarioError,
    VmCluster,
    healthy,
    qemu_processes,
)
from lab.three_nodes import ThreeDataCluster, TiebreakerCluster

AGENTS = ("tandem", "anchors")
REPL_NET = "10.214.77"  # the replication network (each lab's namespaces are its own: no clash between labs)
RESTORE_TIMEOUT = 120.0  # a cluster not healthy 2 min after cleanup is stuck (its run's L1 says so): rebuild


def replication_conf(conf: Path, net: str) -> None:
    """drbd.conf's addresses moved from the cluster network to the replication network."""
    conf.write_text(conf.read_text().replace(f"address {net}.", f"address {REPL_NET}."))


class OursCluster(VmCluster):
    """The demo's cluster with a separate replication network carrying DRBD, resyncing at 4 MiB/s: a disk
    replaced after disk-fail resyncs all 64 MiB in 16 s (at the demo's 64 KiB/s, made to watch a resync of
    a few blocks, it would take 17 minutes, beyond any liveness bound)."""

    resync_kib_s = 4096.0

    @classmethod
    def lab_config(cls, base: LabConfig, work: Path) -> LabConfig:
        config = super().lab_config(replace(base, repl_net=REPL_NET), work)
        replication_conf(work / "emu" / "drbd.conf", base.net)
        return config


class AnchorsCluster(OursCluster):
    """The same with drbd-utils' crm-fence-peer.9.sh / crm-unfence-peer.9.sh as DRBD's handlers."""

    drbd_handlers = ANCHOR_HANDLERS


class OursTiebreakerCluster(OursCluster, TiebreakerCluster):
    """The README's three-node cluster (two data nodes, a diskless tiebreaker; DRBD quorum, no fencing
    handlers) with the replication network."""


class OursThreeDataCluster(OursCluster, ThreeDataCluster):
    """The README's other three-node shape (node3 with a disk of its own) with the replication network."""


SHAPES = {"tiebreaker": OursTiebreakerCluster, "three-data": OursThreeDataCluster}  # of three nodes


def cluster_class(agents: str, nodes: int, shape: str = "tiebreaker") -> type[VmCluster]:
    if nodes == 3:
        return SHAPES[shape]
    return OursCluster if agents == "tandem" else AnchorsCluster


def crm_for(agents: str, nodes: int = 2, shape: str = "tiebreaker") -> str:
    """The README's crm block; for the anchors the same with ocf:linbit:drbd and VirtualDomain."""
    from bench.move import anchor_crm

    crm = cluster_class(agents, nodes, shape).crm()
    return crm if agents == "tandem" else anchor_crm(crm)


@contextlib.contextmanager
def cluster(
    agents: str, base: LabConfig, work: Path, say: Callable[[str], None], shape: str = "tiebreaker"
) -> Iterator[VmCluster]:
    """A fresh cluster of `agents` on `base.nodes` nodes, of `shape` when there are three (the loop devices
    a crashed earlier campaign left are detached first)."""
    from lab.drbd_emu.devices import detach_loops

    detach_loops(work / "emu")
    cls = cluster_class(agents, base.nodes, shape)
    with cls.start(base, work, say, crm=crm_for(agents, base.nodes, shape)) as vc:
        yield vc


# ---------------------------------------------------------------- one run


def restore(vc: VmCluster) -> None:
    """The known good state, or ScenarioError/LabError (then the cluster is rebuilt)."""
    Nemesis(vc).heal_all(boot_wait=vc.lab.config.reboot_delay + 15)
    vc.lab.wait_online(timeout=RESTORE_TIMEOUT)
    vc.lab.crm("resource", "clear", VM)
    vc.lab.crm("resource", "cleanup")
    healthy(vc, "the known good state before a run", RESTORE_TIMEOUT)
    poll(lambda: len(qemu_processes(vc.lab)) == 1 or None, RESTORE_TIMEOUT, "one QEMU of vm1")
    poll(lambda: vm_counted(vc) or None, RESTORE_TIMEOUT, "vm1's probe result in the CIB")
    vc.wait_guest_running(after=vc.serial.stat().st_size)


def vm_counted(vc: VmCluster) -> bool:
    """The cleanup's probes are recorded: the CIB's operation history shows vm1 where it runs, which is what
    priority-fencing-delay (and tandem-fence-peer's rule) count; a fault right after a cleanup would meet
    a fence race decided on an empty history (a narrow window a real cluster has too, see the notes)."""
    import xml.etree.ElementTree as ET

    from tandem.fence import node_priority, resource_priorities

    running = qemu_processes(vc.lab)
    if len(running) != 1:
        return False
    cib = ET.fromstring(vc.lab.cibadmin("--query"))  # noqa: S314 (our CIB)
    if not resource_priorities(cib).get(VM):  # no priority (three nodes: DRBD quorum, no fence race)
        return True
    return node_priority(cib, running[0]) > 0


def _log_sizes(vc: VmCluster) -> dict[str, int]:
    return {n.name: _size(n.dir / "var-log-pacemaker" / "pacemaker.log") for n in vc.lab.nodes}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class RunResult:
    history: checkers.History
    errors: tuple[str, ...]
    timeline: str  # the cluster's events and the injections (lab.timeline), seconds from the run's start


def one_run(vc: VmCluster, schedule: Schedule) -> RunResult:
    """Inject the schedule, heal, settle, judge."""
    from lab import timeline

    logs_at, serial_at, acked = _log_sizes(vc), vc.serial.stat().st_size, vc.last_gen()
    rec = Recorder(vc).start()
    nem = Nemesis(vc)
    injections: list[checkers.Injection] = []
    hit: dict[Event, checkers.Injection] = {}
    t0 = time.time()
    try:
        for step in schedule.steps():
            time.sleep(max(0.0, t0 + step.at - time.time()))
            if not step.undo:
                hit[step.event] = nem.inject(step.event)
                injections.append(hit[step.event])
            elif not hit[step.event].note:
                injections.append(nem.undo(step.event, hit[step.event].node))
        delay = vc.lab.config.reboot_delay
        nem.heal_all(boot_wait=delay + 15)
        healed = time.time()
        deadline = healed + delay + checkers.L1_GRACE + 5
        nodes = tuple(n.name for n in vc.lab.nodes)
        while time.time() < deadline and not checkers.settled(rec.samples, nodes, since=healed):
            time.sleep(0.5)
        time.sleep(3)  # a little past the goal: S1/S3/S5 also hold right after healing
    finally:
        rec.stop()
    xml = vc.lab.crm_mon_xml()
    events = timeline.parse_logs(
        [_read_from(n.dir / "var-log-pacemaker" / "pacemaker.log", logs_at[n.name]) for n in vc.lab.nodes],
        datetime.now().year,
    )
    facts = log_facts(events, time.time())
    history = checkers.History(
        nodes=nodes,
        samples=tuple(rec.samples),
        injections=tuple(injections),
        actions=facts.actions,
        migrations=facts.migrations,
        fenced=facts.fenced,
        joining=facts.joining,
        boots=boots(
            vc.serial.read_bytes()[serial_at:].decode("ascii", "replace"), acked, rec.sizes, serial_at
        ),
        healed_at=healed,
        end=time.time(),
        reboot_delay=delay,
        failed_actions=failed_actions(xml)
        if xml is not None
        else (checkers.FailedAction("crm_mon", "", "no node answers"),),
        failure_timeout=_failure_timeout(vc),
    )
    errors = [*nem.errors, *([f"recorder: {rec.error!r}"] if rec.error else [])]
    with contextlib.suppress(LabError, OSError, subprocess.SubprocessError, ValueError):
        history = replace(history, boots=(*history.boots, disk_now(vc)))
    t0 = history.samples[0].t if history.samples else healed
    marks = [(i.t, f"{'undo ' if i.undo else ''}{i.kind} {i.node} {i.note}".strip()) for i in injections]
    rows = timeline.table(events, [*marks, (healed, "healed")], t0)
    return RunResult(history, tuple(errors), timeline.text_timeline(rows))


def _failure_timeout(vc: VmCluster) -> float | None:
    try:
        return failure_timeout(vc.lab.cibadmin("--query"))
    except (LabError, OSError, subprocess.SubprocessError, ValueError):
        return None


def disk_now(vc: VmCluster) -> checkers.Boot:
    """S2's end-of-run look: the generation on the DRBD device of the node running vm1, read there
    (lab.guest.disk), against the last one the guest reported, and the last ones in their journal slots
    (a write that this copy missed although a later one reached it)."""
    from lab.guest.disk import journal_check, read_copy_on

    acked = vc.last_gen()
    (node,) = qemu_processes(vc.lab)
    rec, journal = read_copy_on(vc.lab.node(node), f"/dev/drbd{MINOR}")
    where = f"read on {node} at the end"
    missing = journal_check(journal, acked, f"the disk {where}") or ""
    return checkers.Boot(time.time(), acked, None if rec is None else rec.gen, where, missing)


def keep_history(kept: Path, run: str, h: checkers.History) -> None:
    (kept / "histories").mkdir(parents=True, exist_ok=True)
    (kept / "histories" / f"{run}.json.gz").write_bytes(gzip.compress(checkers.history_to_json(h).encode()))


def verdicts(h: checkers.History) -> dict[str, Any]:
    """The fields of a run's record that the checkers decide (times in s from the run's start)."""
    t0 = h.samples[0].t if h.samples else h.healed_at
    return {
        "violations": [
            {"checker": v.checker, "detail": v.detail, "t": round(v.t - t0, 1)} for v in checkers.check(h)
        ],
        "recovery_s": checkers.recovery(h),
        "node_loss_s": checkers.l2_seconds(h),
        "splits": [{"kind": s.cut.kind, "outcome": s.outcome} for s in checkers.split_outcomes(h)],
    }


def rejudge(out: Path, runs_file: str = "runs.jsonl") -> tuple[int, int]:
    """Recompute every run's verdicts from its kept history (after a checker changed); runs without one
    are dropped, so that the campaign runs them again. Returns (rejudged, dropped)."""
    path = out / runs_file
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        record = json.loads(line)
        hist = out / "histories" / f"{record['run']}.json.gz"
        if not hist.exists():
            dropped += 1
            continue
        h = checkers.history_from_json(gzip.decompress(hist.read_bytes()).decode())
        kept.append(json.dumps({**record, **verdicts(h)}))
    path.write_text("".join(f"{line}\n" for line in kept))
    return len(kept), dropped


def run_record(
    agents: str, schedule: Schedule, result: RunResult, fresh: bool, replay: str, shape: str = ""
) -> dict[str, Any]:
    """One line of runs.jsonl: what ran, what went in when (seconds from the run's start), the verdicts;
    `shape`: of a three-node cluster (SHAPES)."""
    from lab.campaign.report import SHIPPED

    h = result.history
    t0 = h.samples[0].t if h.samples else h.healed_at
    return {
        "run": f"{agents}-{schedule.seed}",
        "agents": agents,
        "seed": schedule.seed,
        "nodes": len(h.nodes),
        **({"shape": shape} if shape else {}),
        "faults": list(schedule.kinds()),
        "overlapping": schedule.overlapping(),
        "schedule": schedule.to_json(),
        "injections": [
            {"t": round(i.t - t0, 1), "kind": i.kind, "node": i.node, "undo": i.undo, "note": i.note}
            for i in h.injections
        ],
        "healed_s": round(h.healed_at - t0, 1),
        **verdicts(h),
        "failed_actions": [str(a) for a in h.failed_actions],
        "errors": list(result.errors),
        "fresh_cluster": fresh,
        "started": datetime.fromtimestamp(t0, UTC).isoformat(timespec="seconds"),
        "replay": replay,
        "commit": code_version(SHIPPED),
        "lab_commit": lab_version(),
    }


def code_version(paths: tuple[str, ...]) -> str:
    """The commit of the checkout the nodes' code comes from, `-dirty` with local changes to `paths`: a
    run's verdict is about the code it ran. `tandem install` copies the agents, handlers and library from
    the tandem package imported here (its checkout may be a worktree beside the lab's own, e.g. with
    `python -m lab` started in another checkout)."""
    import tandem

    return checkout_version(Path(tandem.__file__).resolve().parents[2], paths)


def lab_version() -> str:
    """The commit of the lab itself (emulator, nemesis, checkers), `-dirty` with local changes."""
    from lab.netns import TOP

    return checkout_version(TOP)


def checkout_version(repo: Path, paths: tuple[str, ...] = ()) -> str:
    """HEAD of the checkout at `repo`, `-dirty` with local changes to tracked files (those under `paths`
    when given)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short=10", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no", "--", *paths) else "")


# ---------------------------------------------------------------- the campaign


@dataclass(frozen=True)
class Plan:
    agents: str
    seeds: tuple[int, ...]
    kinds: tuple[str, ...]
    out: Path
    minutes: float  # stop starting runs after this long (the lab lock is shared)
    runs_file: str = "runs.jsonl"
    shape: str = ""  # of a three-node cluster (SHAPES)

    @property
    def replay(self) -> bool:
        return self.runs_file != "runs.jsonl"

    @property
    def kept(self) -> Path:
        """Where histories and timelines go: beside runs.jsonl, or under replays/ for replays (a replay
        must not overwrite the campaign run's own record)."""
        return self.out / Path(self.runs_file).stem if self.replay else self.out


def done_runs(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return {json.loads(line)["run"] for line in path.read_text().splitlines() if line.strip()}


def replay_command(agents: str, kinds: tuple[str, ...], seed: int, shape: str = "") -> str:
    three = f" --nodes 3 --shape {shape}" if shape else ""
    return f"python3 -m lab campaign --agents {agents}{three} --faults {','.join(kinds)} --replay {seed}"


def totals(path: Path) -> str:
    """The running totals over every run in the file: runs, violations by checker."""
    runs = (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )
    by: dict[str, int] = {}
    for r in runs:
        for v in r["violations"]:
            by[v["checker"]] = by.get(v["checker"], 0) + 1
    found = ", ".join(f"{k} {n}" for k, n in sorted(by.items())) or "none"
    return f"{len(runs)} runs, violations: {found}"


def campaign(plan: Plan, base: LabConfig, work: Path, say: Callable[[str], None]) -> int:
    """Run the plan's seeds not yet in its runs file; returns how many ran."""
    plan.out.mkdir(parents=True, exist_ok=True)
    path = plan.out / plan.runs_file
    done = set() if plan.replay else done_runs(path)  # a replay runs again whatever was recorded
    todo = [s for s in plan.seeds if f"{plan.agents}-{s}" not in done]
    say(
        f"campaign: {plan.agents}, {len(todo)} of {len(plan.seeds)} runs to go, faults {','.join(plan.kinds)}"
    )
    start = time.monotonic()
    ran = 0
    while todo and time.monotonic() - start < plan.minutes * 60:
        with cluster(plan.agents, base, work, say, plan.shape or "tiebreaker") as vc:
            fresh = True
            while todo and time.monotonic() - start < plan.minutes * 60:
                seed = todo[0]
                if not fresh:
                    try:
                        restore(vc)
                    except (ScenarioError, LabError, subprocess.SubprocessError) as exc:  # a hung crm: 17025
                        why = (str(exc).splitlines() or [repr(exc)])[0]
                        say(f"cluster not restorable ({why}): a fresh one")
                        break
                schedule = generate(seed, plan.kinds)
                result = one_run(vc, schedule)
                replay = replay_command(plan.agents, plan.kinds, seed, plan.shape)
                record = run_record(plan.agents, schedule, result, fresh, replay, plan.shape)
                if record["violations"]:
                    with contextlib.suppress(Exception):  # beside the work dir: a rebuild wipes that
                        vc.collect(work.with_name(f"{work.name}-violations") / record["run"])
                    (plan.kept / "timelines").mkdir(parents=True, exist_ok=True)
                    (plan.kept / "timelines" / f"{record['run']}.txt").write_text(result.timeline + "\n")
                keep_history(plan.kept, record["run"], result.history)
                with path.open("a") as fh:
                    fh.write(json.dumps(record) + "\n")
                todo.pop(0)
                ran += 1
                fresh = False
                verdict = "; ".join(f"{v['checker']} {v['detail']}" for v in record["violations"]) or "ok"
                say(
                    f"run {record['run']} ({' '.join(record['faults'])}): {verdict[:300]}; "
                    f"recovery {record['recovery_s']}s | {totals(path)}"
                )
    return ran


def seeds_for(seed: int, runs: int) -> tuple[int, ...]:
    return tuple(run_seed(seed, i) for i in range(runs))


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every cluster is torn down (nothing left behind); so does SIGINT
    even when it came in ignored (a shell starts background jobs with SIGINT ignored, and Python then keeps
    it so: a campaign started with `&` could not be stopped with kill -INT)."""

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGINT, old_int)
