# SPDX-License-Identifier: GPL-2.0-or-later
"""The demo's three scenarios as lab tests, on one cluster for the module (lab.scenarios.VmCluster): the
README's crm block applied verbatim, a real QEMU guest on emulated dual-primary DRBD under ocf:tandem:domain.

Asserted in every scenario: the disk generation the guest wrote before a failure is on its disk afterwards;
never two QEMUs of the guest outside a live migration's window (both nodes sampled 4 times a second); no
location constraint left at the end (neither the agents' fencing constraint nor crm resource move's).
Cost: one cluster (~10 s to build) and about 90 s of scenarios on 2 cores (see the lab timings summary).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab.cluster import LabConfig
from lab.scenarios import (
    CLONE,
    CRM_CONFIG,
    VmCluster,
    crm_block,
    live_migration,
    node_failure,
    partition,
    reconfigure_with_pcs,
)

from tests.lab.conftest import ModuleCluster, never_two_copies, no_constraints_left, record, vm_cluster


@pytest.fixture(scope="module")
def module_cluster(lab_defaults: LabConfig) -> Iterator[ModuleCluster]:
    with vm_cluster(VmCluster, lab_defaults, "vm", "test_scenarios") as cluster:
        yield cluster


def test_crm_block_is_read_from_between_the_readme_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "x\n<!-- crm-config -->\n```crm\nprimitive a ocf:p:a\ncommit\n```\n<!-- /crm-config -->\ny\n"
    )
    assert crm_block(readme) == "primitive a ocf:p:a\ncommit\n"
    readme.write_text("no markers yet\n")
    assert crm_block(readme) == CRM_CONFIG.read_text()
    assert (
        crm_block() == CRM_CONFIG.read_text()
    )  # the README's block (once it is there) is lab/config/crm.txt


def test_readme_crm_block_configures_the_cluster(vc: VmCluster) -> None:
    shown = vc.lab.crm("configure", "show")
    for line in crm_block().splitlines():
        words = line.split()
        if words and words[0] in ("primitive", "clone", "colocation", "order"):
            assert f"{words[0]} {words[1]} " in shown
    assert sorted(vc.lab.state().roles(CLONE).values()) == ["Promoted", "Promoted"]  # type: ignore[union-attr]


def test_live_migration_there_and_back(vc: VmCluster) -> None:
    moves = live_migration(vc)
    assert [m.target for m in moves] == [moves[0].target, moves[0].source]
    assert all(m.heartbeat_gaps == 0 for m in moves), moves  # live: the guest never stopped for a second
    for m in moves:
        record(f"live migration {m.source}->{m.target}: crm resource move to started", m.wall_s)
    never_two_copies(vc)
    no_constraints_left(vc)


def test_power_cut_fences_and_restarts_the_vm_on_the_survivor(vc: VmCluster) -> None:
    f = node_failure(vc)
    assert f.victim != f.survivor
    assert f.gen_found >= f.gen_before  # what the guest wrote before the cut survived it
    assert f.resync_kib > 0  # the survivor's writes went to the returning node by a resync
    record("power cut: to vm1 started on the survivor", f.restarted_s)
    never_two_copies(vc)
    no_constraints_left(vc)


def test_partition_places_and_clears_the_fencing_constraint(vc: VmCluster) -> None:
    p = partition(vc)
    assert p.gen_after > p.gen_before  # the guest went on writing (on the winner, or restarted there)
    assert p.constraint_s < p.cleared_s
    record("partition: to constraint cleared", p.cleared_s)
    never_two_copies(vc)
    no_constraints_left(vc)


@pytest.mark.skipif(shutil.which("pcs") is None, reason="pcs is not installed (./run setup installs it)")
def test_pcs_configuration_runs_the_same_cluster(vc: VmCluster) -> None:
    reconfigure_with_pcs(vc)
    shown = vc.lab.crm("configure", "show")
    assert "colocation-vm1-drbd-r0-clone-INFINITY" in shown  # pcs's ids: this is pcs's configuration
    moves = live_migration(vc)
    assert len(moves) == 2
    never_two_copies(vc)
    no_constraints_left(vc)
