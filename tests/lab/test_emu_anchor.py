# SPDX-License-Identifier: GPL-2.0-or-later
"""The anchor ocf:linbit:drbd (Debian drbd-utils 9.22), unchanged, in a 2-node lab cluster on the emulator.

The emulator is installed into every node at boot (lab.drbd_emu.install.lab_hooks): fake drbdsetup/drbdadm
bind-mounted over /usr/sbin, the lab's drbd.conf over /etc/drbd.conf, the node's emulator kernel (runs
fence-peer/unfence-peer inside the node, so crm-fence-peer.9.sh talks to that node's Pacemaker) and the
/proc/drbd shim in the daemons' environment. Cost: one cluster (~5 s up) and about 20 s of tests on 2 cores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from lab.cluster import Lab, LabConfig, poll
from lab.crm import ClusterState
from lab.drbd_emu import engine
from lab.drbd_emu.devices import detach_loops
from lab.drbd_emu.install import lab_hooks
from lab.drbd_emu.setup import fresh_dir, initial_sync, two_node_conf

from lab import faults

RA = Path("/usr/lib/ocf/resource.d/linbit/drbd")
MINOR = 9240
CONSTRAINT = "drbd-fence-by-handler-r0-ms_drbd_r0"

CIB = """primitive drbd_r0 ocf:linbit:drbd params drbd_resource=r0 \\
    op monitor interval=10s role=Promoted timeout=30s op monitor interval=11s role=Unpromoted timeout=30s
clone ms_drbd_r0 drbd_r0 meta promotable=true promoted-max=1 promoted-node-max=1 clone-max=2 \\
    clone-node-max=1 notify=true
commit
"""


def emu_dir(config: LabConfig) -> Path:
    return Path(f"/tmp/{config.prefix}-drbd-emu")


@pytest.fixture(scope="module")
def lab_config(lab_defaults: LabConfig) -> LabConfig:
    """Emulator state with UpToDate data on both nodes (as after the initial sync), then the hooks."""
    d = emu_dir(lab_defaults)
    fresh_dir(d)
    conf = d / "drbd.conf"
    conf.write_text(
        two_node_conf(
            net=lab_defaults.net,
            minor=MINOR,
            fencing="resource-only",
            handlers={
                "fence-peer": "/usr/lib/drbd/crm-fence-peer.9.sh",
                "unfence-peer": "/usr/lib/drbd/crm-unfence-peer.9.sh",
            },
            comment="lab drbd.conf for the emulator (UG9 drbd-pacemaker: fencing by constraints)",
        )
    )
    initial_sync(d, conf)  # UG9 initial full sync
    assert _data(d, "node2") == _data(d, "node1") is not None
    # a fenced node stays off a while, as a real server does: with an instant reboot the old Primary can be
    # back before the survivor's promotion ran, and Pacemaker then promotes the returning node instead
    config = lab_defaults.with_hooks(**lab_hooks(d, conf))  # type: ignore[arg-type]
    return replace(config, reboot_delay=10.0)


def _data(d: Path, node: str) -> str | None:
    st = engine.Store(d).read()
    md = st.get("meta", {}).get(f"{node}/r0/0", {})
    return f"{md.get('disk')}/{md.get('tag')}" if md.get("disk") == "UpToDate" else None


def one_promoted(state: ClusterState) -> bool:
    return sorted(state.roles("ms_drbd_r0").values()) == ["Promoted", "Unpromoted"]


def drbd_role(lab: Lab, node: str) -> str:
    out = lab.node(node).run(["drbdsetup", "status", "r0", "--json"], check=False).stdout
    return str(json.loads(out)[0]["role"]) if out.strip() else "Down"


def constraint_present(lab: Lab) -> bool:
    return CONSTRAINT in lab.cibadmin("-Q", "-o", "constraints")


def handler_calls(lab: Lab, handler: str) -> list[tuple[str, int]]:
    """(node, exit code) of finished handler runs, from the emulator's log."""
    log = json.loads((emu_dir(lab.config) / "state.json").read_text()).get("handler_log", [])
    return [(e["node"], e["rc"]) for e in log if e["handler"] == handler]


def emu(lab: Lab, *args: str) -> None:
    node = lab.first_live()
    node.run([str(emu_dir(lab.config) / "bin" / "drbd-emu"), *args])


@pytest.fixture(scope="module", autouse=True)
def loops(lab: Lab) -> Iterator[None]:
    """The nodes' loop devices over the shared backing file, detached after the module (autoclear if busy)."""
    yield
    detach_loops(emu_dir(lab.config))


@pytest.mark.skipif(not RA.exists(), reason="drbd-utils not installed (run ./run setup)")
def test_ra_starts_promotes_monitors(cluster: Lab) -> None:
    """ocf:linbit:drbd start/promote/monitor (RA §1.2): Pacemaker promotes one node; DRBD agrees."""
    cluster.crm("configure", input=CIB)
    state = cluster.wait_for(one_promoted, "ms_drbd_r0 promoted on one node", timeout=120)
    roles = state.roles("ms_drbd_r0")
    for node, role in roles.items():
        assert drbd_role(cluster, node) == ("Primary" if role == "Promoted" else "Secondary")
        assert cluster.node(node).run(["test", "-b", f"/dev/drbd{MINOR}"], check=False).returncode == 0


def test_fence_peer_places_and_unfence_removes_constraint(cluster: Lab) -> None:
    """DRBD link lost (emulator cut; the cluster itself stays connected) → the Primary's fence-peer handler,
    crm-fence-peer.9.sh, places its -INFINITY Master constraint (peer reachable: exit 4, §2). Reconnect → the
    peer is UpToDate again → unfence-peer (crm-unfence-peer.9.sh) removes it (DK drbd_should_unfence)."""
    state = cluster.wait_for(one_promoted, "ms_drbd_r0 promoted on one node", timeout=120)
    primary = next(n for n, r in state.roles("ms_drbd_r0").items() if r == "Promoted")
    node = cluster.node(primary)
    node.run([str(emu_dir(cluster.config) / "bin" / "drbd-emu"), "write", "r0"])
    emu(cluster, "cut", "node1", "node2")
    calls = poll(lambda: handler_calls(cluster, "fence-peer") or None, 120, "fence-peer handler done")
    assert calls == [(primary, 4)]
    assert constraint_present(cluster)
    emu(cluster, "heal", "node1", "node2")
    poll(lambda: (not constraint_present(cluster)) or None, 120, "fencing constraint removed")
    assert (primary, 0) in handler_calls(cluster, "unfence-peer")


def test_primary_power_cut_fails_over_and_resyncs_on_return(cluster: Lab) -> None:
    """The Primary's node dies. Its DRBD link drops (the emulator follows the lab network), Pacemaker fences
    it and promotes the survivor; DRBD runs fence-peer inside `primary` (DK drbd_set_role →
    conn_try_outdate_peer) and crm-fence-peer.9.sh places its constraint. When the node returns it resyncs
    from the new Primary (promotion while disconnected made a new data generation) and unfence-peer removes
    the constraint."""
    state = cluster.wait_for(one_promoted, "ms_drbd_r0 promoted on one node", timeout=120)
    old = next(n for n, r in state.roles("ms_drbd_r0").items() if r == "Promoted")
    new = next(n for n in ("node1", "node2") if n != old)
    faults.kill(cluster, old)
    cluster.wait_for(lambda s: s.roles("ms_drbd_r0") == {new: "Promoted"}, f"{new} promoted", timeout=180)
    poll(lambda: drbd_role(cluster, new) == "Primary" or None, 60, f"{new} Primary in DRBD")
    poll(lambda: constraint_present(cluster) or None, 60, "fencing constraint placed by the new Primary")
    poll(lambda: handler_calls(cluster, "fence-peer")[-1][0] == new or None, 60, "fence-peer logged")
    faults.start(cluster, old)
    cluster.wait_for(
        lambda s: s.roles("ms_drbd_r0") == {new: "Promoted", old: "Unpromoted"}, f"{old} back", timeout=180
    )
    poll(lambda: (not constraint_present(cluster)) or None, 120, "fencing constraint removed")
    data = {
        n: json.loads(
            cluster.node(n).run([str(emu_dir(cluster.config) / "bin" / "drbd-emu"), "data", "r0"]).stdout
        )
        for n in ("node1", "node2")
    }
    assert data["node1"]["tag"] == data["node2"]["tag"]


def test_ra_demotes_and_stops(cluster: Lab) -> None:
    """demote and stop (RA §1.2): the resource ends Down on both nodes, /dev/drbdN gone."""
    cluster.crm("resource", "stop", "ms_drbd_r0")
    cluster.wait_for(lambda s: not s.roles("ms_drbd_r0"), "ms_drbd_r0 stopped", timeout=120)
    for n in ("node1", "node2"):
        assert drbd_role(cluster, n) == "Down"
        assert cluster.node(n).run(["test", "-b", f"/dev/drbd{MINOR}"], check=False).returncode != 0
