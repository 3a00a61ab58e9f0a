# SPDX-License-Identifier: GPL-2.0-or-later
"""DRBD's rules as the emulator engine applies them: pure functions over the state document and a clock.

Each test names the DRBD behaviour it reproduces (user's guide, man page, drbd-utils or kernel source).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from lab.drbd_emu import config, engine
from lab.drbd_emu.config import load, load_cached
from lab.drbd_emu.setup import two_node_conf

from tests.unit.emu_states import after_initial_sync, resource

CONF = """
resource r0 {
  net { protocol C; fencing %(fencing)s; allow-two-primaries %(atp)s; }
  options { quorum %(quorum)s; on-no-quorum suspend-io; }
  handlers {
    fence-peer "/usr/lib/drbd/crm-fence-peer.9.sh"; unfence-peer "/usr/lib/drbd/crm-unfence-peer.9.sh";
  }
  volume 0 { device minor 7; disk /dev/vg/r0; meta-disk internal; }
  on alice { node-id 0; address 10.0.0.1:7789; }
  on bob { node-id 1; address 10.0.0.2:7789; }
  on carol { node-id 2; address 10.0.0.3:7789; }
}
"""


def make_cfg(
    nodes: int = 2, fencing: str = "resource-only", atp: str = "no", quorum: str = "off"
) -> config.ResourceConfig:
    text = CONF % {"fencing": fencing, "atp": atp, "quorum": quorum}
    if nodes == 2:
        text = text.replace("  on carol { node-id 2; address 10.0.0.3:7789; }\n", "")
    return resource(text)


def cluster(cfg: config.ResourceConfig, t: float = 0.0) -> dict[str, Any]:
    """All nodes up and connected; alice forced Primary, initial full sync finished (UG9 initial sync)."""
    s = after_initial_sync(cfg, stay_primary=True, t=t)
    s["jobs"].clear()  # the unfence-peer call that ends the initial sync
    return s


def disk(s: dict[str, Any], node: str) -> str:
    r = engine.res_state(s, node, "r0")
    assert r is not None
    return str(r["disks"]["0"]["state"])


def conn(s: dict[str, Any], node: str, peer: str) -> dict[str, Any]:
    r = engine.res_state(s, node, "r0")
    assert r is not None
    c: dict[str, Any] = r["conns"][peer]
    return c


def test_config_parser_reads_hosts_volumes_sections() -> None:
    """drbd.conf(5): `on HOST { node-id; address }`, resource-level `volume N { device minor N; disk; }`."""
    cfg = make_cfg(3)
    assert cfg.host("bob").node_id == 1 and cfg.host("bob").address == "10.0.0.2:7789"
    assert cfg.host("carol").volumes[0].device == "/dev/drbd7" and cfg.fencing == "resource-only"
    assert cfg.opt("handlers", "fence-peer") == "/usr/lib/drbd/crm-fence-peer.9.sh"
    assert "        allow-two-primaries no;" in config.dump(cfg, "alice", "/etc/drbd.conf").splitlines()


def test_fresh_disks_refuse_promotion_with_17() -> None:
    """UG9 initial sync / drbdsetup.c: no UpToDate data → SS_NO_UP_TO_DATE_DISK (-2), exit 17."""
    cfg = make_cfg()
    s = engine.new_state()
    for n in cfg.hosts:
        s["nodes"].setdefault(n, {})["r0"] = engine.new_resource(cfg, n)
        engine.attach(s, n, "r0", 0.0)
    assert disk(s, "alice") == "Inconsistent"
    with pytest.raises(engine.StateError) as e:
        engine.primary(s, cfg, "alice", "r0", 0.0)
    assert (e.value.code, e.value.exit_code) == (-2, 17)


def test_second_primary_refused_without_allow_two_primaries() -> None:
    """drbd.conf(5) allow-two-primaries; SS_TWO_PRIMARIES "Multiple primaries not allowed by config"."""
    cfg = make_cfg()
    s = cluster(cfg)
    with pytest.raises(engine.StateError) as e:
        engine.primary(s, cfg, "bob", "r0", 4000.0)
    assert (e.value.code, e.value.exit_code, e.value.message) == (
        -1,
        11,
        "Multiple primaries not allowed by config",
    )
    s2 = cluster(make_cfg(atp="yes"))
    assert engine.primary(s2, make_cfg(atp="yes"), "bob", "r0", 4000.0) == []


def test_secondary_refused_while_open() -> None:
    """drbd_strings SS_DEVICE_IN_USE: "Device is held open by someone" (the RA's demote loop waits)."""
    cfg = make_cfg()
    s = cluster(cfg)
    r = engine.res_state(s, "alice", "r0")
    assert r is not None
    r["disks"]["0"]["open"] = 1
    with pytest.raises(engine.StateError) as e:
        engine.secondary(s, "alice", "r0", 4000.0)
    assert e.value.code == -12


def test_writes_while_disconnected_resync_with_progress() -> None:
    """UG9 "Resynchronization": blocks written while disconnected are synced after reconnect; the target is
    Inconsistent (SyncTarget) until done, then holds the source's data."""
    cfg = make_cfg()
    s = cluster(cfg)
    s["links"][engine.link_key("alice", "bob")] = {"cut": True}
    engine.settle(s, 4000.0)
    engine.write(s, "alice", "r0", "0", 4000.0, count=1000)
    s["links"][engine.link_key("alice", "bob")] = {"cut": False}
    s["resync_kib_s"] = 1000.0
    engine.settle(s, 4001.0)
    assert conn(s, "alice", "bob")["repl"]["0"] == "SyncSource" and disk(s, "bob") == "Inconsistent"
    engine.settle(s, 4003.0)
    done = engine.resync_done(s, "r0", "0", "alice", "bob")
    assert done is not None and 40 < done < 60
    engine.settle(s, 4006.0)
    assert disk(s, "bob") == "UpToDate"
    assert engine.meta_for(s, "bob", "r0", "0")["tag"] == engine.meta_for(s, "alice", "r0", "0")["tag"]


def test_split_brain_when_both_wrote_while_disconnected() -> None:
    """UG9 "Split brain": both nodes Primary and writing while disconnected → on reconnect the handshake finds
    diverged data, logs "Split-Brain detected, dropping connection!", both sides go StandAlone."""
    cfg = make_cfg()
    s = cluster(cfg)
    s["links"][engine.link_key("alice", "bob")] = {"cut": True}
    engine.settle(s, 4000.0)
    engine.primary(s, cfg, "bob", "r0", 4000.0, force=True)
    engine.become_primary(s, "bob", "r0")
    engine.write(s, "alice", "r0", "0", 4000.0)
    engine.write(s, "bob", "r0", "0", 4000.0)
    s["links"][engine.link_key("alice", "bob")] = {"cut": False}
    engine.settle(s, 4001.0)
    assert (
        conn(s, "alice", "bob")["state"] == "StandAlone" and conn(s, "bob", "alice")["state"] == "StandAlone"
    )
    assert "bob r0: Split-Brain detected, dropping connection!" in s["log"]


def test_graceful_disconnect_outdates_the_secondary() -> None:
    """DRBD 8.4 conn_try_disconnect / DRBD 9 the same: a Secondary leaving a Primary outdates itself, so the
    Primary does not need to fence (no fence-peer job is queued)."""
    cfg = make_cfg()
    s = cluster(cfg)
    s["jobs"].clear()
    engine.disconnect(s, "bob", "r0")
    engine.settle(s, 4000.0)
    assert disk(s, "bob") == "Outdated"
    assert conn(s, "alice", "bob")["peer_disk"] == {"0": "Outdated"}
    assert s["jobs"] == []
    engine.connect(s, cfg, "bob", "r0")
    engine.settle(s, 4001.0)
    assert disk(s, "bob") == "UpToDate"  # same data: Outdated → UpToDate without resync


def test_power_loss_is_not_a_graceful_disconnect() -> None:
    """A node that loses power has no DRBD any more (it comes back from "down"); unlike a graceful disconnect
    its peer's Primary learns nothing about its disk, so it fences (DK conn_try_outdate_peer). The lost node's
    queued helpers never run; its meta data (the disk) stays."""
    cfg = make_cfg()
    s = cluster(cfg)
    engine.queue_handler(s, "bob", "r0", "fence-peer", "alice")
    s["kernels"] = {"alice": 1, "bob": 2}
    engine.power_loss(s, "bob", 4000.0)
    assert engine.res_state(s, "bob", "r0") is None and "bob" not in s["kernels"]
    assert conn(s, "alice", "bob")["state"] == "Connecting"
    assert conn(s, "alice", "bob")["peer_disk"] == {}
    assert [(j["node"], j["handler"], j["peer"]) for j in s["jobs"]] == [("alice", "fence-peer", "bob")]
    assert engine.meta_for(s, "bob", "r0", "0")["disk"] == "UpToDate"


@pytest.mark.parametrize(
    ("rc", "peer_disk", "local", "suspended"),
    [
        (3, "Inconsistent", "UpToDate", []),
        (4, "Outdated", "UpToDate", []),
        (5, "Outdated", "UpToDate", []),
        (6, None, "Outdated", []),
        (7, "Outdated", "UpToDate", []),
        (1, None, "UpToDate", ["fencing"]),
    ],
)
def test_fence_peer_exit_codes(rc: int, peer_disk: str | None, local: str, suspended: list[str]) -> None:
    """DK drbd_nl.c conn_try_outdate_peer, UG84 "fence-peer handler exit codes": 3 peer Inconsistent, 4/5/7
    peer Outdated, 6 outdate myself; anything else is "helper broken", I/O stays frozen (resource-and-stonith
    suspends I/O while the helper runs)."""
    cfg = make_cfg(fencing="resource-and-stonith")
    s = cluster(cfg)
    s["links"][engine.link_key("alice", "bob")] = {"cut": True}
    engine.settle(s, 4000.0)
    assert [j["handler"] for j in s["jobs"] if j["node"] == "alice"] == ["fence-peer"]
    r = engine.res_state(s, "alice", "r0")
    assert r is not None and r["suspended"] == ["fencing"]
    with pytest.raises(engine.StateError):
        engine.write(s, "alice", "r0", "0", 4000.0)  # frozen I/O
    engine.apply_fence_result(s, "alice", "r0", "bob", rc)
    assert conn(s, "alice", "bob")["peer_disk"].get("0") == peer_disk
    assert disk(s, "alice") == local and r["suspended"] == suspended


def test_unfence_peer_after_resync() -> None:
    """DK drbd_state.c drbd_should_unfence: once the peer's disk is UpToDate again after the resync, the
    source calls unfence-peer (UG9 drbd-pacemaker: unfence-peer replaces after-resync-target)."""
    cfg = make_cfg()
    s = cluster(cfg)
    s["links"][engine.link_key("alice", "bob")] = {"cut": True}
    engine.settle(s, 4000.0)
    engine.apply_fence_result(s, "alice", "r0", "bob", 4)
    s["jobs"].clear()
    engine.write(s, "alice", "r0", "0", 4000.0)
    s["links"][engine.link_key("alice", "bob")] = {"cut": False}
    engine.settle(s, 4001.0)
    engine.settle(s, 4100.0)
    assert disk(s, "bob") == "UpToDate"
    assert [(j["node"], j["handler"], j["peer"]) for j in s["jobs"]] == [("alice", "unfence-peer", "bob")]


def test_every_closed_connection_calls_the_disconnected_handler() -> None:
    """DK drbd_receiver.c conn_disconnect: `disconnected` runs on both sides of every connection that
    closes, a lost one (the cut) as a clean one (`disconnect`), besides a Primary's fence-peer."""
    text = CONF % {"fencing": "resource-only", "atp": "no", "quorum": "off"}
    text = text.replace("  handlers {\n", '  handlers {\n    disconnected "/usr/sbin/tandem-disconnected";\n')
    s = cluster(resource(text.replace("  on carol { node-id 2; address 10.0.0.3:7789; }\n", "")))
    s["links"][engine.link_key("alice", "bob")] = {"cut": True}
    engine.settle(s, 4000.0)
    called = sorted((j["node"], j["handler"], j["peer"]) for j in s["jobs"])
    assert called == [
        ("alice", "disconnected", "bob"),
        ("alice", "fence-peer", "bob"),
        ("bob", "disconnected", "alice"),
    ]
    s["jobs"].clear()
    s["links"][engine.link_key("alice", "bob")] = {"cut": False}
    engine.settle(s, 4001.0)
    assert not [j for j in s["jobs"] if j["handler"] == "disconnected"]  # none for a connection back
    s["jobs"].clear()
    engine.disconnect(s, "bob", "r0")
    engine.settle(s, 4002.0)
    assert sorted((j["node"], j["handler"]) for j in s["jobs"]) == [
        ("alice", "disconnected"),
        ("bob", "disconnected"),
    ]


def test_quorum_majority_three_nodes() -> None:
    """UG9 "Quorum": with `quorum majority` a node alone out of three loses quorum; a Primary without quorum
    suspends I/O (on-no-quorum suspend-io) and promotion fails with SS_NO_QUORUM."""
    cfg = make_cfg(3, fencing="dont-care", quorum="majority")
    s = cluster(cfg)
    for peer in ("bob", "carol"):
        s["links"][engine.link_key("alice", peer)] = {"cut": True}
    engine.settle(s, 4000.0)
    assert not engine.has_quorum(s, "alice", "r0") and engine.has_quorum(s, "bob", "r0")
    r = engine.res_state(s, "alice", "r0")
    assert r is not None and r["suspended"] == ["quorum"]
    engine.secondary(s, "alice", "r0", 4000.0)
    with pytest.raises(engine.StateError) as e:
        engine.primary(s, cfg, "alice", "r0", 4000.0)
    assert (e.value.code, e.value.message) == (-25, "No quorum")
    assert engine.primary(s, cfg, "carol", "r0", 4000.0) == []


def test_disk_failure_goes_failed_then_diskless() -> None:
    """UG9 "Disk error handling" (on-io-error detach): the disk shows Failed, then Diskless once detached."""
    cfg = make_cfg()
    s = cluster(cfg)
    engine.fail_disk(s, "bob", "r0", "0", 4000.0)
    assert disk(s, "bob") == "Failed"
    engine.settle(s, 4000.0 + engine.FAILED_SECONDS)
    assert disk(s, "bob") == "Diskless"
    assert conn(s, "alice", "bob")["peer_disk"]["0"] == "Diskless"


def test_diskless_primary_writes_through_its_peer() -> None:
    """UG9 "Disk error handling": after its disk detached, a Primary serves I/O from the peer's disk; the
    writes land on the peer (the data generation there grows)."""
    cfg = make_cfg()
    s = cluster(cfg)
    engine.fail_disk(s, "alice", "r0", "0", 4000.0)
    engine.settle(s, 4000.0 + engine.FAILED_SECONDS)
    assert disk(s, "alice") == "Diskless"
    before = engine.meta_for(s, "bob", "r0", "0")["gen"]
    out = engine.write(s, "alice", "r0", "0", 4002.0, count=2)
    assert engine.meta_for(s, "bob", "r0", "0")["gen"] == before + 2 == out["gen"]
    s["links"][engine.link_key("alice", "bob")] = {"cut": True}
    with pytest.raises(engine.StateError):
        engine.write(s, "alice", "r0", "0", 4003.0)  # no disk, no peer: I/O error


class RoleMachine(RuleBasedStateMachine):
    """Random promote/demote/cut/heal/write sequences never yield two connected Primaries without
    allow-two-primaries, and a Primary always has UpToDate data (drbd.conf(5), drbdsetup(8) primary)."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = CFG
        self.s = cluster(self.cfg)
        self.t = 4000.0

    @rule(node=st.sampled_from(["alice", "bob"]))
    def promote(self, node: str) -> None:
        try:
            if engine.primary(self.s, self.cfg, node, "r0", self.t) == []:
                engine.become_primary(self.s, node, "r0")
        except engine.StateError as e:
            assert e.exit_code in (11, 17)

    @rule(node=st.sampled_from(["alice", "bob"]))
    def demote(self, node: str) -> None:
        engine.secondary(self.s, node, "r0", self.t)

    @rule(cut=st.booleans())
    def link(self, cut: bool) -> None:
        self.s["links"][engine.link_key("alice", "bob")] = {"cut": cut}
        self.t += 1
        engine.settle(self.s, self.t)

    @rule(node=st.sampled_from(["alice", "bob"]))
    def write(self, node: str) -> None:
        with contextlib.suppress(engine.StateError):
            engine.write(self.s, node, "r0", "0", self.t)

    @rule()
    def wait(self) -> None:
        self.t += 100
        engine.settle(self.s, self.t)

    @invariant()
    def no_two_connected_primaries(self) -> None:
        roles = {n: engine.res_state(self.s, n, "r0")["role"] for n in ("alice", "bob")}  # type: ignore[index]
        if engine.connected(self.s, "r0", "alice", "bob"):
            assert list(roles.values()).count("Primary") < 2

    @invariant()
    def primary_has_up_to_date_data(self) -> None:
        for n in ("alice", "bob"):
            r = engine.res_state(self.s, n, "r0")
            assert r is not None
            if r["role"] == "Primary":
                assert r["disks"]["0"]["state"] == "UpToDate"


CFG = make_cfg(fencing="dont-care")
RoleMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestRoles = RoleMachine.TestCase


# ---------------------------------------------------------------- the data plane's bookkeeping


def cut(s: dict[str, Any], t: float, *, heal: bool = False) -> None:
    s["links"][engine.link_key("alice", "bob")] = {"cut": not heal}
    engine.settle(s, t)


def test_connected_writes_go_to_the_peer_and_keep_one_generation() -> None:
    """Protocol C: a connected peer with a disk is a target of every write; nothing is out of sync and both
    copies share the data generation (no new current UUID while nothing diverges)."""
    s = cluster(make_cfg())
    tag = engine.meta_for(s, "alice", "r0", "0")["tag"]
    plan = engine.plan_write(s, "alice", "r0", "0", 4000.0, [1, 2])
    assert plan["peers"] == ["bob"] and plan["local"] and plan["tag"] == tag
    engine.delivered(s, "alice", "bob", "r0", "0", plan["gen"], plan["tag"])
    alice, bob = (engine.meta_for(s, n, "r0", "0") for n in ("alice", "bob"))
    assert alice["oos"] == {} and bob["gen"] == alice["gen"] and alice["synced"]["bob"] == tag


def test_writes_while_apart_are_out_of_sync_and_resync_exactly_those_blocks() -> None:
    """DRBD's bitmap: blocks written while the peer is away are marked for it; on reconnect exactly those
    blocks are resynced, from the writer (SyncSource) to the peer (SyncTarget)."""
    s = cluster(make_cfg())
    cut(s, 4000.0)
    for blocks in ([5], [9, 10], [5]):
        assert engine.plan_write(s, "alice", "r0", "0", 4001.0, blocks)["peers"] == []
    assert engine.meta_for(s, "alice", "r0", "0")["oos"] == {"bob": [5, 9, 10]}
    cut(s, 4002.0, heal=True)
    rs = s["resyncs"]["r0/0/alice/bob"]
    assert rs["blocks"] == [5, 9, 10] and rs["total_kib"] == 3 * engine.KIB_PER_WRITE
    engine.settle(s, 4100.0)
    assert disk(s, "bob") == "UpToDate" and engine.meta_for(s, "alice", "r0", "0")["oos"] == {}


def test_a_write_that_never_arrived_is_resynced() -> None:
    """A replicated write whose connection broke before the peer had it: out of sync for that peer."""
    s = cluster(make_cfg())
    plan = engine.plan_write(s, "alice", "r0", "0", 4000.0, [7])
    cut(s, 4001.0)
    engine.undelivered(s, "alice", "bob", "r0", "0", [7])
    cut(s, 4002.0, heal=True)
    assert plan["peers"] == ["bob"] and s["resyncs"]["r0/0/alice/bob"]["blocks"] == [7]


def test_a_crashed_primarys_last_writes_are_resynced_from_it_or_overwritten() -> None:
    """The activity log (DRBD's AL): a Primary that lost power may have written blocks its peer never got.
    If the peer stayed Secondary the crashed Primary resyncs them to it; if the peer was promoted and wrote,
    the peer is the source and those blocks are overwritten (they were never acknowledged)."""
    for promoted in (False, True):
        s = cluster(make_cfg())
        engine.plan_write(s, "alice", "r0", "0", 4000.0, [3])  # in flight when the power goes
        engine.power_loss(s, "alice", 4001.0)
        if promoted:
            cfg = make_cfg()
            assert engine.primary(s, cfg, "bob", "r0", 4002.0, force=True) == []
            engine.become_primary(s, "bob", "r0")
            engine.plan_write(s, "bob", "r0", "0", 4003.0, [8])
        cfg = make_cfg()
        s["nodes"].setdefault("alice", {})["r0"] = engine.new_resource(cfg, "alice")
        engine.attach(s, "alice", "r0", 4004.0)
        engine.connect(s, cfg, "alice", "r0")
        engine.settle(s, 4004.0)
        (key,) = s["resyncs"]
        assert key == ("r0/0/bob/alice" if promoted else "r0/0/alice/bob")
        assert s["resyncs"][key]["blocks"] == ([3, 8] if promoted else [3])


def test_lost_counts_only_the_discarded_blocks_of_the_target() -> None:
    """After a split brain, `connect --discard-my-data` overwrites the victim's own writes (lost); a node
    that never wrote while apart loses nothing when it resyncs."""
    s = cluster(make_cfg())
    cut(s, 4000.0)
    engine.plan_write(s, "alice", "r0", "0", 4001.0, [1, 2])
    cut(s, 4002.0, heal=True)
    engine.settle(s, 4100.0)
    assert engine.meta_for(s, "bob", "r0", "0")["lost"] == 0


def test_a_primary_killed_while_its_io_was_frozen_never_diverged() -> None:
    """Dual primary with resource-and-stonith: the link breaks under a write on bob; both freeze and call
    fence-peer; alice's STONITH kills bob. bob's write was never acknowledged and bob never resumed, so it
    made no new current UUID: when it returns it is alice's SyncTarget (its unacknowledged block resynced
    from alice), not a split brain. alice, resumed, is a new generation even before it writes again."""
    cfg = make_cfg(fencing="resource-and-stonith", atp="yes")
    s = cluster(cfg)
    assert engine.primary(s, cfg, "bob", "r0", 4000.0) == []
    engine.become_primary(s, "bob", "r0")
    plan = engine.plan_write(s, "bob", "r0", "0", 4000.0, [6])
    cut(s, 4001.0)
    engine.undelivered(s, "bob", "alice", "r0", "0", [6])
    assert sorted(j["node"] for j in s["jobs"] if j["handler"] == "fence-peer") == ["alice", "bob"]
    bob_tag = engine.meta_for(s, "bob", "r0", "0")["tag"]
    assert plan["peers"] == ["alice"] and bob_tag == plan["tag"]  # frozen: no new generation yet
    engine.power_loss(s, "bob", 4002.0)
    alice_tag = engine.meta_for(s, "alice", "r0", "0")["tag"]
    engine.apply_fence_result(s, "alice", "r0", "bob", 7)
    assert engine.meta_for(s, "alice", "r0", "0")["tag"] != alice_tag
    s["nodes"].setdefault("bob", {})["r0"] = engine.new_resource(cfg, "bob")
    engine.attach(s, "bob", "r0", 4004.0)
    engine.connect(s, cfg, "bob", "r0")
    cut(s, 4003.0, heal=True)
    assert not conn(s, "alice", "bob").get("split_brain") and conn(s, "alice", "bob")["state"] == "Connected"
    assert s["resyncs"]["r0/0/alice/bob"]["blocks"] == [6]


def test_a_write_completed_apart_without_frozen_io_is_a_new_generation() -> None:
    """Without resource-and-stonith nothing freezes I/O: a write the peer never got, once it completes,
    makes the writer's data a new generation, so two nodes that both wrote apart meet as a split brain."""
    s = cluster(make_cfg())
    before = engine.meta_for(s, "alice", "r0", "0")["tag"]
    engine.plan_write(s, "alice", "r0", "0", 4000.0, [7])
    cut(s, 4001.0)
    engine.undelivered(s, "alice", "bob", "r0", "0", [7])
    assert engine.meta_for(s, "alice", "r0", "0")["tag"] == before  # not before the write's fate is known
    engine.complete_write(s, "alice", "r0", "0", ["bob"])
    assert engine.meta_for(s, "alice", "r0", "0")["tag"] != before


def _reboot(s: dict[str, Any], cfg: config.ResourceConfig, node: str, t: float) -> None:
    engine.power_loss(s, node, t)
    s["nodes"].setdefault(node, {})["r0"] = engine.new_resource(cfg, node)
    engine.attach(s, node, "r0", t)


def test_uptodate_data_attaches_consistent_while_a_peer_may_be_newer() -> None:
    """DK disk_state_from_md / may_be_up_to_date: with fencing, data last UpToDate comes back Consistent
    unless the meta data knows every peer Outdated; connecting settles it (same data: UpToDate). Without
    fencing, or after fence-peer outdated the peer, it comes back UpToDate."""
    cfg = make_cfg(fencing="resource-only")
    s = cluster(cfg)
    _reboot(s, cfg, "bob", 4000.0)
    assert disk(s, "bob") == "Consistent"
    engine.connect(s, cfg, "bob", "r0")
    engine.settle(s, 4001.0)
    assert disk(s, "bob") == "UpToDate" and s.get("resyncs", {}) == {}
    s["links"][engine.link_key("alice", "bob")] = {"cut": True}
    engine.settle(s, 4002.0)
    engine.apply_fence_result(s, "alice", "r0", "bob", 4)
    _reboot(s, cfg, "alice", 4003.0)
    assert disk(s, "alice") == "UpToDate"  # bob is known Outdated
    plain = make_cfg(fencing="dont-care")
    s = cluster(plain)
    _reboot(s, plain, "bob", 4000.0)
    assert disk(s, "bob") == "UpToDate"


def test_a_disk_attached_beside_a_consistent_peer_is_resynced_from_it() -> None:
    """tandem-19400: alice's disk failed; bob, rebooted, came back Consistent (alice not known Outdated)
    and stays so beside a Diskless alice. The replacement disk attached while connected goes through the
    handshake: bob's data is the newest, UpToDate, and resyncs alice (DK: attach exchanges the UUIDs)."""
    cfg = make_cfg(fencing="resource-only")
    s = cluster(cfg)
    engine.res_state(s, "alice", "r0")["disks"]["0"]["state"] = "Diskless"  # type: ignore[index]
    _reboot(s, cfg, "bob", 4000.0)
    engine.connect(s, cfg, "bob", "r0")
    engine.settle(s, 4001.0)
    assert conn(s, "alice", "bob")["state"] == "Connected" and disk(s, "bob") == "Consistent"
    engine.create_md(s, "alice", "r0", ["0"])
    engine.attach(s, "alice", "r0", 4002.0)
    engine.settle(s, 4002.0)
    assert disk(s, "bob") == "UpToDate" and list(s["resyncs"]) == ["r0/0/bob/alice"]


def test_consistent_data_is_promoted_only_after_fence_peer_outdated_the_peer() -> None:
    """DK drbd_set_role: promoting Consistent data asks fence-peer to outdate the unknown peers first; once
    it has, the data is UpToDate and the promotion goes on."""
    cfg = make_cfg(fencing="resource-only")
    s = cluster(cfg)
    _reboot(s, cfg, "bob", 4000.0)
    _reboot(s, cfg, "alice", 4001.0)
    assert disk(s, "alice") == "Consistent"
    assert engine.primary(s, cfg, "alice", "r0", 4002.0) == ["bob"]
    engine.connect(s, cfg, "alice", "r0")
    engine.settle(s, 4003.0)
    conn(s, "alice", "bob")["peer_disk"] = {"0": "DUnknown"}
    engine.apply_fence_result(s, "alice", "r0", "bob", 7)
    assert engine.primary(s, cfg, "alice", "r0", 4004.0) == []
    assert disk(s, "alice") == "UpToDate"


def test_a_parsed_configuration_is_reused_until_one_of_its_files_changes(tmp_path: Path) -> None:
    """A fake tool call parses the configuration once per change, not once per call (and per resource)."""
    (tmp_path / "d").mkdir()
    for i in range(3):
        (tmp_path / "d" / f"r{i}.res").write_text(two_node_conf(net="10.0.0", minor=10 + i, res=f"r{i}"))
    conf = tmp_path / "drbd.conf"
    conf.write_text(f'include "{tmp_path}/d/*.res";\n')
    cache = tmp_path / "cache"
    assert load_cached(conf, cache) == load(conf) and list(cache.iterdir())
    assert load_cached(conf, cache) == load(conf)  # from the cache
    (tmp_path / "d" / "r1.res").write_text(two_node_conf(net="10.0.0", minor=21, res="r1", dual=True))
    assert load_cached(conf, cache)["r1"].allow_two_primaries  # an included file changed: parsed again
    (tmp_path / "d" / "r3.res").write_text(two_node_conf(net="10.0.0", minor=13, res="r3"))
    assert set(load_cached(conf, cache)) == {"r0", "r1", "r2", "r3"}  # a file more
    (tmp_path / "d" / "r3.res").unlink()
    assert set(load_cached(conf, cache)) == {"r0", "r1", "r2"}


def test_an_old_unchanged_configuration_is_trusted_by_its_files_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files not written close to the cache's writing are compared by inode, size and ctime alone (what
    keeps a call flat in the number of resources); any write changes the ctime, so it is seen."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "r0.res").write_text(two_node_conf(net="10.0.0", minor=10, res="r0"))
    conf = tmp_path / "drbd.conf"
    conf.write_text(f'include "{tmp_path}/d/*.res";\n')
    cache = tmp_path / "cache"
    monkeypatch.setattr(config, "RACY_NS", -(10**18))  # as if every file were old
    assert not load_cached(conf, cache)["r0"].allow_two_primaries

    def unread(names: list[str]) -> str:
        raise AssertionError(f"read {names} although their stat was unchanged")

    monkeypatch.setattr(config, "_digest", unread)
    assert set(load_cached(conf, cache)) == {"r0"}
    monkeypatch.undo()
    monkeypatch.setattr(config, "RACY_NS", -(10**18))
    time.sleep(0.02)  # past the filesystem's timestamp tick
    before = (tmp_path / "d" / "r0.res").stat()
    (tmp_path / "d" / "r0.res").write_text(two_node_conf(net="10.0.0", minor=11, res="r0"))
    after = (tmp_path / "d" / "r0.res").stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)  # only the ctime tells
    assert load_cached(conf, cache)["r0"].host("node1").volumes[0].minor == 11


@pytest.mark.parametrize("pattern", ["d/*.res", "d/r?.res", "d/.*", "d/r0.res", "d/none", "*/*.res", "x/*"])
def test_include_patterns_expand_as_glob_does(tmp_path: Path, pattern: str) -> None:
    import glob

    from lab.drbd_emu.config import _expand

    (tmp_path / "d").mkdir()
    for name in ("r0.res", "r1.res", ".hidden.res", "r10.res", "notes.txt"):
        (tmp_path / "d" / name).write_text("")
    assert _expand(f"{tmp_path}/{pattern}") == sorted(glob.glob(f"{tmp_path}/{pattern}"))


def test_frozen_io_resumes_when_the_connection_is_back_even_after_a_failed_fence_peer() -> None:
    """DK after_state_ch, "case2: the connection was established again": a failed fence-peer leaves I/O
    frozen until the peer is connected again; then the held I/O goes on, with no new data generation."""
    cfg = make_cfg(fencing="resource-and-stonith")
    s = cluster(cfg)
    cut(s, 4000.0)
    engine.apply_fence_result(s, "alice", "r0", "bob", 1)  # the handler broke: frozen
    r = engine.res_state(s, "alice", "r0")
    assert r is not None and r["suspended"] == ["fencing"]
    tag = engine.meta_for(s, "alice", "r0", "0")["tag"]
    cut(s, 4001.0, heal=True)
    assert r["suspended"] == [] and engine.meta_for(s, "alice", "r0", "0")["tag"] == tag


def test_nodes_writing_the_configuration_cache_at_once_all_get_their_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every node's probe parses drbd.conf at the same moment, with the same PID in its own PID namespace:
    a second writer finishing between the first one's write and rename must not fail the first call (CI on
    069242f: a probe's drbdadm dump exited 10 on the vanished temporary file), nor may an unwritable cache."""
    conf = tmp_path / "drbd.conf"
    conf.write_text(two_node_conf(net="10.0.0", minor=10))
    cache = tmp_path / "cache"
    monkeypatch.setattr(os, "getpid", lambda: 150)
    replace = os.replace
    other_node_wrote: list[bool] = []

    def other_node_first(src: str, dst: str) -> None:
        if not other_node_wrote:
            other_node_wrote.append(True)
            assert set(load_cached(conf, cache)) == {"r0"}  # the other node's call, all of it
        replace(src, dst)

    monkeypatch.setattr(os, "replace", other_node_first)
    assert set(load_cached(conf, cache)) == {"r0"} and other_node_wrote
    assert [p.name for p in cache.iterdir() if p.suffix == ".tmp"] == []
    monkeypatch.undo()
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert set(load_cached(conf, not_a_dir)) == {"r0"}


def test_a_dropped_connection_is_logged_with_its_cause_for_the_nodes_kernel_to_print() -> None:
    """A lost connection says why in the node's kernel log (drbd-emu.log), as DRBD's kernel log does: a
    campaign run that loses quorum must show which link went and how."""
    s = cluster(make_cfg())
    printed = s.get("log_n", 0)
    s["links"][engine.link_key("alice", "bob")] = {"cut": True}
    engine.settle(s, 5000.0)
    lines, printed = engine.new_log_lines(s, "alice", printed)
    assert lines == ["alice r0: conn( Connected -> Connecting ) bob: link cut"]
    assert engine.new_log_lines(s, "alice", printed) == ([], printed)
    s["links"].clear()
    engine.settle(s, 5001.0)
    s["net"] = "probe"
    s["reach"] = {"r0/alice>bob": 5001.5, "r0/bob>alice": 4990.0}
    engine.settle(s, 5002.0)
    lines, _ = engine.new_log_lines(s, "bob", printed)
    why = "PingAck did not arrive in time (bob>alice unanswered for 12.0s)"
    assert lines == [f"bob r0: conn( Connected -> Connecting ) alice: {why}"]
