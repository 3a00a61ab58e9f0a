# SPDX-License-Identifier: GPL-2.0-or-later
"""Steady-state monitor of each pair, on the same resource in the same state: wall time, what it starts,
what it writes to the CIB, peak RSS, and the DRBD emulator's share of the time."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.cluster import poll
from lab.guest import serial
from lab.netns import Node

from bench.agents import Agent, Pair, clone_meta, ocf_env
from bench.measure import (
    Census,
    Command,
    Replay,
    Run,
    census,
    peak_rss_mib,
    per_round_ms,
    replay,
    spawn,
    stderr_of,
    traces,
)
from bench.report import med_p90, num, section, spread, table, times
from bench.stats import paired_ratios, ratio, round_robin, summarize
from bench.testbed import VM, VM_MINOR, Bed

INTERVAL_PROMOTED_MS = 10_000
INTERVAL_UNPROMOTED_MS = 11_000
TIMEOUT_MS = 30_000


def drbd_pair() -> Pair:
    return Pair(
        Agent("ocf:tandem:drbd", "bench_drbd_ours", {"drbd_resource": "r0"}),
        Agent("ocf:linbit:drbd", "bench_drbd_anchor", {"drbd_resource": "r0"}),
    )


def domain_pair(bed: Bed) -> Pair:
    params = {"config": str(bed.vm_xml), "hypervisor": "qemu:///system", "migration_transport": "tcp"}
    return Pair(
        Agent("ocf:tandem:domain", "bench_vm_ours", params),
        Agent("ocf:heartbeat:VirtualDomain", "bench_vm_anchor", params),
    )


def cib_config(bed: Bed) -> str:
    """The four resources, unmanaged and without recurring operations: the cluster knows them (so their
    cluster tools work as in production) but never runs them while we do."""
    lines = []
    for pair in (drbd_pair(), domain_pair(bed)):
        for agent in (pair.ours, pair.anchor):
            params = " ".join(f"{k}={v}" for k, v in agent.params.items())
            kind = agent.standard_provider_type
            lines.append(f"primitive {agent.instance} {kind} params {params} meta is-managed=false")
    for agent in (drbd_pair().ours, drbd_pair().anchor):
        lines.append(
            f"clone ms_{agent.instance} {agent.instance} meta promotable=true promoted-max=1 "
            "promoted-node-max=1 clone-max=2 clone-node-max=1 notify=true is-managed=false"
        )
    return "\n".join([*lines, "commit", ""])


@dataclass(frozen=True)
class Scenario:
    title: str
    node: str
    pair: Pair
    interval_ms: int
    meta: Mapping[str, str]


@dataclass(frozen=True)
class PairResult:
    scenario: Scenario
    runs: tuple[Run, ...]  # the agents' and the replayed DRBD calls', in the same rounds
    census: Mapping[str, Census]
    replays: Mapping[str, Replay]
    rss_runs: tuple[Run, ...]  # the same commands again under GNU time, for peak RSS

    def emu_ms(self, name: str) -> list[float]:
        """Per round: what the DRBD calls of one monitor of `name` cost the emulator alone."""
        return per_round_ms(self.runs, self.replays[name].calls)

    def own_ms(self, name: str) -> list[float]:
        """Per round: the agent's wall time minus its DRBD calls' time in the emulator."""
        return [w - e for w, e in zip(walls(self, name), self.emu_ms(name), strict=True)]

    def emu_rss_mib(self, name: str) -> float | None:
        """The largest peak of one of the emulator calls `name` makes."""
        found = peak_rss_mib(self.rss_runs, [c.name for c in self.replays[name].commands])
        return max(found) if found else None


@dataclass(frozen=True)
class Settings:
    rounds: int
    warmup: int
    census_runs: int
    real_call_ms: float | None = None  # what one real drbdsetup/drbdadm call costs here (bench.startup)


def commands(bed: Bed, sc: Scenario) -> list[Command]:
    node = bed.node(sc.node)
    base = bed.daemon_env(node)
    out = []
    for name in sc.pair.names:
        agent = sc.pair.agent(name)
        env = ocf_env(
            base,
            agent,
            "monitor",
            node=node.name,
            node_id=str(node.index),
            interval_ms=sc.interval_ms,
            timeout_ms=TIMEOUT_MS,
            meta=sc.meta,
        )
        out.append(Command(name, (agent.path, "monitor"), env))
    return out


def measure(bed: Bed, sc: Scenario, s: Settings, log: Callable[[str], None]) -> PairResult:
    """Warm-up; the census of each agent (strace, CIB counters); then the timed rounds, in which every
    DRBD call the census saw is also replayed alone."""
    node = bed.node(sc.node)
    cmds = commands(bed, sc)
    logs = bed.work / "runs" / slug(sc.title)
    names = [c.name for c in cmds]
    spawn(node, cmds, round_robin(names, s.warmup), logs)
    counted = {c.name: census(node, c, s.census_runs, logs / f"census-{c.name}") for c in cmds}
    replays = {}
    for c in cmds:
        found = traces(logs / f"census-{c.name}", c.name)
        replays[c.name] = replay(c.name, found[0] if found else [], c.env)
    extra = [e for r in replays.values() for e in r.commands]
    order = round_robin([*names, *(e.name for e in extra)], s.rounds)
    runs = spawn(node, [*cmds, *extra], order, logs)
    every = [*names, *(e.name for e in extra)]
    rss_runs = spawn(node, [*cmds, *extra], round_robin(every, s.census_runs), logs, rss=True)
    for name in names:
        rcs = {r.rc for r in runs if r.name == name}
        log(f"  {sc.title}: {name} rc {sorted(rcs)} {summarize_ms(runs, name)}")
        if rcs - {0, 8}:
            log(f"    stderr: {stderr_of(logs, name)[-600:]}")
    return PairResult(sc, tuple(runs), counted, replays, tuple(rss_runs))


def summarize_ms(runs: Sequence[Run], name: str) -> str:
    s = summarize([r.wall_ns / 1e6 for r in runs if r.name == name])
    return f"median {s.median:.1f} ms, p90 {s.p90:.1f} ms (n={s.n})"


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:120]


def scenarios(bed: Bed) -> list[Scenario]:
    d = drbd_pair()
    return [
        Scenario(
            "DRBD r0 Primary, peer Secondary, connected, both UpToDate (promoted-max=1)",
            "node1",
            d,
            INTERVAL_PROMOTED_MS,
            clone_meta(1, "Promoted"),
        ),
        Scenario(
            "DRBD r0 Secondary, peer Primary, connected, both UpToDate (promoted-max=1)",
            "node2",
            d,
            INTERVAL_UNPROMOTED_MS,
            clone_meta(1, "Unpromoted"),
        ),
        Scenario(
            "DRBD r0 Primary, peer Secondary, connected, both UpToDate (promoted-max=2, dual-primary clone)",
            "node1",
            d,
            INTERVAL_PROMOTED_MS,
            clone_meta(2, "Promoted"),
        ),
        Scenario(
            f"Domain {VM} running under libvirtd on node1, disk /dev/drbd{VM_MINOR}",
            "node1",
            domain_pair(bed),
            INTERVAL_PROMOTED_MS,
            {},
        ),
    ]


def prepare(bed: Bed, log: Callable[[str], None]) -> None:
    """DRBD r0 and vm0 up on both nodes, Primary on node1; the guest running on node1; the resources in
    the CIB (unmanaged) and the cluster idle."""
    n1 = bed.node(1)
    drbd_ready(bed, ["r0", "vm0"])
    lv = bed.libvirtd(n1)
    if lv.domstate(VM) != "running":
        mark = serial.size(bed.serial) if bed.serial.exists() else 0
        lv.create(bed.vm_xml.read_text())
        serial.wait_for(bed.serial, r"alive t=\d+", after=mark, timeout=120)
    log("  guest running on node1")
    bed.lab.crm("configure", input=cib_config(bed))
    idle(bed)


def drbd_ready(bed: Bed, names: Sequence[str]) -> None:
    """These resources up on both nodes, Primary on node1, connected and UpToDate."""
    n1, n2 = bed.node(1), bed.node(2)
    for n in (n1, n2):
        bed.drbdadm(n, "up", *names, check=False)
    bed.drbdadm(n1, "primary", *names)
    poll(lambda: connected(bed, n1, len(names)) or None, 60, f"{' '.join(names)} connected and UpToDate")


def idle(bed: Bed) -> None:
    """Until the cluster has nothing left to do (the probes of the new resources are in)."""
    bed.lab.first_live().run(["crm_resource", "--wait", "--timeout", "300"], timeout=320, check=False)


def connected(bed: Bed, node: Node, count: int) -> bool:
    out = node.run(["drbdsetup", "status"], env=bed.daemon_env(node)).stdout
    return out.count("peer-disk:UpToDate") >= count and "Connecting" not in out


def run(bed: Bed, s: Settings, log: Callable[[str], None]) -> tuple[list[PairResult], str]:
    prepare(bed, log)
    results = [measure(bed, sc, s, log) for sc in scenarios(bed)]
    return results, render(results, s)


# ---- the report --------------------------------------------------------------------------------------------


def walls(r: PairResult, name: str) -> list[float]:
    return [x.wall_ns / 1e6 for x in r.runs if x.name == name]


def render(results: Sequence[PairResult], s: Settings) -> str:
    wall_rows, what_rows, emu_rows = [], [], []
    for r in results:
        sc = r.scenario
        o, a = summarize(walls(r, "ours")), summarize(walls(r, "anchor"))
        pr = summarize(paired_ratios(walls(r, "ours"), walls(r, "anchor")))
        wall_rows.append(
            [
                sc.title,
                f"{sc.pair.ours.standard_provider_type} / {sc.pair.anchor.standard_provider_type}",
                rcs(r, "ours") + " / " + rcs(r, "anchor"),
                med_p90(o),
                med_p90(a),
                times(ratio(o.median, a.median)),
                times(ratio(o.p90, a.p90)),
                f"{pr.median:.2f}× (IQR {pr.p25:.2f}–{pr.p75:.2f})",
            ]
        )
        for name in sc.pair.names:
            agent = sc.pair.agent(name)
            c = r.census[name]
            n = max(len(c.counts), 1)
            rss = summarize(peak_rss_mib(r.rss_runs, [name]))
            emu_rss = r.emu_rss_mib(name)
            what_rows.append(
                [
                    sc.title,
                    agent.standard_provider_type,
                    num(sum(x.processes for x in c.counts) / n),
                    num(sum(x.drbd for x in c.counts) / n),
                    num(sum(x.hypervisor for x in c.counts) / n),
                    num(sum(x.cib_reads for x in c.counts) / n),
                    num(sum(x.cib_writes for x in c.counts) / n),
                    num(c.cib_updates / c.runs, 2),
                    f"{rss.median:.1f} (max {rss.maximum:.1f})",
                    "n/a" if emu_rss is None else f"{emu_rss:.1f}",
                ]
            )
        emu_rows.append(emu_row(r, sc.title, s.real_call_ms))
    wall = table(
        [
            "state",
            "ours / anchor",
            "rc ours / anchor",
            "ours ms (median / p90)",
            "anchor ms (median / p90)",
            "ratio of medians",
            "ratio of p90s",
            "paired ratio, median (IQR)",
        ],
        wall_rows,
        right=[3, 4, 5, 6],
    )
    spreads = table(
        ["state", "ours spread (ms)", "anchor spread (ms)"],
        [
            [r.scenario.title, spread(summarize(walls(r, "ours"))), spread(summarize(walls(r, "anchor")))]
            for r in results
        ],
    )
    what = table(
        [
            "state",
            "agent",
            "programs started",
            "DRBD tool calls",
            "virsh calls",
            "cluster reads",
            "cluster write requests",
            "CIB updates per monitor",
            "peak RSS MiB (tree), median",
            "peak RSS MiB of one emulator call",
        ],
        what_rows,
        right=[2, 3, 4, 5, 6, 7],
    )
    emu_table = table(
        [
            "state",
            "DRBD calls ours / anchor",
            "emulator ms ours / anchor",
            "wall − emulator ms ours / anchor",
            "ratio without the emulator, paired (IQR)",
            "estimate with real DRBD tools ms ours / anchor (ratio)",
            "not replayed (state changes)",
        ],
        emu_rows,
        right=[1, 2, 3, 4],
    )
    real = "not measured" if s.real_call_ms is None else f"{s.real_call_ms:.1f} ms, the reference section"
    notes = {k: v.format(s=s, real=real) for k, v in NOTES.items()}
    parts = [
        section("Monitor: wall time", notes["wall"], wall, "Spread of the wall times:", spreads),
        section(
            "Monitor: what one steady-state monitor does",
            notes["what"],
            what,
            "The programs of one traced monitor, in order:",
            programs_table(results),
        ),
        section("Monitor: the DRBD emulator's share", notes["emu"], emu_table),
    ]
    return "\n".join(parts)


NOTES = {
    "wall": "{s.rounds} interleaved rounds per state after {s.warmup} warm-up round(s); per round each "
    "agent runs once, the order rotating each round. Ratios are ours/anchor: below 1 means ours is "
    "faster. The paired ratio is the median of the per-round ratios (runs back to back share the "
    "machine's load of that moment).",
    "what": "Counted over {s.census_runs} consecutive monitors of each agent alone, under "
    "`strace -f -e trace=execve` (programs started, not counting the agent itself; cluster tools split "
    "into reads and write requests by their options). CIB updates: the CIB's epoch/num_updates before "
    "and after those monitors, minus the change over an equally long idle period. Peak RSS: GNU time's "
    "%M over {s.census_runs} more monitors, i.e. the largest resident set of any one process of the "
    "agent's tree (an emulator call counts: see the last column, the largest of its DRBD calls run "
    "alone).",
    "emu": "The emulator's drbdsetup/drbdadm are Python programs, far slower than the real C tools. Each "
    "DRBD call a monitor made (from its strace) ran alone, with the agent's environment, in every timed "
    "round next to the agents; a round's sum over one monitor's calls is the emulator's time in that "
    "round's monitor, and the agent's wall time minus it estimates the agent's own time with instant DRBD "
    "tools (medians of the per-round values). The estimate adds back, per DRBD call, what the real "
    "drbdsetup/drbdadm binaries take to start and answer --version here ({real}); a real call also "
    "talks to the kernel, so take it as a lower bound.",
}


def emu_row(r: PairResult, title: str, real_ms: float | None) -> list[str]:
    """calls, emulator ms, own ms (medians of the per-round values), own-time ratio (paired), the estimate
    with real DRBD tools (own + calls × real_ms), skipped."""
    ro, ra = r.replays["ours"], r.replays["anchor"]
    eo, ea = summarize(r.emu_ms("ours")), summarize(r.emu_ms("anchor"))
    oo, oa = summarize(r.own_ms("ours")), summarize(r.own_ms("anchor"))
    calls = f"{len(ro.calls)} / {len(ra.calls)}"
    emu = f"{eo.median:.1f} / {ea.median:.1f}"
    wo, wa = summarize(walls(r, "ours")).median, summarize(walls(r, "anchor")).median
    if eo.median > SWAMPED * wo or ea.median > SWAMPED * wa:
        why = f"n/a: the emulator is over {SWAMPED:.0%} of the wall time"
        return [title, calls, emu, why, why, why, f"{ro.skipped} / {ra.skipped}"]
    pairs = [(o, a) for o, a in zip(r.own_ms("ours"), r.own_ms("anchor"), strict=True) if o > 0 and a > 0]
    own = summarize(paired_ratios([o for o, _ in pairs], [a for _, a in pairs])) if pairs else None
    return [
        title,
        calls,
        emu,
        f"{oo.median:.1f} / {oa.median:.1f}",
        "n/a" if own is None else f"{own.median:.2f}× (IQR {own.p25:.2f}–{own.p75:.2f})",
        estimate(oo.median, len(ro.calls), oa.median, len(ra.calls), real_ms),
        f"{ro.skipped} / {ra.skipped}",
    ]


# Past this share of an agent's wall time, the emulator's run-to-run variation is larger than what is left
# of the agent: wall − emulator says nothing any more.
SWAMPED = 0.9


def estimate(own_o: float, calls_o: int, own_a: float, calls_a: int, real_ms: float | None) -> str:
    if real_ms is None:
        return "n/a (no reference run)"
    o, a = own_o + calls_o * real_ms, own_a + calls_a * real_ms
    return f"{o:.1f} / {a:.1f} ({times(ratio(o, a))})"


def programs_table(results: Sequence[PairResult]) -> str:
    rows = []
    for r in results:
        for name in r.scenario.pair.names:
            counts = r.census[name].counts
            progs = " → ".join(counts[0].programs) if counts and counts[0].programs else "(none)"
            rows.append([r.scenario.title, r.scenario.pair.agent(name).standard_provider_type, progs])
    return table(["state", "agent", "programs started"], rows)


def rcs(r: PairResult, name: str) -> str:
    return ",".join(str(x) for x in sorted({x.rc for x in r.runs if x.name == name}))


def runs_dir(bed: Bed) -> Path:
    return bed.work / "runs"
