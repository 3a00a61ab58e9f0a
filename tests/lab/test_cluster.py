# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab cluster itself: 2 nodes, STONITH on with fence_tandemlab, and what the agents' tests rely on.

One cluster for the module (up ~4 s); the tests run in file order and each leaves the cluster healthy.
About 40 s in all on 2 cores.
"""

from __future__ import annotations

import re
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest
from lab.cluster import Lab, fence_id, poll
from lab.crm import ClusterState
from lab.netns import Node

from lab import faults
from tests.lab.conftest import record

STATEFUL = """primitive st ocf:pacemaker:Stateful \\
    op monitor interval=10s role=Promoted op monitor interval=11s role=Unpromoted
clone st-clone st meta promotable=true promoted-max=2 promoted-node-max=1
commit
"""
DUMMY = """primitive dm ocf:pacemaker:Dummy meta allow-migrate=true op monitor interval=10s
commit
"""


def both_promoted(state: ClusterState) -> bool:
    return state.roles("st-clone") == {"node1": "Promoted", "node2": "Promoted"}


def test_nodes_are_isolated_machines(cluster: Lab) -> None:
    for node in cluster.nodes:
        assert node.run(["hostname"]).stdout.strip() == node.name
        assert node.run(["crm_node", "-n"]).stdout.strip() == node.name
        ps = node.run(["ps", "-e", "-o", "comm="]).stdout.split()
        assert ps.count("corosync") == 1  # its own PID namespace: only its own daemons
        assert node.address in node.run(["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
        for other in cluster.nodes:  # node names resolve, as migration URIs need
            assert node.run(["getent", "hosts", other.name]).stdout.split()[0] == other.address
    links = cluster.nodes[0].run(["corosync-cfgtool", "-s"]).stdout
    assert re.search(r"nodeid:\s+2:\s+connected", links)  # node1 reaches node2 over the lab's bridge
    host = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    assert all(n.address not in host.stdout for n in cluster.nodes)  # addresses exist only inside the lab


def test_stonith_is_on_with_the_lab_fence_device(cluster: Lab) -> None:
    node = cluster.nodes[0]
    prop = node.run(["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--query", "-q"])
    assert prop.stdout.strip() == "true"
    assert node.run(["stonith_admin", "--list", "node2"]).stdout.splitlines()[0] == "lab-fence-node2"
    status = node.run(["stonith_admin", "--query", "lab-fence-node2"], check=False)
    assert status.returncode == 0, status.stderr


def test_no_node_can_fence_itself(cluster: Lab) -> None:
    """Each node's device is banned from that node, so the fencer can never hand a node its own reboot."""
    for node in cluster.nodes:
        capable = node.run(["stonith_admin", "--list", node.name], check=False).stdout
        assert "lab-fence" not in capable, capable  # on the other nodes: their own device for it
        others = [n for n in cluster.nodes if n is not node]
        assert fence_id(node.name) in others[0].run(["stonith_admin", "--list", node.name]).stdout


def test_stonith_admin_reboots_a_node_with_the_lab_fence_device(cluster: Lab) -> None:
    node2 = cluster.node("node2")
    holder = node2.holder()
    since = time.time()
    done = cluster.node("node1").run(["stonith_admin", "--reboot", "node2", "--timeout", "90"], timeout=120)
    assert done.returncode == 0
    # powered off, and booted again after the reboot delay: a new init
    poll(lambda: (node2.is_on() and node2.holder() != holder) or None, 60, "node2 booted again")
    cluster.wait_online()
    history = cluster.node("node1").run(["stonith_admin", "--history", "node2", "--output-as=xml"]).stdout
    assert 'action="reboot"' in history and 'status="success"' in history
    assert cluster.state("node1").fenced("node2", since)  # type: ignore[union-attr]


def test_stateful_clone_is_promoted_on_both_nodes(cluster: Lab) -> None:
    cluster.crm("configure", input=STATEFUL)
    cluster.wait_for(both_promoted, "st-clone promoted on both nodes")


def test_dummy_live_migrates_with_crm_resource_move(cluster: Lab) -> None:
    cluster.crm("configure", input=DUMMY)
    state = cluster.wait_for(lambda s: len(s.locations("dm")) == 1, "dm started")
    (source,) = state.locations("dm")
    target = "node2" if source == "node1" else "node1"
    cluster.crm("resource", "move", "dm", target)
    cluster.wait_for(lambda s: s.roles("dm") == {target: "Started"}, f"dm on {target}")
    cluster.crm("resource", "clear", "dm")
    assert cluster.logs(f"Result of migrate_to operation for dm on {source}: ok")
    assert cluster.logs(f"Result of migrate_from operation for dm on {target}: ok")


def test_a_hard_killed_node_is_fenced_and_the_cluster_recovers(cluster: Lab) -> None:
    if not cluster.state().instances("dm"):  # type: ignore[union-attr]
        cluster.crm("configure", input=STATEFUL + DUMMY)
    state = cluster.wait_for(lambda s: len(s.locations("dm")) == 1 and both_promoted(s), "dm and st-clone")
    (victim,) = state.locations("dm")
    survivor = "node2" if victim == "node1" else "node1"
    since, t0 = time.time(), time.monotonic()
    faults.kill(cluster, victim)
    assert not cluster.node(victim).is_on()
    fenced = cluster.wait_for(lambda s: bool(s.fenced(victim, since)), f"{victim} fenced", node=survivor)
    record("kill -> fenced", time.monotonic() - t0)
    (event,) = fenced.fenced(victim, since)
    assert (event.action, event.delegate) == ("reboot", survivor)
    # it was our agent that did it: the supervisor got the request from the survivor's fencer
    log = (cluster.root / "supervisor.log").read_text()
    assert f"reboot {victim} asked by {survivor}" in log
    cluster.wait_for(lambda s: s.roles("dm") == {survivor: "Started"}, "dm failed over", node=survivor)
    record("kill -> dm running on the survivor", time.monotonic() - t0)
    cluster.wait_online()
    cluster.wait_for(both_promoted, "st-clone promoted on both nodes again")
    record("kill -> rebooted node back, promoted", time.monotonic() - t0)


def test_a_daemon_crash_gets_its_node_fenced(cluster: Lab) -> None:
    """corosync dies on node2: node1 must not trust node2 any more, so it fences it (our agent reboots it)."""
    since = time.time()
    assert faults.crash_daemon(cluster, "node2", "corosync")
    cluster.wait_for(lambda s: bool(s.fenced("node2", since)), "node2 fenced", node="node1")
    cluster.wait_online()


def test_partition_ends_in_one_fenced_side_and_heals(cluster: Lab) -> None:
    """Two nodes, two_node quorum: both sides may shoot; the supervisor lets only the first shot through."""
    since = time.time()
    faults.partition(cluster, ["node1"], ["node2"])

    def shots(s: ClusterState) -> int:
        return sum(len(s.fenced(n, since)) for n in ("node1", "node2"))

    def one_fenced(s: ClusterState) -> bool:
        return shots(s) >= 1

    cluster.wait_for(one_fenced, "one side fenced")
    survivor = cluster.last_seen_from
    assert survivor is not None
    faults.heal(cluster)
    state = cluster.wait_online(node=survivor)
    assert shots(state) == 1  # exactly one side was shot


def test_slow_link_shapes_the_traffic_between_two_nodes(cluster: Lab) -> None:
    faults.slow(cluster, "node1", "node2", rate="512kbit")
    node1 = cluster.node("node1")
    try:

        def shaped_bytes() -> int | None:
            stats = node1.run(["tc", "-s", "class", "show", "dev", "eth0", "classid", "1:20"]).stdout
            assert "rate 512Kbit" in stats
            sent = int(stats.split("Sent", 1)[1].split()[0])
            return sent if sent > 0 else None  # corosync's own traffic to node2 goes through the slow class

        poll(shaped_bytes, 30, "traffic through the shaped class")
        cluster.wait_online()  # corosync still fine on a slow link
    finally:
        faults.unslow(cluster)
    assert "htb" not in node1.run(["tc", "qdisc", "show", "dev", "eth0"]).stdout


@pytest.mark.parametrize("op", ["stop", "kill"])
def test_a_stopped_node_comes_back_with_an_empty_run(cluster: Lab, op: str) -> None:
    node = cluster.node("node2")
    node.run(["touch", "/run/lab-marker", "/dev/shm/lab-marker"])
    getattr(faults, op)(cluster, node)
    cluster.wait_for(lambda s: "node2" not in s.online(), "node2 offline", node="node1")
    faults.start(cluster, node)
    cluster.wait_online()
    assert node.run(["ls", "/run/lab-marker", "/dev/shm/lab-marker"], check=False).returncode != 0


def syslog_has(node: Node, *patterns: str) -> bool | None:
    """Whether every pattern matches a line of the node's syslog.log (None while not)."""
    text = (node.dir / "syslog.log").read_text()
    return all(re.search(p, text, re.MULTILINE) for p in patterns) or None


def test_every_node_keeps_its_syslog_also_after_a_reboot(cluster: Lab, tmp_path: Path) -> None:
    """Each node's /dev/log is its own: `logger` and syslog(3) (crm-fence-peer.9.sh logs only through logger)
    end up in that node's syslog.log, which collect_logs keeps. node2 was powered off and on by the tests
    above, so its syslog came back with it."""
    for node in cluster.nodes:
        node.run(["test", "-S", "/dev/log"])
        node.run(["logger", "-t", "tandem-lab-check", f"hello from {node.name}"])
        glibc = f"import syslog; syslog.openlog('tandem-lab-py'); syslog.syslog('syslog(3) on {node.name}')"
        node.run(["python3", "-c", glibc])
    for node in cluster.nodes:
        logger = rf" {node.name} user\.notice .* tandem-lab-check: hello from {node.name}$"
        glibc = rf" {node.name} user\.info .* tandem-lab-py: syslog\(3\) on {node.name}$"
        poll(partial(syslog_has, node, logger, glibc), 10, f"{node.name}'s messages in its syslog.log")
        others = [n.name for n in cluster.nodes if n != node]
        assert not any(syslog_has(node, f"hello from {name}") for name in others)
    kept = cluster.collect_logs(tmp_path / "logs")
    assert all("tandem-lab-check" in (kept / n.name / "syslog.log").read_text() for n in cluster.nodes)
