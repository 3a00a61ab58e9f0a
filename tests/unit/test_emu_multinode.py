# SPDX-License-Identifier: GPL-2.0-or-later
"""DRBD 9 beyond two nodes in the emulator engine: quorum with diskless tiebreakers, the I/O policies when
quorum or data is lost, a diskless Primary's I/O, and 9.2.19's Consistent hold after a Primary loss.

Each test names the kernel rule it reproduces (LINBIT/drbd drbd-9.2 `drbd/drbd_state.c`, 9.2.19, and
../shared/research/drbd9-multinode.md).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from lab.drbd_emu import config, engine

from tests.unit.emu_states import after_initial_sync, resource

ADDRESSES = {"alice": 1, "bob": 2, "charlie": 3, "carol": 3, "dave": 4}


def make_cfg(
    diskful: tuple[str, ...] = ("alice", "bob"),
    clients: tuple[str, ...] = ("charlie",),
    *,
    quorum: str = "majority",
    on_no_quorum: str = "suspend-io",
    on_no_data: str | None = None,
    atp: str = "no",
) -> config.ResourceConfig:
    """A full-mesh resource: `diskful` nodes with a disk, `clients` with `disk none` (UG9 connection-mesh)."""
    nodes = (*diskful, *clients)
    no_data = f" on-no-data-accessible {on_no_data};" if on_no_data else ""
    hosts = "\n".join(
        f"  on {n} {{ node-id {i}; address 10.0.0.{ADDRESSES[n]}:7789;"
        + (" volume 0 { disk none; }" if n in clients else "")
        + " }"
        for i, n in enumerate(nodes)
    )
    text = f"""
resource r0 {{
  net {{ protocol C; fencing dont-care; allow-two-primaries {atp}; }}
  options {{ quorum {quorum}; on-no-quorum {on_no_quorum};{no_data} }}
  volume 0 {{ device minor 7; disk /dev/vg/r0; meta-disk internal; }}
{hosts}
  connection-mesh {{ hosts {" ".join(nodes)}; }}
}}
"""
    return resource(text)


def cluster(cfg: config.ResourceConfig, primary: str | None = None) -> dict[str, Any]:
    """Every node up and connected, the data nodes UpToDate after their initial sync (UG9), optionally
    one Primary."""
    s = after_initial_sync(cfg, stay_primary=False)
    if primary is not None:
        assert engine.primary(s, cfg, primary, "r0", 3600.0) == []
        engine.become_primary(s, primary, "r0")
        engine.settle(s, 3600.0)
    return s


def res(s: dict[str, Any], node: str) -> dict[str, Any]:
    r = engine.res_state(s, node, "r0")
    assert r is not None
    return r


def link(s: dict[str, Any], a: str, b: str, *, cut: bool, t: float = 4000.0) -> None:
    s["links"][engine.link_key(a, b)] = {"cut": cut}
    engine.settle(s, t)


def isolate(s: dict[str, Any], node: str, t: float = 4000.0) -> None:
    for peer in res(s, node)["conns"]:
        link(s, node, peer, cut=True, t=t)


def quorate(s: dict[str, Any]) -> dict[str, bool]:
    return {n: engine.has_quorum(s, n, "r0") for n in s["nodes"]}


def test_a_diskless_tiebreaker_keeps_quorum_on_both_sides_of_a_cut_between_the_data_nodes() -> None:
    """calc_quorum: 2 voters, each side one short, a majority of the diskless nodes connected and quorum
    before → "using tiebreaker logic to keep". The data node that reaches the Primary only through the
    tiebreaker outdates itself (twopc_after_lost_peer), so it can not promote."""
    cfg = make_cfg()
    s = cluster(cfg, primary="alice")
    link(s, "alice", "bob", cut=True)
    assert quorate(s) == {"alice": True, "bob": True, "charlie": True}
    assert res(s, "bob")["disks"]["0"]["state"] == "Outdated"
    with pytest.raises(engine.StateError) as e:
        engine.primary(s, cfg, "bob", "r0", 4000.0)
    assert e.value.exit_code == 17
    engine.write(s, "alice", "r0", "0", 4001.0)
    link(s, "alice", "bob", cut=False, t=4002.0)
    assert res(s, "bob")["conns"]["alice"]["repl"]["0"] == "SyncTarget"  # it resyncs what it missed


def test_the_tiebreaker_is_sticky_a_node_never_regains_quorum_through_a_diskless_node() -> None:
    """UG9 "Using a diskless node as a tiebreaker" and calc_quorum's `device->quorum[NOW]`: alice alone
    loses quorum; connecting to charlie alone does not give it back; connecting to bob does."""
    cfg = make_cfg()
    s = cluster(cfg)
    isolate(s, "alice")
    assert quorate(s) == {"alice": False, "bob": True, "charlie": True}
    link(s, "alice", "charlie", cut=False, t=4001.0)
    assert not engine.has_quorum(s, "alice", "r0")
    link(s, "alice", "bob", cut=False, t=4002.0)
    assert engine.has_quorum(s, "alice", "r0")


def test_a_client_takes_quorum_from_a_quorate_uptodate_peer_and_says_why_not() -> None:
    """__calc_quorum_no_disk: quorate_peers (DK a69243e3); the refusal's kernel line for a node without a
    disk is "no UpToDate peer with quorum", for a data node "<n> of <m> nodes visible"."""
    cfg = make_cfg()
    s = cluster(cfg)
    link(s, "charlie", "alice", cut=True)
    assert engine.has_quorum(s, "charlie", "r0")  # bob has quorum (with alice)
    isolate(s, "bob", t=4001.0)  # now everybody is alone
    assert quorate(s) == {"alice": False, "bob": False, "charlie": False}
    link(s, "bob", "charlie", cut=False, t=4002.0)  # an UpToDate peer, but without quorum
    assert not engine.has_quorum(s, "charlie", "r0")
    with pytest.raises(engine.StateError) as e:
        engine.primary(s, cfg, "charlie", "r0", 4003.0)
    assert (e.value.code, e.value.exit_code, e.value.info) == (-25, 11, "no UpToDate peer with quorum")
    with pytest.raises(engine.StateError) as e:
        engine.primary(s, cfg, "bob", "r0", 4003.0)
    assert e.value.info == "1 of 2 nodes visible, need 2 for quorum"


def test_a_client_without_an_uptodate_peer_is_refused_with_17() -> None:
    """is_valid_state: no data accessible → SS_NO_UP_TO_DATE_DISK, checked before quorum (exit 17)."""
    cfg = make_cfg(quorum="off")
    s = cluster(cfg)
    isolate(s, "charlie")
    with pytest.raises(engine.StateError) as e:
        engine.primary(s, cfg, "charlie", "r0", 4001.0)
    assert (e.value.code, e.value.exit_code) == (-2, 17)


@pytest.mark.parametrize(
    ("on_no_data", "on_no_quorum", "suspended", "error"),
    [
        ("suspend-io", "suspend-io", ["no-data", "quorum"], None),
        (None, "suspend-io", ["quorum"], "IO ERROR: neither local nor remote data"),
        ("suspend-io", "io-error", ["no-data"], "no quorum: I/O error"),
        (None, "io-error", [], "no quorum: I/O error"),
    ],
)
def test_a_diskless_primary_that_loses_every_data_peer(
    on_no_data: str | None, on_no_quorum: str, suspended: list[str], error: str | None
) -> None:
    """A client Primary writes through its UpToDate peers; with none left it is suspended (`no-data`,
    `quorum`, in drbdsetup's order) or fails I/O at once: cached_err_io wins over suspension, and
    on-no-data-accessible defaults to io-error."""
    cfg = make_cfg(on_no_data=on_no_data, on_no_quorum=on_no_quorum)
    s = cluster(cfg, primary="charlie")
    before = engine.meta_for(s, "bob", "r0", "0")["gen"]
    plan = engine.plan_write(s, "charlie", "r0", "0", 4000.0, [1])
    assert (plan["local"], sorted(plan["peers"])) == (False, ["alice", "bob"])
    engine.write(s, "charlie", "r0", "0", 4000.0)
    assert engine.meta_for(s, "alice", "r0", "0")["gen"] > before
    link(s, "charlie", "alice", cut=True)
    assert engine.plan_read(s, "charlie", "r0", "0", 4001.0) == "bob"
    link(s, "charlie", "bob", cut=True, t=4002.0)
    assert res(s, "charlie")["suspended"] == suspended
    with pytest.raises(engine.StateError) as e:
        engine.plan_write(s, "charlie", "r0", "0", 4003.0, [2])
    if error is None:
        assert isinstance(e.value, engine.Suspended)
    else:
        assert not isinstance(e.value, engine.Suspended) and e.value.message == error
    link(s, "charlie", "bob", cut=False, t=4004.0)
    assert res(s, "charlie")["suspended"] == []  # data and quorum (from bob) are back
    engine.plan_write(s, "charlie", "r0", "0", 4005.0, [2])


def test_a_secondary_without_quorum_is_suspended_too() -> None:
    """DK: susp_quorum follows the resource's quorum whatever the role (research §2)."""
    cfg = make_cfg(("alice", "bob", "carol"), ())
    s = cluster(cfg)
    isolate(s, "carol")
    assert res(s, "carol")["suspended"] == ["quorum"] and res(s, "alice")["suspended"] == []


def test_last_man_standing_after_graceful_leaves() -> None:
    """UG9 "Last man standing": peers that left gracefully (known Outdated) leave the voters; a crashed one
    stays a voter."""
    cfg = make_cfg(("alice", "bob", "carol"), ())
    s = cluster(cfg, primary="alice")
    engine.down(s, "carol", "r0", 4000.0)
    engine.down(s, "bob", "r0", 4001.0)
    assert engine.has_quorum(s, "alice", "r0")
    s = cluster(cfg, primary="alice")
    engine.power_loss(s, "carol", 4000.0)
    engine.power_loss(s, "bob", 4001.0)
    assert not engine.has_quorum(s, "alice", "r0") and res(s, "alice")["suspended"] == ["quorum"]


@pytest.mark.parametrize("kernel", ["9.2.12", "9.2.19"])
def test_a_primary_loss_survivor_is_held_at_consistent_on_9_2_19(kernel: str) -> None:
    """9.2.19 ChangeLog "Hold a primary-loss survivor at Consistent until it reconciles with the surviving
    peers" (sanitize_state, maybe_crashed_primary): a crash of the Primary, not a graceful demote."""
    cfg = make_cfg(("alice", "bob", "carol"), ())
    s = cluster(cfg, primary="alice")
    s["kernel"] = kernel
    engine.power_loss(s, "alice", 4000.0)
    held = "Consistent" if kernel == "9.2.19" else "UpToDate"
    assert [res(s, n)["disks"]["0"]["state"] for n in ("bob", "carol")] == [held, held]
    if kernel == "9.2.19":
        with pytest.raises(engine.StateError) as e:
            engine.primary(s, cfg, "bob", "r0", 4000.5)
        assert e.value.exit_code == 17
    engine.settle(s, 4000.0 + engine.RECONCILE_SECONDS)
    assert [res(s, n)["disks"]["0"]["state"] for n in ("bob", "carol")] == ["UpToDate", "UpToDate"]
    assert engine.primary(s, cfg, "bob", "r0", 4001.0 + engine.RECONCILE_SECONDS) == []
    s = cluster(cfg, primary="alice")
    s["kernel"] = "9.2.19"
    engine.secondary(s, "alice", "r0", 4000.0)
    engine.down(s, "alice", "r0", 4000.0)
    assert res(s, "bob")["disks"]["0"]["state"] == "UpToDate"


def test_quorum_all_and_a_number() -> None:
    """calc_quorum_at: `all` needs every voter, a number that many."""
    s = cluster(make_cfg(("alice", "bob", "carol"), (), quorum="all"))
    link(s, "alice", "bob", cut=True)
    assert quorate(s) == {"alice": False, "bob": False, "carol": True}
    s = cluster(make_cfg(("alice", "bob", "carol", "dave"), (), quorum="2"))
    link(s, "alice", "bob", cut=True)
    link(s, "alice", "carol", cut=True)
    link(s, "alice", "dave", cut=True)
    assert quorate(s) == {"alice": False, "bob": True, "carol": True, "dave": True}


NODES_T1 = ("alice", "bob", "charlie")
LINKS = [("alice", "bob"), ("alice", "charlie"), ("bob", "charlie")]


class QuorumMachine(RuleBasedStateMachine):
    """Any cuts, heals, crashes, returns, promotions and writes on 2 data nodes + a diskless tiebreaker
    (quorum majority, no fencing): Primaries that can write are always within one partition, so quorum
    alone prevents a split brain; and a returning data node never claims UpToDate while it lacks writes."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = make_cfg()
        self.s = cluster(self.cfg)
        self.t = 4000.0

    def step(self) -> None:
        self.t += 1.0
        engine.settle(self.s, self.t)

    @rule(pair=st.sampled_from(LINKS), cut=st.booleans())
    def cut_or_heal(self, pair: tuple[str, str], cut: bool) -> None:
        self.s["links"][engine.link_key(*pair)] = {"cut": cut}
        self.step()

    @rule(node=st.sampled_from(NODES_T1))
    def crash(self, node: str) -> None:
        engine.power_loss(self.s, node, self.t)
        self.step()

    @rule(node=st.sampled_from(NODES_T1))
    def back(self, node: str) -> None:
        if engine.res_state(self.s, node, "r0") is None:
            self.s["nodes"].setdefault(node, {})["r0"] = engine.new_resource(self.cfg, node)
            engine.attach(self.s, node, "r0", self.t)
            engine.connect(self.s, self.cfg, node, "r0")
        self.step()

    @rule(node=st.sampled_from(NODES_T1))
    def promote(self, node: str) -> None:
        if engine.res_state(self.s, node, "r0") is None:
            return
        try:
            engine.primary(self.s, self.cfg, node, "r0", self.t)
            engine.become_primary(self.s, node, "r0")
        except engine.StateError:
            pass
        self.step()

    @rule(node=st.sampled_from(NODES_T1))
    def demote(self, node: str) -> None:
        if engine.res_state(self.s, node, "r0") is not None:
            engine.secondary(self.s, node, "r0", self.t)
        self.step()

    @rule(node=st.sampled_from(NODES_T1))
    def write(self, node: str) -> None:
        with contextlib.suppress(engine.StateError):
            engine.write(self.s, node, "r0", "0", self.t)
        self.step()

    @invariant()
    def writers_share_one_partition(self) -> None:
        writers = [
            n
            for n, rs in self.s["nodes"].items()
            if rs["r0"]["role"] == "Primary"
            and engine.io_failure(self.s, n, "r0") is None
            and not rs["r0"]["suspended"]
        ]
        for w in writers:
            assert set(writers) <= engine.reachable(self.s, "r0", w)

    @invariant()
    def no_uptodate_copy_misses_a_write(self) -> None:
        """Two connected UpToDate data nodes not resyncing hold the same generation (LINBIT/drbd#145)."""
        for a, b in (("alice", "bob"),):
            ra, rb = engine.res_state(self.s, a, "r0"), engine.res_state(self.s, b, "r0")
            if ra is None or rb is None or not engine.connected(self.s, "r0", a, b):
                continue
            if ra["disks"]["0"]["state"] == rb["disks"]["0"]["state"] == "UpToDate":
                ma, mb = (engine.meta_for(self.s, n, "r0", "0") for n in (a, b))
                assert ma["tag"] == mb["tag"] and not ma["oos"].get(b) and not mb["oos"].get(a)

    @invariant()
    def both_ends_of_a_connection_share_its_session(self) -> None:
        """The data plane applies a peer's write only on the session of the connection it was sent on
        (replica.py, tandem-19379): both views of an established connection hold that one id."""
        for a, rs in self.s["nodes"].items():
            for b, c in rs["r0"]["conns"].items():
                rb = engine.res_state(self.s, b, "r0")
                if c["state"] == "Connected" and rb is not None and rb["conns"][a]["state"] == "Connected":
                    assert c.get("session") and c["session"] == rb["conns"][a]["session"]


QuorumMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=30, deadline=None)
TestQuorum = QuorumMachine.TestCase


def resync_to(s: dict[str, Any], target: str) -> dict[str, Any]:
    return next(rs for k, rs in s.get("resyncs", {}).items() if k.endswith(f"/{target}"))


def test_a_data_node_cut_from_a_client_primary_catches_up_from_the_other() -> None:
    """The far-away data node is Outdated while the client writes to the other; the receiver's bitmap holds
    what it missed, and once the client reaches it again exactly those blocks resync (never UpToDate with
    writes missing: the LINBIT/drbd#145 class of bug)."""
    cfg = make_cfg()
    s = cluster(cfg, primary="charlie")
    link(s, "charlie", "alice", cut=True)
    assert res(s, "alice")["disks"]["0"]["state"] == "Outdated"
    for block in (5, 9):
        plan = engine.plan_write(s, "charlie", "r0", "0", 4001.0, [block])
        assert plan["peers"] == ["bob"]
        engine.delivered(s, "charlie", "bob", "r0", "0", plan["gen"], plan["tag"])
    assert engine.meta_for(s, "bob", "r0", "0")["oos"] == {"alice": [5, 9]}
    link(s, "charlie", "alice", cut=False, t=4002.0)
    assert res(s, "alice")["disks"]["0"]["state"] == "Inconsistent"
    assert resync_to(s, "alice")["blocks"] == [5, 9]
    engine.settle(s, 4100.0)
    ma, mb = (engine.meta_for(s, n, "r0", "0") for n in ("alice", "bob"))
    assert res(s, "alice")["disks"]["0"]["state"] == "UpToDate" and ma["tag"] == mb["tag"]
    assert not ma["oos"] and not mb["oos"]


def test_a_storage_node_powered_off_under_a_client_primary_resyncs_what_it_missed() -> None:
    """The VM on the client keeps writing to the surviving replica; the returning node resyncs exactly those
    blocks from it."""
    cfg = make_cfg()
    s = cluster(cfg, primary="charlie")
    engine.power_loss(s, "alice", 4000.0)
    assert engine.has_quorum(s, "charlie", "r0") and engine.has_quorum(s, "bob", "r0")  # the tiebreaker
    engine.write(s, "charlie", "r0", "0", 4001.0, count=3)
    s["nodes"]["alice"] = {"r0": engine.new_resource(cfg, "alice")}
    engine.attach(s, "alice", "r0", 4002.0)
    engine.connect(s, cfg, "alice", "r0")
    engine.settle(s, 4002.0)
    assert len(resync_to(s, "alice")["blocks"]) == 3
    engine.settle(s, 4100.0)
    ma, mb = (engine.meta_for(s, n, "r0", "0") for n in ("alice", "bob"))
    assert res(s, "alice")["disks"]["0"]["state"] == "UpToDate" and ma["tag"] == mb["tag"]


def test_three_data_nodes_started_apart_meet_without_a_split_brain() -> None:
    """bob and carol got the same data from alice (the initial sync) and never met; carol is promoted while
    bob reaches it only through alice (bob outdates itself). When they meet, carol's generation is newer:
    bob resyncs from it and is UpToDate, no split brain (DRBD: bob's UUID is in carol's history)."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg)
    link(s, "bob", "carol", cut=True)
    for n in ("alice", "carol"):
        assert engine.primary(s, cfg, n, "r0", 4000.0) == []
        engine.become_primary(s, n, "r0")
        engine.settle(s, 4000.0)
    assert res(s, "bob")["disks"]["0"]["state"] == "Outdated"
    link(s, "bob", "carol", cut=False, t=4001.0)
    engine.settle(s, 4100.0)
    assert {n: res(s, n)["disks"]["0"]["state"] for n in s["nodes"]} == dict.fromkeys(s["nodes"], "UpToDate")
    assert not any("Split-Brain" in line for line in s.get("log", []))


def test_a_primary_whose_disk_failed_keeps_no_bitmap_its_data_peers_do() -> None:
    """A Diskless node has no bitmap (it lives on the disk): writes that a third node misses are recorded
    by the peer that got them, which resyncs them to it; the failed disk's node claims no blocks
    (tandem-16504: its stale bitmap made the checker see newer data on a failed disk)."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="alice")
    engine.fail_disk(s, "alice", "r0", "0", 4000.0)
    engine.settle(s, 4000.0 + engine.FAILED_SECONDS)
    link(s, "alice", "carol", cut=True, t=4001.0)
    plan = engine.plan_write(s, "alice", "r0", "0", 4002.0, [4])
    assert plan["peers"] == ["bob"] and not plan["local"]
    engine.delivered(s, "alice", "bob", "r0", "0", plan["gen"], plan["tag"])
    engine.undelivered(s, "alice", "bob", "r0", "0", [6])  # the link to bob broke under the next one
    assert engine.meta_for(s, "alice", "r0", "0")["oos"] == {}
    assert engine.meta_for(s, "bob", "r0", "0")["oos"] == {"carol": [4]}
    link(s, "alice", "carol", cut=False, t=4003.0)
    assert resync_to(s, "carol")["blocks"] == [4]


def test_create_md_gives_a_replaced_disk_fresh_meta_data_and_a_full_sync() -> None:
    """drbdmeta create-md refuses an attached disk (exit 20, "Device is configured!"); on the new disk that
    replaces a failed one it writes empty meta data, so the attach is Inconsistent and resyncs in full."""
    cfg = make_cfg(("alice", "bob", "carol"), ())
    s = cluster(cfg)
    assert engine.create_md(s, "alice", "r0", ["0"]) == ["0"]
    engine.fail_disk(s, "alice", "r0", "0", 4001.0)
    engine.settle(s, 4001.0 + engine.FAILED_SECONDS)
    md = engine.meta_for(s, "alice", "r0", "0")
    md["oos"] = {"bob": [1]}
    assert engine.create_md(s, "alice", "r0", ["0"]) == []
    assert engine.meta_for(s, "alice", "r0", "0") == {
        "gen": 0,
        "tag": "",
        "synced": {},
        "disk": "Inconsistent",
        "lost": 0,
        "oos": {},
        "history": [],
    }
    del s["faults"]["disk/alice/r0/0"]
    engine.attach(s, "alice", "r0", 4004.0)
    engine.settle(s, 4004.0)
    assert resync_to(s, "alice")["blocks"] is None  # the whole device


def carol_writes_on_and_alice_returns(
    s: dict[str, Any], cfg: config.ResourceConfig, t: float
) -> dict[str, Any]:
    """carol is promoted and writes; alice meets bob and carol again without a split brain: her resync."""
    assert engine.primary(s, cfg, "carol", "r0", t) == []
    engine.become_primary(s, "carol", "r0")
    engine.write(s, "carol", "r0", "0", t + 1)
    for peer in ("bob", "carol"):
        link(s, "alice", peer, cut=False, t=t + 2)
    assert not any(c.get("split_brain") for n in ("alice", "carol") for c in res(s, n)["conns"].values())
    return resync_to(s, "alice")


def test_a_primary_that_lost_quorum_under_a_write_does_not_fork_the_data() -> None:
    """tandem-16806: bob lost, alice (Primary) writes with carol; a last write reaches only alice's disk as
    alice is cut off, so it fails (no quorum) and no new data generation is made (DRBD makes one at the next
    write that may go on). carol, promoted with bob, writes on; when alice returns she is carol's SyncTarget,
    her unacknowledged block overwritten: no split brain."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="alice")
    engine.power_loss(s, "bob", 4000.0)
    engine.write(s, "alice", "r0", "0", 4001.0, count=2)  # one new generation, carol takes it
    plan = engine.plan_write(s, "alice", "r0", "0", 4002.0, [9])
    assert plan["peers"] == ["carol"]
    isolate(s, "alice", t=4003.0)
    assert not engine.has_quorum(s, "alice", "r0")
    engine.undelivered(s, "alice", "carol", "r0", "0", [9])
    engine.secondary(s, "alice", "r0", 4004.0)
    s["nodes"]["bob"] = {"r0": engine.new_resource(cfg, "bob")}
    engine.attach(s, "bob", "r0", 4005.0)
    engine.connect(s, cfg, "bob", "r0")
    engine.settle(s, 4005.0)
    engine.settle(s, 4100.0)
    assert 9 in carol_writes_on_and_alice_returns(s, cfg, 4101.0)["blocks"]


def test_a_replaced_disk_takes_no_older_blocks_and_a_finished_resync_clears_every_bitmap() -> None:
    """tandem-16809: carol's new disk resyncs from alice; bob, back Outdated, meets carol first: he is no
    second SyncSource for her (DRBD resyncs a device from one source at a time, and his blocks are older).
    When bob has resynced from alice, carol's bits for him (writes she passed on) are cleared too."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="alice")
    isolate(s, "bob", t=4000.0)
    engine.write(s, "alice", "r0", "0", 4001.0, count=3)
    assert engine.meta_for(s, "carol", "r0", "0")["oos"]["bob"]
    engine.fail_disk(s, "carol", "r0", "0", 4002.0)
    engine.settle(s, 4002.0 + engine.FAILED_SECONDS)
    del s["faults"]["disk/carol/r0/0"]
    engine.create_md(s, "carol", "r0", ["0"])
    s["resync_kib_s"] = 1024.0  # the full sync takes 64 s
    engine.attach(s, "carol", "r0", 4004.0)
    engine.settle(s, 4004.0)
    assert list(s["resyncs"]) == ["r0/0/alice/carol"]
    res(s, "bob")["disks"]["0"]["state"] = "Outdated"
    link(s, "bob", "carol", cut=False, t=4005.0)
    assert list(s["resyncs"]) == ["r0/0/alice/carol"]  # no bob → carol
    link(s, "bob", "alice", cut=False, t=4006.0)
    engine.settle(s, 4200.0)
    assert not s["resyncs"] and all(
        not engine.meta_for(s, n, "r0", "0")["oos"] for n in ("alice", "bob", "carol")
    )


def test_a_replaced_disk_synced_from_a_newer_node_is_no_split_brain_for_an_older_one() -> None:
    """tandem-16861: bob's disk failed and was replaced; alice (Primary) wrote on, lost power; carol went
    on without her and bob resynced in full from carol. alice, back, meets bob: bob took carol's history
    (DRBD's SyncTarget takes the source's UUIDs), which holds alice's generation, so alice is his
    SyncTarget, not a split brain."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="alice")
    engine.fail_disk(s, "bob", "r0", "0", 4000.0)
    engine.settle(s, 4000.0 + engine.FAILED_SECONDS)
    engine.write(s, "alice", "r0", "0", 4002.0, count=3)
    engine.power_loss(s, "alice", 4003.0)
    assert engine.primary(s, cfg, "carol", "r0", 4004.0) == []
    engine.become_primary(s, "carol", "r0")
    engine.write(s, "carol", "r0", "0", 4005.0, count=2)
    del s["faults"]["disk/bob/r0/0"]
    engine.create_md(s, "bob", "r0", ["0"])
    engine.attach(s, "bob", "r0", 4006.0)
    engine.settle(s, 4006.0)
    engine.settle(s, 4300.0)
    assert res(s, "bob")["disks"]["0"]["state"] == "UpToDate"
    s["nodes"]["alice"] = {"r0": engine.new_resource(cfg, "alice")}
    engine.attach(s, "alice", "r0", 4301.0)
    link(s, "alice", "carol", cut=True, t=4301.0)
    engine.connect(s, cfg, "alice", "r0")
    engine.settle(s, 4302.0)
    assert not res(s, "alice")["conns"]["bob"].get("split_brain")
    assert "r0/0/bob/alice" in s["resyncs"]


def test_a_write_reaches_a_copy_being_resynced_last() -> None:
    """CI on f408083 (three data nodes, partition 2|1): bob resynced from carol while alice wrote; the data
    plane sends a write to its peers in plan order, so if bob got it before carol, carol's resync could
    copy her older block over it. The copies being resynced come last."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="alice")
    s["resync_kib_s"] = 1.0
    link(s, "alice", "bob", cut=True, t=4000.0)
    link(s, "bob", "carol", cut=True, t=4000.0)
    engine.write(s, "alice", "r0", "0", 4001.0, count=2)
    link(s, "bob", "carol", cut=False, t=4002.0)
    assert res(s, "bob")["disks"]["0"]["state"] == "Inconsistent"
    link(s, "alice", "bob", cut=False, t=4003.0)
    assert engine.plan_write(s, "alice", "r0", "0", 4004.0, [5])["peers"] == ["carol", "bob"]


def test_a_second_source_waits_while_the_first_resyncs_the_target() -> None:
    """tandem-17008: alice's replaced disk resyncs in full from carol; bob, back and UpToDate, meets her
    midway. His resync to her waits (PausedSyncS/PausedSyncT, resync-suspended peer/dependency) instead
    of a short one that marked her UpToDate with carol's full sync still under way; once she has it all,
    his waiting resync has nothing left to do and every bitmap is clear."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="bob")
    engine.fail_disk(s, "alice", "r0", "0", 4000.0)
    engine.settle(s, 4000.0 + engine.FAILED_SECONDS)
    engine.write(s, "bob", "r0", "0", 4002.0, count=3)  # bob and carol both keep bits for diskless alice
    engine.secondary(s, "bob", "r0", 4003.0)
    engine.down(s, "bob", "r0", 4003.5)
    assert engine.primary(s, cfg, "carol", "r0", 4004.0) == []
    engine.become_primary(s, "carol", "r0")
    engine.write(s, "carol", "r0", "0", 4005.0, count=2)
    del s["faults"]["disk/alice/r0/0"]
    engine.create_md(s, "alice", "r0", ["0"])
    s["resync_kib_s"] = 1024.0  # the full sync takes 64 s
    engine.attach(s, "alice", "r0", 4006.0)
    engine.settle(s, 4006.0)
    s["nodes"]["bob"] = {"r0": engine.new_resource(cfg, "bob")}
    engine.attach(s, "bob", "r0", 4007.0)
    link(s, "alice", "bob", cut=True, t=4007.0)
    engine.connect(s, cfg, "bob", "r0")
    engine.settle(s, 4008.0)
    engine.settle(s, 4010.0)
    assert res(s, "bob")["disks"]["0"]["state"] == "UpToDate"
    link(s, "alice", "bob", cut=False, t=4011.0)
    engine.settle(s, 4012.0)
    assert res(s, "alice")["disks"]["0"]["state"] == "Inconsistent"
    assert res(s, "alice")["conns"]["bob"]["repl"]["0"] == "PausedSyncT"
    assert engine.resync_suspended(s, "r0", "0", "alice", "bob") == "dependency"
    assert engine.resync_suspended(s, "r0", "0", "bob", "alice") == "peer"
    engine.settle(s, 4100.0)
    engine.settle(s, 4101.0)
    assert res(s, "alice")["disks"]["0"]["state"] == "UpToDate" and not s["resyncs"]
    assert all(not engine.meta_for(s, n, "r0", "0")["oos"] for n in ("alice", "bob", "carol"))


def test_a_waiting_source_with_older_data_is_not_copied_over_the_newer() -> None:
    """The other end of tandem-17008: bob is UpToDate but older (he missed carol's writes on a link of his
    own) when he meets alice, who resyncs from carol. Once she has carol's data the pair is decided again:
    bob becomes her SyncTarget; his older blocks never reach her."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg)
    s["resync_kib_s"] = 1024.0
    engine.fail_disk(s, "alice", "r0", "0", 4000.0)
    engine.settle(s, 4000.0 + engine.FAILED_SECONDS)
    del s["faults"]["disk/alice/r0/0"]
    engine.create_md(s, "alice", "r0", ["0"])
    link(s, "alice", "bob", cut=True, t=4001.0)
    engine.attach(s, "alice", "r0", 4002.0)
    engine.settle(s, 4002.0)
    assert list(s["resyncs"]) == ["r0/0/carol/alice"]
    res(s, "alice")["disks"]["0"]["state"] = "Inconsistent"
    engine._set_tag(engine.meta_for(s, "carol", "r0", "0"), "carol.9.newer")  # she moved on without bob
    engine.meta_for(s, "carol", "r0", "0")["oos"]["bob"] = [7]
    link(s, "alice", "bob", cut=False, t=4003.0)
    assert s["resyncs"]["r0/0/bob/alice"]["waiting"]
    engine.settle(s, 4100.0)
    assert engine.meta_for(s, "alice", "r0", "0")["tag"] == "carol.9.newer"
    assert list(s["resyncs"]) == ["r0/0/alice/bob"]
    assert s["resyncs"]["r0/0/alice/bob"]["blocks"] == [7]  # what bob lacks of carol's, alice now knows
    engine.settle(s, 4101.0)
    assert engine.meta_for(s, "bob", "r0", "0")["tag"] == "carol.9.newer"


def test_a_write_failed_for_quorum_lost_under_it_makes_no_new_generation() -> None:
    """tandem-23005: alice (Primary) was cut off from both peers; her write in flight was undelivered to
    bob first, while carol's link still counted and her quorum held, then to carol, and failed without
    quorum. No write completed apart, so no new generation (DRBD makes its new current UUID at the next
    write that may go on): carol, promoted with bob, writes on, and alice comes back as her SyncTarget,
    not as a split brain."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="alice")
    before = engine.meta_for(s, "alice", "r0", "0")["tag"]
    plan = engine.plan_write(s, "alice", "r0", "0", 4000.0, [9])
    assert plan["peers"] == ["bob", "carol"]
    link(s, "alice", "bob", cut=True, t=4001.0)
    assert engine.has_quorum(s, "alice", "r0")
    engine.undelivered(s, "alice", "bob", "r0", "0", [9])
    link(s, "alice", "carol", cut=True, t=4002.0)
    engine.undelivered(s, "alice", "carol", "r0", "0", [9])
    with pytest.raises(engine.StateError):
        engine.complete_write(s, "alice", "r0", "0", ["bob", "carol"])
    assert engine.meta_for(s, "alice", "r0", "0")["tag"] == before
    engine.secondary(s, "alice", "r0", 4003.0)
    assert 9 in carol_writes_on_and_alice_returns(s, cfg, 4004.0)["blocks"]


def test_a_new_generation_reaches_the_connected_peers_before_its_write() -> None:
    """tandem-17204 (three data nodes, no fencing): alice (Primary) lost bob and wrote on with carol; the
    write that began the new generation never reached carol (her link broke under it), alice lost quorum,
    carol went on with bob. DRBD sends the new current UUID before that write, so carol had alice's
    generation: when they meet, alice's unacknowledged block is resynced from carol, no split brain."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="alice")
    link(s, "alice", "bob", cut=True, t=4000.0)
    plan = engine.plan_write(s, "alice", "r0", "0", 4001.0, [3])
    assert plan["peers"] == ["carol"]
    carol = engine.meta_for(s, "carol", "r0", "0")
    assert (carol["tag"], carol["gen"]) == (plan["tag"], plan["gen"])  # before the data arrives (17721)
    link(s, "alice", "carol", cut=True, t=4002.0)
    engine.undelivered(s, "alice", "carol", "r0", "0", [3])
    engine.secondary(s, "alice", "r0", 4003.0)
    link(s, "bob", "carol", cut=False, t=4004.0)
    assert 3 in carol_writes_on_and_alice_returns(s, cfg, 4005.0)["blocks"]


def test_a_primary_whose_new_disk_is_inconsistent_is_resynced_not_cut_off() -> None:
    """tandem-17403: bob (Primary, vm1's) lost his disk and got a new one while cut off from carol; when
    they met again the emulator dropped the connection ("I shall become SyncTarget, but I am primary!"),
    leaving him Primary on Inconsistent data with no UpToDate peer. DRBD refuses only a Primary whose
    own data is Consistent or better; an Inconsistent one becomes SyncTarget and keeps running."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="bob")
    engine.fail_disk(s, "bob", "r0", "0", 4000.0)
    engine.settle(s, 4000.0 + engine.FAILED_SECONDS)
    link(s, "bob", "carol", cut=True, t=4001.0)
    del s["faults"]["disk/bob/r0/0"]
    engine.create_md(s, "bob", "r0", ["0"])
    s["resync_kib_s"] = 1024.0
    engine.attach(s, "bob", "r0", 4002.0)
    engine.settle(s, 4002.0)
    assert res(s, "bob")["role"] == "Primary" and res(s, "bob")["disks"]["0"]["state"] == "Inconsistent"
    link(s, "bob", "carol", cut=False, t=4003.0)
    assert res(s, "bob")["conns"]["carol"]["state"] == "Connected"
    assert not any("but I am primary" in line for line in s.get("log", []))
    assert "r0/0/carol/bob" in s["resyncs"] or "r0/0/alice/bob" in s["resyncs"]
    plan = engine.plan_write(s, "bob", "r0", "0", 4004.0, [5])
    assert plan["local"] and sorted(plan["peers"]) == ["alice", "carol"]  # his own copy too


def test_a_new_disk_attached_under_a_connected_primary_resyncs_in_full() -> None:
    """tandem-18219: bob (Primary) lost his disk and got a new one while connected; the emulator started
    no resync into a Primary, so he stayed Inconsistent for good. DRBD syncs it (SyncTarget is refused
    only to a Primary with Consistent or better data), and bob stays Primary throughout."""
    cfg = make_cfg(("alice", "bob", "carol"), (), atp="yes")
    s = cluster(cfg, primary="bob")
    engine.fail_disk(s, "bob", "r0", "0", 4000.0)
    engine.settle(s, 4000.0 + engine.FAILED_SECONDS)
    del s["faults"]["disk/bob/r0/0"]
    engine.create_md(s, "bob", "r0", ["0"])
    s["resync_kib_s"] = 1024.0
    engine.attach(s, "bob", "r0", 4002.0)
    engine.settle(s, 4002.0)
    rs = resync_to(s, "bob")
    assert rs["blocks"] is None  # the whole device
    rs["copied_kib"] = rs["total_kib"]  # what the source's data plane copies (replica.py)
    engine.settle(s, 4002.0 + rs["total_kib"] / s["resync_kib_s"] + 1)
    assert res(s, "bob")["role"] == "Primary" and res(s, "bob")["disks"]["0"]["state"] == "UpToDate"
