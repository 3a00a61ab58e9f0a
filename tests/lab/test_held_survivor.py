# SPDX-License-Identifier: GPL-2.0-or-later
"""DRBD 9.2.19's hold after a Primary loss, in a cluster (lab.three_nodes.HeldSurvivorCluster): three data
nodes, one Promoted instance, the README's blocks otherwise. Since 9.2.19/9.3.3 a Secondary that loses the
Primary stays Consistent until it has reconciled with the other survivors; the survivor must still be
promoted promptly (its score kept, its promote waiting for UpToDate), never a stale one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab.cluster import LabConfig
from lab.scenarios import VmCluster
from lab.three_nodes import HeldSurvivorCluster, primary_loss_while_held

from tests.lab.conftest import ModuleCluster, never_two_copies, no_constraints_left, record, vm_cluster


@pytest.fixture(scope="module")
def module_cluster(lab_defaults: LabConfig) -> Iterator[ModuleCluster]:
    with vm_cluster(HeldSurvivorCluster, lab_defaults, "vm3h", "test_held_survivor") as cluster:
        yield cluster


def test_a_survivor_held_at_consistent_is_promoted_and_runs_the_vm(vc: VmCluster) -> None:
    loss = primary_loss_while_held(vc)
    survivors = {n.name for n in vc.lab.nodes} - {loss.victim}
    assert set(loss.held) == survivors  # both were held: the scenario met the window it is about
    assert loss.promoted in survivors and loss.waited  # promoted during the hold, its promote waited
    assert loss.gen_found >= loss.gen_before
    record("DRBD 9.2.19, Primary power cut: to vm1 started on a held survivor", loss.restarted_s)
    never_two_copies(vc)
    no_constraints_left(vc)
