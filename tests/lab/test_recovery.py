# SPDX-License-Identifier: GPL-2.0-or-later
"""Recovery after faults that once left the README's configuration (lab.scenarios.VmCluster: dual-primary DRBD
under ocf:tandem:drbd, a real guest under ocf:tandem:domain, STONITH) stuck or slow (issue #11, section 6).

- A crash of pacemaker-controld on the DC: its peer erases the node's transient attributes from the CIB while
  attrd keeps them, so the promotion score must be repaired by the probe that follows the controller's return.
- A crash of pacemaker-fenced under the fence-peer handler's stonith_admin (tandem-18076): the request dies
  with the fencer, and the handler must not wait out stonith_admin's timeout with the survivor's I/O frozen.

Cost: one cluster (~15 s) and about a minute per test on 2 cores (see the lab timings summary).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from lab.cluster import LabConfig, LabError, poll
from lab.crm import ClusterState
from lab.scenarios import CLONE, VM, WAIT, VmCluster, guest_log, healthy, mark, power_back, wait_fenced

from lab import faults
from tests.lab.conftest import ModuleCluster, record, vm_cluster

PROMOTED_MONITOR_S = 10  # the README's monitor interval of the Promoted role


@pytest.fixture(scope="module")
def module_cluster(lab_defaults: LabConfig) -> Iterator[ModuleCluster]:
    with vm_cluster(VmCluster, lab_defaults, "vm", "test_recovery") as cluster:
        yield cluster


def both_promoted(s: ClusterState) -> bool:
    return sorted(s.roles(CLONE).values()) == ["Promoted", "Promoted"]


def promotion_scores(vc: VmCluster) -> dict[str, str]:
    """node -> its promotion score of drbd-r0 in the CIB's status section (what the scheduler reads)."""
    from lxml import etree

    status = etree.fromstring(vc.lab.cibadmin("--query", "--scope", "status").encode())
    return {
        str(ns.get("uname")): str(pair.get("value"))
        for ns in status.iter("node_state")
        for pair in ns.iterfind("transient_attributes//nvpair")
        if pair.get("name") == "master-drbd-r0"
    }


def recovered_at(vc: VmCluster, node: str, since: float, window: float) -> float | None:
    """Sample the cluster for `window` seconds after `since`: when it last stopped being whole (both nodes
    Promoted, both scores in the CIB), or None when `node` was fenced meanwhile. Fails if it ends unwhole."""
    last_bad = since
    whole = False
    while time.time() < since + window:
        state = vc.lab.state()
        if state is not None and state.fenced(node, since):
            return None
        try:
            whole = state is not None and both_promoted(state) and len(promotion_scores(vc)) == 2
        except LabError:
            whole = False
        if not whole:
            last_bad = time.time()
        time.sleep(0.25)
    assert whole, f"not promoted on both nodes {window:.0f}s after the fault:\n{vc.status_text()}"
    return last_bad


def test_controller_crash_on_the_dc_leaves_the_node_promotable(vc: VmCluster) -> None:
    """pacemakerd respawns the controller at once; whether the new DC fences the node first is a race
    (2.1.5: "peer process is no longer available"), so the crash is repeated until one run is not fenced."""
    for attempt in range(4):
        dc = healthy(vc, "a healthy cluster before the controller crash").dc()
        assert dc is not None
        boots = guest_log(vc).boots
        t0 = mark(vc, f"SIGKILL of pacemaker-controld on the DC {dc} (attempt {attempt + 1})")
        faults.crash_daemon(vc.lab, dc, "pacemaker-controld")
        back = recovered_at(vc, dc, t0, window=45)
        if back is None:
            mark(vc, f"{dc} was fenced before its controller came back: a run that does not count")
            continue
        took = back - t0
        restarted = guest_log(vc).boots != boots
        mark(
            vc, f"{dc} Promoted with its score again {took:.1f}s after the crash (vm1 restarted: {restarted})"
        )
        record(f"controld crash on the DC: promoted with its score again after {took:.1f}s", took)
        assert took <= 2 * PROMOTED_MONITOR_S, "not promoted again within a monitor interval of the return"
        healthy(vc, "a healthy cluster after the controller crash")
        return
    pytest.fail("the DC was fenced after each of 4 controller crashes: the repair was never exercised")


def test_a_node_is_promoted_within_seconds_of_its_resync(vc: VmCluster) -> None:
    """The node without the VM loses power, is fenced, boots again and resyncs the guest's writes; its
    after-resync-target handler writes its score at once, so it is Promoted again ~1 s after the resync."""
    victim = vc.other(vc.vm_node(healthy(vc, "a healthy cluster before the power cut")))
    t0 = mark(vc, f"power cut of {victim} (vm1 keeps running on {vc.other(victim)})")
    faults.kill(vc.lab, victim)
    wait_fenced(vc, t0)
    power_back(vc, victim)
    poll(vc.drbd_synced, WAIT, "the resync's end", interval=0.1)
    synced = mark(vc, f"resync done: {vc.drbd_summary()}")
    vc.wait(both_promoted, f"{victim} Promoted again")
    took = time.time() - synced
    mark(vc, f"{victim} Promoted {took:.1f}s after its resync ended")
    record(f"resync end -> Promoted: {took:.1f}s", took)
    assert took <= 5, "promoted only at a later monitor, not by after-resync-target"
    healthy(vc, "a healthy cluster after the resync")


RACE_ROUNDS = int(os.environ.get("TANDEM_RACE_ROUNDS", "1"))


def fence_race(vc: VmCluster, kind: str) -> tuple[str, set[str], bool]:
    """One fence race: a full partition, or the DRBD replication link alone cut (the cluster network up, so
    only tandem-fence-peer's STONITH races). Returns the VM's node before, the nodes fenced, and whether the
    guest restarted; the cluster is healthy again at the end."""
    vm_node = vc.vm_node(healthy(vc, f"a healthy cluster before the {kind}"))
    boots = guest_log(vc).boots
    t0 = mark(vc, f"{kind} node1 | node2 (vm1 on {vm_node})")
    if kind == "partition":
        faults.partition(vc.lab, ["node1"], ["node2"])
    vc.emu_link("node1", "node2", cut=True)
    loser, _ = wait_fenced(vc, t0)
    power_back(vc, loser)
    faults.heal(vc.lab)
    vc.emu_link("node1", "node2", cut=False)
    state = healthy(vc, f"a healthy cluster after the {kind}")
    fenced = {n.name for n in vc.lab.nodes if state.fenced(n.name, t0)} | {loser}
    restarted = guest_log(vc).boots != boots
    mark(vc, f"{kind}: vm1 was on {vm_node}; fenced {sorted(fenced)}; vm1 restarted: {restarted}")
    return vm_node, fenced, restarted


@pytest.mark.parametrize("kind", ["partition", "link-cut"])
def test_the_node_running_the_vm_wins_the_fence_race(vc: VmCluster, kind: str) -> None:
    """priority-fencing-delay with vm1's priority (the scheduler's fencing) and the same rule in
    tandem-fence-peer's own STONITH: the node without the VM waits, so the VM's node fences it first.
    TANDEM_RACE_ROUNDS repeats the race (the measurement in docs/drbd-vs-linbit.md used 5 of each)."""
    outcomes = [fence_race(vc, kind) for _ in range(RACE_ROUNDS)]
    lost = [(vm, fenced) for vm, fenced, _ in outcomes if vm in fenced]
    record(f"fence race ({kind}): VM node fenced in {len(lost)} of {len(outcomes)}", 0)
    assert lost == [], f"the VM's node was fenced: {lost}"
    assert not any(restarted for *_, restarted in outcomes)


def handler_stonith(vc: VmCluster, node: str, log: Path, logged: int) -> bool | None:
    """True once the fence-peer handler's stonith_admin runs on `node`; False once the handler found the
    peer fenced already (the cluster's STONITH came first); None meanwhile."""
    if any("stonith_admin" in faults.programs(pid) for pid in vc.lab.node(node).pids()):
        return True
    return False if "peer is down" in log.read_text()[logged:] else None


def runs_only_on(node: str, state: ClusterState) -> bool:
    return sorted(state.locations(VM)) == [node]


def test_a_fencer_crash_under_the_handlers_stonith_keeps_io_frozen_only_until_the_peer_is_fenced(
    vc: VmCluster,
) -> None:
    """vm1's node loses power; the survivor's fence-peer handler waits its priority delay, then asks
    stonith_admin, whose request joins the cluster's own; pacemaker-fenced is killed there at that moment.
    The cluster asks again and fences the peer, but stonith_admin would hear nothing and wait its whole
    timeout (45 s) with the survivor's I/O frozen and vm1 down. The handler asks again every 10 s and ends
    once the CIB shows the peer fenced. Whether the first request finished before the kill is a race: the
    attempt is repeated until the kill came first."""
    for attempt in range(3):
        vm_node = vc.vm_node(healthy(vc, "a healthy cluster before the power cut"))
        survivor = vc.other(vm_node)
        log = vc.lab.node(survivor).dir / "syslog.log"
        logged = len(log.read_text())
        t0 = mark(vc, f"power cut of {vm_node}, vm1's node (attempt {attempt + 1})")
        faults.kill(vc.lab, vm_node)
        asked = poll(partial(handler_stonith, vc, survivor, log, logged), 40, "the handler", interval=0.05)
        if asked:
            mark(vc, f"SIGKILL of pacemaker-fenced on {survivor} under the handler's stonith_admin")
            faults.crash_daemon(vc.lab, survivor, "pacemaker-fenced")
        crashed = time.time()
        vc.wait(partial(runs_only_on, survivor), f"vm1 running on {survivor}")
        took = time.time() - crashed
        handler = log.read_text()[logged:]
        mark(vc, f"vm1 on {survivor}: {took:.1f}s after the crash ({time.time() - t0:.1f}s after the cut)")
        power_back(vc, vm_node)
        if not asked or not ("asking the fencer again" in handler or "fenced meanwhile" in handler):
            mark(vc, "the peer was fenced before the fencer died: an attempt that does not count")
            healthy(vc, "a healthy cluster after the power cut")
            continue
        record(f"fencer crash under the handler's STONITH: vm1 running after {took:.1f}s", took)
        assert took < 30, "the handler waited out stonith_admin's timeout"
        healthy(vc, "a healthy cluster after the fencer crash")
        return
    pytest.fail("the cluster fenced the peer before the fencer crash in all 3 attempts: path never exercised")
