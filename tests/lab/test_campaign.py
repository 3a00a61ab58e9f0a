# SPDX-License-Identifier: GPL-2.0-or-later
"""A fixed-seed slice of the fault campaign (lab/campaign), what CI affords: 5 runs of the riskiest kinds
(power cut, partition, replication-link cut, crash of pacemaker-controld, crm resource move; a quarter of
them inside a live migration) against the README's configuration, on one cluster with DRBD on its own
replication network; and the checkers' controls (lab/campaign/controls.py): sabotage they must flag.

Asserted: every run ran and was judged, and no checker fired (data safety S1-S5, the fence race S6,
liveness L1-L3). The full campaign is `python3 -m lab campaign` (docs/campaign.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.campaign.checkers import check
from lab.campaign.controls import CONTROLS
from lab.campaign.report import load
from lab.campaign.runner import Plan, campaign, cluster, one_run, restore, seeds_for
from lab.campaign.schedule import RISKIEST, Event, Schedule
from lab.cluster import LabConfig
from lab.netns import TOP
from lab.scenarios import VmCluster, qemu_processes

from tests.lab.conftest import record

SEED = 9000
RUNS = 5


def test_fixed_seed_slice_has_no_violation(lab_defaults: LabConfig, tmp_path: Path) -> None:
    plan = Plan("tandem", seeds_for(SEED, RUNS), RISKIEST, tmp_path, minutes=60)
    ran = campaign(plan, lab_defaults, Path(f"/tmp/{lab_defaults.prefix}-campaign"), print)
    runs = load(tmp_path / "runs.jsonl")
    assert ran == RUNS and [r["seed"] for r in runs] == list(plan.seeds)
    assert all(r["injections"] for r in runs)  # every schedule really went in
    for r in runs:
        record(f"campaign {r['run']} ({' '.join(r['faults'])}): recovery {r['recovery_s']}s", 0.0)
    found = [(r, v) for r in runs for v in r["violations"]]
    assert found == [], "\n".join(
        f"{r['run']}: {v['checker']} {v['detail']} ({r['replay']})" for r, v in found
    )


@pytest.fixture(scope="class")
def vc(lab_defaults: LabConfig) -> Iterator[VmCluster]:
    """One fresh cluster for a class's runs, each of which starts from the known good state (restore)."""
    with cluster("tandem", lab_defaults, Path(f"/tmp/{lab_defaults.prefix}-campaign"), print) as shared:
        yield shared


class TestOnOneCluster:
    """The checkers' controls (lab/campaign/controls.py) and the disk failure, as real runs."""

    @staticmethod
    def control_run(vc: VmCluster, kind: str) -> tuple[set[str], str]:
        """A control run: the checkers that fired, and the timeline."""
        restore(vc)
        result = one_run(vc, Schedule(0, (Event(1.0, kind, "other", 6.0),)))
        assert result.history.injections[0].note == "", result.history.injections
        return {v.checker for v in check(result.history)}, result.timeline

    def test_a_second_qemu_started_by_hand_is_flagged(self, vc: VmCluster) -> None:
        assert set(CONTROLS) == {"second-qemu", "forced-primary"}
        fired, timeline = self.control_run(vc, "second-qemu")
        assert "S1" in fired, f"{fired}\n{timeline}"

    def test_a_stale_node_forced_primary_against_the_constraint_is_flagged(self, vc: VmCluster) -> None:
        fired, timeline = self.control_run(vc, "forced-primary")
        assert {"S3", "S4", "S5"} <= fired, f"{fired}\n{timeline}"

    def test_a_failed_disk_under_the_vm_moves_it_live(self, vc: VmCluster) -> None:
        """The backing disk fails under the running VM: DRBD 9 serves its I/O from the peer, the agent
        takes the node's promotion score away, and Pacemaker live-migrates the VM off before demoting the
        node: no restart (no boot of the guest), one migration, no checker fires, the disk replaced after."""
        restore(vc)
        (before,) = qemu_processes(vc.lab)
        result = one_run(vc, Schedule(0, (Event(1.0, "disk-fail", "vm", 20.0),)))
        h = result.history
        assert [(i.node, i.note) for i in h.injections] == [(before, ""), (before, "")]
        moved = [s for s in h.samples if s.t < h.healed_at and s.qemu and before not in s.qemu]
        assert moved, f"vm1 stayed on {before} with a failed disk\n{result.timeline}"
        assert [b for b in h.boots if b.where == "at boot"] == [], f"vm1 restarted\n{result.timeline}"
        assert len(h.migrations) == 1 and check(h) == [], f"{check(h)}\n{result.timeline}"

    def test_a_partition_while_fencing_fails_and_execd_crashes_leaves_the_vm_where_it_runs(
        self, vc: VmCluster
    ) -> None:
        """tandem-18223's schedule: the fence device fails, the network is partitioned, and execd crashes on
        the node without the VM, whose controller comes back as DC of its side and writes expected=down
        for the VM's node. That node ran the VM as Primary and was never fenced: the handler there must
        not take it for fenced (nor place "promotion only here"). After the heal the VM runs where it ran,
        with no constraint left."""
        restore(vc)
        events = (
            Event(1.0, "fence-fail", "", 23.4),
            Event(5.7, "partition", "", 9.8),
            Event(6.5, "crash-execd", "other", 0.0),
        )
        result = one_run(vc, Schedule(0, events))
        assert [i.kind for i in result.history.injections][:3] == ["fence-fail", "partition", "crash-execd"]
        assert check(result.history) == [], f"{check(result.history)}\n{result.timeline}"


def test_ctrl_c_leaves_nothing_behind(lab_defaults: LabConfig, tmp_path: Path) -> None:
    """SIGINT in the middle of a run: no namespace, loop device or process of the lab survives it."""
    prefix = lab_defaults.prefix
    argv = [
        sys.executable,
        "-m",
        "lab",
        "campaign",
        "--runs",
        "1",
        "--out",
        str(tmp_path),
        "--prefix",
        prefix,
    ]
    env = {**os.environ, "PYTHONPATH": f"{TOP / 'lib'}:{TOP}"}
    loops_before = _loops()
    with subprocess.Popen(argv, cwd=TOP, env=env, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # the cluster is up and the VM runs: the run's faults start now
            if "drbd-r0-clone Promoted on" in line:
                break
        time.sleep(8)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=180) != 0
    assert sorted(Path("/run/netns").glob(f"{prefix}-*")) == []
    assert _loops() - loops_before == set()  # the nodes' loop devices over their DRBD copies, detached
    root = f"/tmp/{prefix}-lab"
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and root in _cmdline(p)]
    assert left == []
    assert not (tmp_path / "runs.jsonl").exists()  # an interrupted run is not recorded as done


def _loops() -> set[str]:
    """The attached loop devices (a node's copy is served through FUSE: its path says nothing here)."""
    out = subprocess.run(
        ["losetup", "--list", "--noheadings", "--output", "NAME"], capture_output=True, text=True
    )
    return set(out.stdout.split())


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
