# SPDX-License-Identifier: GPL-2.0-or-later
"""The README's three-node blocks with three data nodes (lab.three_nodes.ThreeDataCluster): every node holds a
copy, DRBD quorum by majority, a real QEMU guest under ocf:tandem:domain. Partition 2|1 with STONITH: the
isolated node (the VM's) loses quorum and never writes, the majority restarts the VM from its copy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab.cluster import LabConfig
from lab.scenarios import CLONE, VmCluster
from lab.three_nodes import ThreeDataCluster, partition_2_1, vm_node_shutdown

from tests.lab.conftest import ModuleCluster, never_two_copies, no_constraints_left, record, vm_cluster


@pytest.fixture(scope="module")
def module_cluster(lab_defaults: LabConfig) -> Iterator[ModuleCluster]:
    with vm_cluster(ThreeDataCluster, lab_defaults, "vm3d", "test_three_data_nodes") as cluster:
        yield cluster


def test_three_copies_two_promoted(vc: VmCluster) -> None:
    roles = vc.lab.state().roles(CLONE)  # type: ignore[union-attr]
    assert sorted(roles.values()) == ["Promoted", "Promoted", "Unpromoted"]
    disks = {n: rs["r0"]["disks"]["0"] for n, rs in vc.emu_state()["nodes"].items()}  # type: ignore[attr-defined]
    assert all(d["state"] == "UpToDate" and not d["client"] for d in disks.values()), disks


def test_clean_shutdown_of_the_vm_node_migrates_the_vm_then_promotes_the_spare(vc: VmCluster) -> None:
    leave = vm_node_shutdown(vc)
    assert leave.heartbeat_gaps == 0
    record("three data nodes, clean shutdown of the VM's node: request to node off", leave.shutdown_s)
    never_two_copies(vc)
    no_constraints_left(vc)


def test_partition_2_1_with_stonith_the_minority_never_writes(vc: VmCluster) -> None:
    m = partition_2_1(vc)
    assert m.fenced and not m.minority_primary
    assert m.gen_found >= m.gen_before
    record("three data nodes, partition 2|1 with STONITH: to vm1 started on the majority", m.restarted_s)
    never_two_copies(vc)
    no_constraints_left(vc)
