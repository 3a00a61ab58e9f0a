# SPDX-License-Identifier: GPL-2.0-or-later
"""The README's three-node cluster (two data nodes, node3 a diskless client and DRBD's quorum tiebreaker),
ours and the anchor's side by side in the lab (issue #13): the same DRBD configuration, the same scenarios,
every outcome recorded, not asserted (the lab tier asserts ours).

The anchor (`ocf:linbit:drbd` + `ocf:heartbeat:VirtualDomain`, unchanged) refuses the README's block on a
clone of three (promoted-max=2: "not even two primaries plus one-or-more-secondaries"); that refusal is
measured first, on the anchor's own cluster, which then runs the only shape it accepts, promoted-max=1 (and
allow-migrate=false: see single_primary), where the VM follows the one Promoted instance by a restart.

    python -m bench.three_nodes              # both, then docs/drbd-vs-linbit.md's block
    python -m bench.three_nodes --only ours  # one side (the block is written only after both)
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lab.cluster import LabConfig, LabError, poll
from lab.scenarios import CLONE, VM, ScenarioError, VmCluster, healthy, mark
from lab.three_nodes import (
    TiebreakerCluster,
    client_round_trip,
    client_round_trip_by_restarts,
    partition_2_1,
    single_primary,
    storage_loss_under_client,
    without_handlers,
)

from bench.move import anchor_crm
from bench.report import table

DOC = Path(__file__).resolve().parents[1] / "docs" / "drbd-vs-linbit.md"
BEGIN, END = "<!-- three-nodes-lab -->", "<!-- /three-nodes-lab -->"


class AnchorTiebreakerCluster(TiebreakerCluster):
    """The same cluster with the anchors' agents and one Promoted instance."""

    promoted_max: ClassVar[int] = 1

    @classmethod
    def drbd_sections(cls) -> str:
        return without_handlers(TiebreakerCluster.drbd_sections())

    @classmethod
    def crm(cls) -> str:
        return single_primary(anchor_crm(TiebreakerCluster.crm()))


@dataclass(frozen=True)
class Outcome:
    scenario: str
    result: str  # what happened, or why it failed
    ok: bool
    doubles: int  # observer samples with two QEMUs of vm1 outside a live migration's window


def outcome_text(name: str, value: object) -> str:
    """One line of what a scenario measured (its dataclass or list of them)."""
    from dataclasses import asdict, is_dataclass

    items = value if isinstance(value, list) else [value]
    parts = []
    for item in items:
        fields = asdict(item) if is_dataclass(item) and not isinstance(item, type) else {"value": item}
        parts.append(", ".join(f"{k} {_fmt(v)}" for k, v in fields.items()))
    return f"{name}: " + "; ".join(parts)


def _fmt(v: object) -> str:
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def quorum_only(scenario: Callable[[VmCluster], object]) -> Callable[[VmCluster], object]:
    def run(vc: VmCluster) -> object:
        vc.lab.crm("configure", "property", "stonith-enabled=false")
        try:
            return scenario(vc)
        finally:
            vc.lab.crm("configure", "property", "stonith-enabled=true")

    return run


def attempt(vc: VmCluster, name: str, scenario: Callable[[VmCluster], object]) -> Outcome:
    """Run one scenario; a failure is recorded and the cluster brought back (cleanup, constraints gone)."""
    assert vc.observer is not None
    t0 = time.time()
    try:
        value = scenario(vc)
        result, ok = outcome_text("ok", value), True
    except (ScenarioError, LabError) as exc:
        result, ok = f"failed: {str(exc).splitlines()[0]}", False
        mark(vc, f"{name}: {result}")
        recover(vc)
    doubles = [s for s in vc.observer.doubles(vc.migration_windows) if s.t >= t0]
    return Outcome(name, result, ok, len(doubles))


def recover(vc: VmCluster) -> None:
    from lab.three_nodes import CLIENT_PROMOTED

    from lab import faults

    faults.heal(vc.lab)
    vc.emu_links([("node1", "node2"), ("node1", "node3"), ("node2", "node3")], cut=False)
    vc.lab.power_all("on", [n for n in vc.lab.nodes if not n.is_on()])
    vc.lab.wait_online(timeout=180)
    for ident in vc.constraints():
        if ident == CLIENT_PROMOTED or ident.startswith("cli-"):
            vc.lab.crm("configure", "delete", ident)
    vc.lab.crm("resource", "cleanup")
    try:
        healthy(vc, "a healthy cluster after a failed scenario")
    except ScenarioError as exc:
        mark(vc, f"not healthy again: {str(exc).splitlines()[0]}")


def dual_primary_refused(vc: VmCluster) -> str:
    """The README's block as it is (promoted-max=2 on a clone of three): the clone stopped, promoted-max
    raised, started again; what the anchor answers. The cluster is then restored to promoted-max=1."""
    from lab.campaign.record import failed_actions

    vc.lab.crm("resource", "stop", CLONE)
    vc.wait(lambda s: not s.locations(VM) and not any(s.roles(CLONE).values()), "the clone and vm1 stopped")
    vc.lab.crm("resource", "meta", CLONE, "set", "promoted-max", "2")
    vc.lab.crm("resource", "start", CLONE)

    def refusal() -> str | None:
        xml = vc.lab.crm_mon_xml()
        found = [f for f in failed_actions(xml) if f.op.startswith("drbd-r0")] if xml else []
        return f"{found[0].op} on {found[0].node}: {found[0].reason}" if found else None

    try:
        answer = poll(refusal, 120, "a failed start of drbd-r0")
    except LabError:
        state = vc.lab.state()
        answer = f"no failure within 120 s: roles {state.roles(CLONE) if state else '?'}"
    vc.lab.crm("resource", "stop", CLONE)
    vc.lab.crm("resource", "meta", CLONE, "set", "promoted-max", "1")
    vc.lab.crm("resource", "cleanup")
    vc.lab.crm("resource", "start", CLONE)
    healthy(vc, "the anchor's cluster back with promoted-max=1")
    return answer


SCENARIOS = ("onto the client and back", "a data node powered off under vm1 on the client", "partition 2|1")


def run_side(label: str, base: LabConfig, work: Path, say: Callable[[str], None]) -> list[Outcome]:
    ours = label == "ours"
    cls = TiebreakerCluster if ours else AnchorTiebreakerCluster
    trip: Callable[[VmCluster], object] = client_round_trip if ours else client_round_trip_by_restarts
    outcomes = []
    with cls.start(base, work / f"three-{label}", say) as vc:
        if not ours:
            refused = dual_primary_refused(vc)
            outcomes.append(Outcome("the README's block (promoted-max=2)", refused, False, 0))
        for name, scenario in (
            (SCENARIOS[0], trip),
            (SCENARIOS[1], storage_loss_under_client),
            (SCENARIOS[2] + ", STONITH on", partition_2_1),
            (SCENARIOS[2] + ", quorum only (stonith-enabled=false)", quorum_only(partition_2_1)),
        ):
            outcomes.append(attempt(vc, name, scenario))
            say(f"{label}: {outcomes[-1]}")
    return outcomes


def render(sides: dict[str, list[Outcome]]) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    for label, outcomes in sides.items():
        for o in outcomes:
            rows.append([label, o.scenario, o.result, str(o.doubles)])
    return "\n\n".join(
        [
            BEGIN,
            f"Written by `python -m bench.three_nodes` on {stamp} (load average {os.getloadavg()[0]:.2f}; "
            "2 shared cores, TCG guest): the README's three-node blocks (lab.three_nodes.TiebreakerCluster), "
            "for the anchor with its agents swapped in and promoted-max=1 after its refusal of 2. "
            "Two QEMUs: samples (every 0.5 s) with two QEMUs of vm1 outside a live migration's window.",
            table(["agents", "scenario", "what happened", "two QEMUs"], rows),
            END,
        ]
    )


def write_block(text: str, path: Path = DOC) -> None:
    doc = path.read_text()
    if BEGIN in doc:
        head, rest = doc.split(BEGIN, 1)
        doc = head + text + rest.split(END, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(doc)


def main(argv: Sequence[str] | None = None) -> int:
    from bench import testbed

    parser = argparse.ArgumentParser(prog="python -m bench.three_nodes", description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("ours", "anchor"))
    args = parser.parse_args(argv)
    prefix = os.environ.get("TANDEM_LAB_PREFIX", "tbench")
    base = LabConfig.from_env(prefix=prefix)
    sides = {
        label: run_side(label, base, testbed.work_dir(prefix), print)
        for label in ("ours", "anchor")
        if args.only in (None, label)
    }
    text = render(sides)
    print(text)
    if args.only is None:
        write_block(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
