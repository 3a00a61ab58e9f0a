# SPDX-License-Identifier: GPL-2.0-or-later
"""The README's three-node cluster (lab.three_nodes.TiebreakerCluster): node1 and node2 with data, node3 an
intentional diskless client and DRBD's quorum tiebreaker, its drbd.conf and crm blocks run verbatim, a real
QEMU guest on the emulated DRBD under ocf:tandem:domain.

Asserted as in test_scenarios: never two QEMUs of the guest outside a live migration's window, the data
check on every node's own copy (the client's read through its peers), no location constraint left.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab.cluster import LabConfig
from lab.scenarios import CLONE, VmCluster, promoted
from lab.three_nodes import (
    CLIENT,
    DRBD_3NODE,
    TiebreakerCluster,
    client_round_trip,
    partition_2_1,
    storage_loss_under_client,
    vm_node_shutdown,
)

from tests.lab.conftest import ModuleCluster, never_two_copies, no_constraints_left, record, vm_cluster


@pytest.fixture(scope="module")
def module_cluster(lab_defaults: LabConfig) -> Iterator[ModuleCluster]:
    with vm_cluster(TiebreakerCluster, lab_defaults, "vm3", "test_three_nodes") as cluster:
        yield cluster


def test_the_readme_configuration_runs_with_a_client(vc: VmCluster) -> None:
    conf = (vc.emu_dir / "drbd.conf").read_text()
    assert all(line in conf for line in DRBD_3NODE.read_text().splitlines())
    roles = vc.lab.state().roles(CLONE)  # type: ignore[union-attr]
    assert roles == {"node1": "Promoted", "node2": "Promoted", CLIENT: "Unpromoted"}
    r = vc.emu_state()["nodes"][CLIENT]["r0"]  # type: ignore[index]
    assert r["disks"]["0"]["client"] and r["disks"]["0"]["state"] == "Diskless"


def test_live_migration_onto_the_diskless_client_and_back(vc: VmCluster) -> None:
    moves = client_round_trip(vc)
    assert [m.target for m in moves] == [CLIENT, moves[0].source]
    assert all(m.heartbeat_gaps == 0 for m in moves), moves
    for m in moves:
        record(f"live migration {m.source}->{m.target}: crm resource move to started", m.wall_s)
    never_two_copies(vc)
    no_constraints_left(vc)


def test_a_storage_node_lost_under_the_vm_on_the_client(vc: VmCluster) -> None:
    loss = storage_loss_under_client(vc)
    assert loss.gens_while_down > 0  # the guest went on writing, to the survivor alone
    assert loss.resync_kib > 0  # and those writes reached the returning node by a resync
    never_two_copies(vc)
    no_constraints_left(vc)


def test_clean_shutdown_of_the_vm_node_migrates_the_vm_then_promotes_the_client(vc: VmCluster) -> None:
    leave = vm_node_shutdown(vc)
    assert leave.spare == CLIENT and leave.heartbeat_gaps == 0
    record("three nodes, clean shutdown of the VM's data node: request to node off", leave.shutdown_s)
    vc.wait(
        lambda s: promoted(s) == {"node1", "node2"}, "the returned data node Promoted instead of the client"
    )
    never_two_copies(vc)
    no_constraints_left(vc)


def test_partition_2_1_with_stonith_the_minority_never_writes(vc: VmCluster) -> None:
    m = partition_2_1(vc)
    assert m.fenced and not m.minority_primary
    assert m.gen_found >= m.gen_before
    record("partition 2|1 with STONITH: to vm1 started on the majority", m.restarted_s)
    never_two_copies(vc)
    no_constraints_left(vc)


def test_partition_2_1_quorum_only_the_minority_never_writes(vc: VmCluster) -> None:
    """STONITH off (README: quorum only, and its risk): nobody fences the isolated node, Pacemaker there
    stops vm1 when it loses its own quorum, the majority starts vm1 meanwhile. Two QEMUs may run for a
    while (the risk), but DRBD quorum keeps the isolated one from writing. Last in the module: the
    observer's samples then hold that overlap."""
    vc.lab.crm("configure", "property", "stonith-enabled=false")
    try:
        m = partition_2_1(vc)
    finally:
        vc.lab.crm("configure", "property", "stonith-enabled=true")
    assert not m.fenced and not m.minority_primary
    assert m.gen_found >= m.gen_before
    record("partition 2|1 quorum only: to vm1 started on the majority", m.restarted_s)
    no_constraints_left(vc)
