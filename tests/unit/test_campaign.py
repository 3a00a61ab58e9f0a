# SPDX-License-Identifier: GPL-2.0-or-later
"""The fault campaign's pure parts: schedules, the checkers (each with a control history it must flag and a
healthy one it must pass), the parsers that build the history, and the report's counting."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lab.campaign import checkers, record, report, runner
from lab.campaign.checkers import Boot, DrbdView, History, Injection, Sample
from lab.campaign.schedule import KINDS, RISKIEST, WINDOW, Schedule, generate, run_seed, validate
from lab.timeline import Event

from tests.conftest import TOP

NODES = ("node1", "node2")
ALL = frozenset(NODES)


def view(
    node: str, role: str = "Primary", disk: str = "UpToDate", peer_disk: str = "UpToDate", **kw: object
) -> DrbdView:
    peer = "node2" if node == "node1" else "node1"
    connected = kw.get("connected", frozenset({peer}))
    assert isinstance(connected, frozenset)
    return DrbdView(node, role, disk, connected, ((peer, peer_disk),), bool(kw.get("split_brain", False)))


def good(t: float, qemu: tuple[str, ...] = ("node1",)) -> Sample:
    return Sample(t, ALL, qemu, (view("node1"), view("node2")), None)


def history(samples: list[Sample], **kw: object) -> History:
    base = History(
        nodes=NODES,
        samples=tuple(samples),
        injections=(),
        actions=tuple(s.t for s in samples),
        migrations=(),
        fenced=(),
        boots=(),
        healed_at=samples[0].t,
        end=samples[-1].t,
        reboot_delay=15.0,
        failed_actions=(),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def names(h: History) -> list[str]:
    return [v.checker for v in checkers.check(h)]


HEALTHY = history([good(float(t)) for t in range(0, 60)])


def test_settling_ends_only_on_a_goal_sample_begun_after_the_heal() -> None:
    """tandem-17855: QEMU killed just before the heal; the last sample, begun before the kill, still showed
    the goal, the run was judged 3 s later and its L1 was the runner's."""
    before, after = good(99.9), good(100.0)
    assert not checkers.settled([before], NODES, since=100.0)
    assert checkers.settled([before, after], NODES, since=100.0)
    assert not checkers.settled([after, good(100.5, qemu=())], NODES, since=100.0)
    assert not checkers.settled([], NODES, since=100.0)


# ---------------------------------------------------------------- schedules


def test_a_seed_gives_the_same_schedule_and_seeds_differ() -> None:
    kinds = tuple(KINDS)
    assert generate(7, kinds) == generate(7, kinds)
    assert len({generate(s, kinds).events for s in range(20)}) == 20


@pytest.mark.parametrize("seed", range(50))
def test_schedules_have_2_to_6_events_of_the_given_kinds_in_the_window(seed: int) -> None:
    s = generate(seed, RISKIEST)
    assert 2 <= len(s.events) <= 6
    assert all(e.kind in RISKIEST and 0 <= e.at <= WINDOW for e in s.events)
    assert all((e.role in KINDS[e.kind].targets) if KINDS[e.kind].targets else e.role == "" for e in s.events)
    assert [e.at for e in s.events] == sorted(e.at for e in s.events)


def test_a_quarter_of_the_faults_hit_inside_a_migration_and_are_counted_apart() -> None:
    events = [e for seed in range(200) for e in generate(seed, tuple(KINDS)).events]
    inside = [e for e in events if e.during]
    assert {e.during for e in inside} == {"migrate_to", "migrate_from"}
    assert not any(e.kind in ("move", "clear") for e in inside)
    assert 0.15 < len(inside) / len(events) < 0.3
    e = inside[0]
    assert e.label == f"{e.kind}@{e.during}" and Schedule(1, (e,)).kinds() == (e.label,)


def test_steps_undo_every_lasting_fault_after_its_injection() -> None:
    s = generate(3, ("partition", "repl-cut", "power-cut"))
    steps = s.steps()
    lasting = [e for e in s.events if e.hold]
    assert len(steps) == len(s.events) + len(lasting)
    for e in lasting:
        inject = next(i for i, st in enumerate(steps) if st.event == e and not st.undo)
        undo = next(i for i, st in enumerate(steps) if st.event == e and st.undo)
        assert inject < undo and steps[undo].at == pytest.approx(e.at + e.hold, abs=0.05)
    assert [st.at for st in steps] == sorted(st.at for st in steps)


def test_overlap_is_seen_and_run_seeds_follow_the_campaign_seed() -> None:
    overlapping = [generate(s, ("partition", "power-cut", "move")).overlapping() for s in range(30)]
    assert any(overlapping) and not all(overlapping)
    assert [run_seed(100, i) for i in range(3)] == [100, 101, 102]


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="nope"):
        validate(("power-cut", "nope"))
    with pytest.raises(ValueError):
        validate(())


# ---------------------------------------------------------------- checkers: controls


def test_a_healthy_history_passes_every_checker() -> None:
    assert checkers.check(HEALTHY) == []
    assert checkers.recovery(HEALTHY) == 0.0


def test_s1_flags_a_second_qemu_outside_migration_windows_only() -> None:
    samples = [good(float(t), ("node1", "node2") if 10 <= t < 13 else ("node1",)) for t in range(60)]
    assert names(history(samples)) == ["S1"]
    assert names(history(samples, migrations=((9.0, 12.0),))) == []


def test_s2_flags_a_boot_that_found_less_than_was_acknowledged() -> None:
    assert names(history(HEALTHY.samples, boots=(Boot(5.0, 42, 42),))) == []  # type: ignore[arg-type]
    assert names(history(list(HEALTHY.samples), boots=(Boot(5.0, 42, 40),))) == ["S2"]
    assert names(history(list(HEALTHY.samples), boots=(Boot(5.0, 42, None),))) == ["S2"]


def test_s2_flags_a_copy_whose_journal_misses_acknowledged_writes() -> None:
    """Sector 0 current (42) but writes 30-35 never reached that copy: LINBIT/drbd#145's class of bug."""
    lacks = "the disk read on node1 at the end lacks 6 acknowledged write(s) ..."
    h = history(list(HEALTHY.samples), boots=(Boot(5.0, 42, 42, "read on node1 at the end", lacks),))
    assert [(v.checker, v.detail) for v in checkers.check(h)] == [("S2", lacks)]
    assert checkers.history_from_json(checkers.history_to_json(h)).boots == h.boots  # kept and rejudged


def test_s3_flags_a_promotion_of_outdated_data() -> None:
    samples = list(HEALTHY.samples)
    outdated = view("node2", role="Secondary", disk="Outdated", connected=frozenset())
    samples[10] = Sample(10.0, ALL, ("node1",), (view("node1", connected=frozenset()), outdated), None)
    promoted = replace(outdated, role="Primary")
    samples[11] = Sample(11.0, ALL, ("node1",), (view("node1", connected=frozenset()), promoted), None)
    found = checkers.s3_stale_primary(history(samples))
    assert [v.detail for v in found] == ["node2 promoted with Outdated data"]


def test_s3_accepts_a_disk_that_failed_as_the_promotion_ran() -> None:
    """tandem-16317: promoted on UpToDate data, the disk failed a moment later, the samples a step apart
    show Secondary/UpToDate, then Primary/Failed: its I/O goes to the connected UpToDate peer. Alone it
    would be a stale Primary."""
    samples = list(HEALTHY.samples)
    samples[10] = Sample(10.0, ALL, ("node1",), (view("node1"), view("node2", role="Secondary")), None)
    failed = view("node2", role="Primary", disk="Failed")
    samples[11] = Sample(11.0, ALL, ("node1",), (view("node1"), failed), None)
    assert checkers.s3_stale_primary(history(samples)) == []
    alone = (view("node1", connected=frozenset()), replace(failed, connected=frozenset()))
    samples[11] = Sample(11.0, ALL, ("node1",), alone, None)
    assert [v.detail for v in checkers.s3_stale_primary(history(samples))] == [
        "node2 promoted with Failed data"
    ]


def test_s3_flags_a_primary_left_on_stale_data_but_not_on_a_new_disk() -> None:
    """Outdated (or Consistent) data under a Primary with no UpToDate peer can be served; an Inconsistent
    disk never is (tandem-17416: a new disk put under a Diskless Primary that was alone): its I/O fails."""
    samples = list(HEALTHY.samples)
    alone = view("node1", connected=frozenset())
    samples[10] = Sample(10.0, ALL, (), (replace(alone, disk="Diskless"),), None)
    for disk, flagged in (("Outdated", True), ("Inconsistent", False)):
        samples[11] = Sample(11.0, ALL, (), (replace(alone, disk=disk),), None)
        found = [v.detail for v in checkers.s3_stale_primary(history(samples))]
        assert found == ([f"node1 Primary on {disk} data with no UpToDate peer"] if flagged else []), disk


def test_s3_flags_a_promotion_while_a_peer_holds_newer_data() -> None:
    samples = list(HEALTHY.samples)
    alone = view("node2", role="Secondary", connected=frozenset())
    gens = (("node1", 120), ("node2", 80))
    samples[10] = Sample(10.0, ALL, ("node1",), (view("node1", connected=frozenset()), alone), None, gens)
    promoted = (view("node1", connected=frozenset()), replace(alone, role="Primary"))
    samples[11] = Sample(11.0, ALL, ("node1",), promoted, None, gens)
    found = checkers.s3_stale_primary(history(samples))
    assert [v.detail for v in found] == ["node2 promoted with generation 80 while node1 has 120"]
    samples[11] = replace(samples[11], gens=(("node1", 120), ("node2", 120)))
    assert checkers.s3_stale_primary(history(samples)) == []
    linked = (view("node1"), replace(alone, role="Primary", connected=frozenset({"node1"})))
    samples[11] = Sample(11.0, ALL, ("node1",), linked, None, gens)  # node1's write on its way to node2
    assert checkers.s3_stale_primary(history(samples)) == []


def test_s3_flags_a_promotion_of_a_copy_missing_blocks_a_peer_wrote() -> None:
    """A forced Primary that also wrote may count as many generations as its peer: what it lacks is in the
    peer's out-of-sync bitmap for it."""
    samples = list(HEALTHY.samples)
    alone = view("node2", role="Secondary", connected=frozenset())
    gens = (("node1", 120), ("node2", 120))
    lacking = frozenset({"node2"})
    samples[10] = Sample(10.0, ALL, ("node1",), (view("node1"), alone), None, gens, lacking)
    promoted = (view("node1"), replace(alone, role="Primary"))
    samples[11] = Sample(11.0, ALL, ("node1",), promoted, None, gens, lacking)
    found = checkers.s3_stale_primary(history(samples))
    assert [v.detail for v in found] == ["node2 promoted without blocks a peer wrote"]
    st: dict[str, Any] = {"meta": {"node1/r0/0": {"oos": {"node2": [3]}}, "node2/r0/0": {"oos": {}}}}
    assert record.behind(st, NODES) == lacking
    st["faults"] = {"disk/node1/r0/0": True}  # a failed disk's bitmap speaks for nothing (tandem-16504)
    assert record.behind(st, NODES) == frozenset()
    st["faults"] = {}
    st["meta"]["node1/r0/0"]["disk"] = "Inconsistent"  # nor does a copy being resynced (tandem-16809)
    assert record.behind(st, NODES) == frozenset()


def test_a_dead_peers_bits_of_writes_it_never_acknowledged_do_not_count() -> None:
    """tandem-17622: vm1's node lost power with a write in flight; its bitmap holds that block for its
    peers, but on their own generation: the write was never acknowledged. Bits on a newer generation are
    writes it acknowledged without the peer, and count, as do a live peer's."""
    st: dict[str, Any] = {
        "meta": {
            "node1/r0/0": {"oos": {"node2": [3]}, "tag": "g7", "history": []},
            "node2/r0/0": {"oos": {}, "tag": "g7", "history": []},
        }
    }
    assert record.behind(st, NODES, on={"node2"}) == frozenset()  # node1 died in the write
    assert record.behind(st, NODES, on=set(NODES)) == {"node2"}  # alive: its resync will say
    st["meta"]["node1/r0/0"]["tag"] = "g8"  # node1 wrote on without node2 (acknowledged)
    st["meta"]["node2/r0/0"]["history"] = ["g5"]
    assert record.behind(st, NODES, on={"node2"}) == {"node2"}
    st["meta"]["node2/r0/0"].update(tag="g9", history=["g8"])  # node2 shared g8, then went on from it
    assert record.behind(st, NODES, on={"node2"}) == frozenset()


def test_a_node_whose_drbd_is_not_up_yet_counts_as_down() -> None:
    """tandem-23001: node1, powered on again, had not started DRBD; its meta data still held generation 37
    and the bits of that write, made after it lost quorum (never acknowledged), on node3's tag. node2,
    resynced from node3 (36), was promoted: no node behind, node1 at 36 as far as it acknowledged."""
    three = ("node1", "node2", "node3")
    st: dict[str, Any] = {
        "meta": {
            "node1/r0/0": {"gen": 37, "tag": "g", "history": [], "oos": {"node2": [9], "node3": [9]}},
            "node2/r0/0": {"gen": 36, "tag": "g", "history": [], "oos": {}},
            "node3/r0/0": {"gen": 36, "tag": "g", "history": [], "oos": {}},
        },
        "nodes": {
            n: {"r0": {"role": "Secondary", "disks": {"0": {"state": "UpToDate"}}, "conns": {}}}
            for n in three[1:]
        },
    }
    drbd, gens, lacking = record.data_view(st, three, on=three)
    assert [v.node for v in drbd] == ["node2", "node3"]
    assert gens == (("node1", 36), ("node2", 36), ("node3", 36)) and lacking == frozenset()
    st["nodes"]["node1"] = {"r0": {"role": "Secondary", "disks": {"0": {"state": "UpToDate"}}, "conns": {}}}
    _, gens, lacking = record.data_view(st, three, on=three)  # up: its resync will say
    assert gens[0] == ("node1", 37) and lacking == {"node2", "node3"}


def test_data_generations_from_the_emulators_meta() -> None:
    st: dict[str, Any] = {
        "meta": {"node1/r0/0": {"gen": 7}, "node2/r0/0": {"gen": 5}, "node1/r1/0": {"gen": 1}}
    }
    assert record.data_generations(st, NODES) == (("node1", 7), ("node2", 5))
    st["faults"] = {"disk/node1/r0/0": True}
    assert record.data_generations(st, NODES) == (("node2", 5),)


def test_a_dead_nodes_generations_count_only_as_far_as_they_were_acknowledged() -> None:
    """tandem-17622's replay: vm1's node died with generation 8 on its disk, written as its peers were cut
    off, never acknowledged; on the live nodes' tag its count stops at theirs. On a tag of its own (writes
    it acknowledged without them) it counts whole, as it does while it is up."""
    st: dict[str, Any] = {
        "meta": {"node1/r0/0": {"gen": 7, "tag": "g"}, "node2/r0/0": {"gen": 8, "tag": "g"}},
    }
    assert record.data_generations(st, NODES, on={"node1"}) == (("node1", 7), ("node2", 7))
    assert record.data_generations(st, NODES, on=set(NODES)) == (("node1", 7), ("node2", 8))
    st["meta"]["node2/r0/0"]["tag"] = "h"
    assert record.data_generations(st, NODES, on={"node1"}) == (("node1", 7), ("node2", 8))
    st["meta"]["node1/r0/0"].update(tag="k", history=["g"])  # tandem-23011: node1 promoted without node2
    st["meta"]["node2/r0/0"]["tag"] = "g"
    assert record.data_generations(st, NODES, on={"node1"}) == (("node1", 7), ("node2", 7))


def test_s3_accepts_a_primary_reading_through_an_uptodate_peer_but_not_alone() -> None:
    samples = list(HEALTHY.samples)
    target = view("node2", role="Primary", disk="Inconsistent")
    samples[10] = Sample(10.0, ALL, ("node1",), (view("node1"), target), None)
    assert checkers.s3_stale_primary(history(samples)) == []
    alone = replace(target, connected=frozenset(), disk="Outdated")  # Inconsistent alone: see below
    samples[11] = Sample(11.0, ALL, ("node1",), (view("node1", connected=frozenset()), alone), None)
    assert [v.checker for v in checkers.s3_stale_primary(history(samples))] == ["S3"]
    diskless = replace(alone, disk="Diskless")  # no data at all: its I/O fails, nothing stale is served
    samples[11] = Sample(11.0, ALL, ("node1",), (view("node1", connected=frozenset()), diskless), None)
    assert checkers.s3_stale_primary(history(samples)) == []


THREE = ("node1", "node2", "node3")


def client(role: str = "Secondary", peer_disk: str = "UpToDate", up: frozenset[str] = ALL) -> DrbdView:
    """node3, the diskless tiebreaker, connected to the data nodes in `up`."""
    return DrbdView("node3", role, "Diskless", up, tuple((n, peer_disk) for n in NODES), False, client=True)


def test_a_diskless_client_promoted_beside_an_uptodate_peer_is_no_stale_primary() -> None:
    both = frozenset(THREE)
    data = tuple(view(n, connected=both - {n}) for n in NODES)
    before = Sample(1.0, both, ("node1",), (*data, client()), None)
    promoted = Sample(2.0, both, ("node1",), (*data, client("Primary")), None)
    assert checkers.s3_stale_primary(history([before, promoted])) == []
    no_copy = [replace(x, behind=frozenset({"node3"})) for x in (before, promoted)]  # nothing to lack
    assert checkers.s3_stale_primary(history(no_copy)) == []
    node1_only = tuple(view(n, connected=both - {n}) for n in NODES)[:1]
    through = client("Primary", up=frozenset({"node1"}))
    gens = (("node1", 325), ("node2", 325), ("node3", 0))  # a client's own count means nothing
    served = [
        Sample(t, both, ("node1",), (*node1_only, c), None, gens)
        for t, c in ((1.0, client()), (2.0, through))
    ]
    assert checkers.s3_stale_primary(history(served)) == []
    stale = [replace(x, gens=(("node1", 320), ("node2", 325), ("node3", 0))) for x in served]
    assert [v.detail for v in checkers.s3_stale_primary(history(stale))] == [
        "node3 promoted with generation 320 while node2 has 325"
    ]
    alone = Sample(2.0, both, ("node1",), (*data, client("Primary", up=frozenset())), None)
    assert [v.detail for v in checkers.s3_stale_primary(history([before, alone]))] == [
        "node3 promoted with Diskless data"
    ]


def test_the_goal_of_a_tiebreaker_cluster_has_its_client_diskless_and_primary_only_for_the_vm() -> None:
    both = frozenset(THREE)
    data = tuple(view(n, connected=both - {n}) for n in NODES)
    assert checkers.goal(Sample(1.0, both, ("node1",), (*data, client()), None), THREE)
    assert not checkers.goal(Sample(1.0, both, ("node1",), (*data, client("Primary")), None), THREE)
    one_data_primary = (data[0], replace(data[1], role="Secondary"))
    on_client = (*one_data_primary, client("Primary"))
    assert checkers.goal(Sample(1.0, both, ("node3",), on_client, None), THREE)  # tandem-16504's replay
    assert not checkers.goal(Sample(1.0, both, ("node2",), on_client, None), THREE)
    assert not checkers.goal(Sample(1.0, both, ("node1",), (*one_data_primary, client()), None), THREE)
    not_a_client = replace(client(), client=False)  # a data node whose disk is gone
    assert not checkers.goal(Sample(1.0, both, ("node1",), (*data, not_a_client), None), THREE)


def test_the_goal_of_three_data_nodes_has_two_primaries_one_running_the_vm() -> None:
    every = frozenset(THREE)
    two = tuple(view(n, connected=every - {n}) for n in NODES)
    spare = view("node3", role="Secondary", connected=every - {"node3"})
    assert checkers.goal(Sample(1.0, every, ("node1",), (*two, spare), None), THREE)
    assert not checkers.goal(Sample(1.0, every, ("node3",), (*two, spare), None), THREE)
    assert not checkers.goal(
        Sample(1.0, every, ("node1",), (*two, replace(spare, role="Primary")), None), THREE
    )


def test_s4_flags_a_split_brain_once_per_stretch() -> None:
    samples = list(HEALTHY.samples)
    for t in (20, 21, 22):
        samples[t] = Sample(float(t), ALL, ("node1",), (view("node1", split_brain=True), view("node2")), None)
    assert names(history(samples)) == ["S4"]


def test_s5_flags_a_promotion_the_fencing_constraint_forbids() -> None:
    samples = list(HEALTHY.samples)
    secondary = view("node2", role="Secondary", connected=frozenset())
    samples[10] = Sample(10.0, ALL, ("node1",), (view("node1"), secondary), frozenset({"node1"}))
    samples[11] = Sample(11.0, ALL, ("node1",), (view("node1"), replace(secondary, role="Primary")), None)
    assert checkers.s5_promotion_against_fencing(history(samples)) == []  # removed as it was promoted
    samples[11] = replace(samples[11], fence=frozenset({"node1"}))
    found = checkers.s5_promotion_against_fencing(history(samples))
    assert [v.detail for v in found] == ["node2 promoted while the fencing constraint allows node1"]
    samples[10] = replace(samples[10], fence=frozenset({"node1", "node2"}))
    assert checkers.s5_promotion_against_fencing(history(samples)) == []


def test_s5_trusts_the_cib_read_after_the_promotion() -> None:
    """tandem-9001 (CI): after-resync-target lifted the constraint 30 ms before Pacemaker promoted the node;
    the CIB poll is apart from the samples, so both samples around the promotion still showed it."""
    samples = list(HEALTHY.samples)
    secondary = view("node2", role="Secondary", connected=frozenset())
    stale = frozenset({"node1"})
    samples[10] = Sample(10.0, ALL, ("node1",), (view("node1"), secondary), stale, fence_at=9.2)
    samples[11] = Sample(11.0, ALL, ("node1",), (view("node1"), replace(secondary, role="Primary")), stale)
    samples[11] = replace(samples[11], fence_at=9.7)
    for t in range(12, 20):
        samples[t] = replace(samples[t], fence=None, fence_at=t - 0.5)  # read after the promotion: gone
    assert checkers.s5_promotion_against_fencing(history(samples)) == []
    for t in range(12, 20):  # still there after it: the promotion went against it
        samples[t] = replace(samples[t], fence=stale)
    assert [v.checker for v in checkers.s5_promotion_against_fencing(history(samples))] == ["S5"]


def test_s6_flags_a_partition_that_fenced_the_vms_node() -> None:
    samples = list(HEALTHY.samples)
    for t in range(12, 30):
        samples[t] = Sample(
            float(t), frozenset({"node2"}), ("node2",), (view("node2", connected=frozenset()),), None
        )
    cut = (Injection(10.0, "partition", "", False, ""), Injection(25.0, "partition", "", True, ""))
    assert [v.checker for v in checkers.s6_partition_survivor(history(samples, injections=cut))] == ["S6"]
    power = (*cut, Injection(11.0, "power-cut", "node1", False, ""))  # its own power cut excuses it
    assert checkers.s6_partition_survivor(history(samples, injections=power)) == []
    migrating = history(samples, injections=cut, migrations=((9.0, 24.0),))  # split inside a migration
    assert checkers.s6_partition_survivor(migrating) == []


def test_split_outcomes_say_who_lost_each_fence_race() -> None:
    cut = (Injection(10.0, "repl-cut", "", False, ""), Injection(25.0, "repl-cut", "", True, ""))
    outcome = [s.outcome for s in checkers.split_outcomes(history(list(HEALTHY.samples), injections=cut))]
    assert outcome == [checkers.NONE_FENCED]
    samples = list(HEALTHY.samples)
    for t in range(12, 30):  # node2, not running vm1, fenced
        samples[t] = Sample(
            float(t), frozenset({"node1"}), ("node1",), (view("node1", connected=frozenset()),), None
        )
    (split,) = checkers.split_outcomes(history(samples, injections=cut))
    assert (split.outcome, split.t, split.vm_node) == (checkers.PEER_FENCED, 12.0, "node1")
    stopped = (*cut, Injection(11.0, "stop-start", "node2", False, ""))  # off by a fault of its own
    assert [s.outcome for s in checkers.split_outcomes(history(samples, injections=stopped))] == [
        checkers.NOT_JUDGED
    ]
    # tandem-19935: the race ended when node2 went off; vm1's node lost later within the window is not it
    for t in range(20, 30):
        samples[t] = Sample(float(t), frozenset({"node2"}), (), (view("node2", connected=frozenset()),), None)
    assert [s.outcome for s in checkers.split_outcomes(history(samples, injections=stopped))] == [
        checkers.NOT_JUDGED
    ]
    (split,) = checkers.split_outcomes(history(samples, injections=cut))
    assert (split.outcome, split.t) == (checkers.PEER_FENCED, 12.0)
    later = list(HEALTHY.samples)  # the race left both on; vm1's node rebooted by a fault after the heal
    for t in range(28, 32):
        later[t] = Sample(float(t), frozenset({"node2"}), (), (view("node2", connected=frozenset()),), None)
    rebooted = (*cut, Injection(27.0, "reboot", "node1", False, ""))
    assert [s.outcome for s in checkers.split_outcomes(history(later, injections=rebooted))] == [
        checkers.NOT_JUDGED
    ]
    assert [s.outcome for s in checkers.split_outcomes(history(later, injections=cut))] == [
        checkers.VM_NODE_FENCED
    ]
    hang = "fence-peer-hang"
    hung = (Injection(10.0, hang, "", False, ""), Injection(25.0, hang, "", True, ""))
    assert [s.outcome for s in checkers.split_outcomes(history(later, injections=hung))] == [
        checkers.VM_NODE_FENCED  # its replication cut is a split too
    ]
    off = list(later)  # tandem-18877: node2 stopped when the handler fault cut the link: no race yet
    for t in range(5, 12):
        alone = (view("node1", connected=frozenset()),)
        off[t] = Sample(float(t), frozenset({"node1"}), ("node1",), alone, None)
    partition = (Injection(15.0, "partition", "", False, ""), Injection(20.0, "partition", "", True, ""))
    assert [s.outcome for s in checkers.split_outcomes(history(off, injections=(*hung, *partition)))] == [
        checkers.NOT_JUDGED,
        checkers.VM_NODE_FENCED,  # the partition's race is its own
    ]
    inside = (*hung, Injection(12.0, "repl-cut", "", False, ""), Injection(20.0, "repl-cut", "", True, ""))
    assert [s.outcome for s in checkers.split_outcomes(history(later, injections=inside))] == [
        checkers.VM_NODE_FENCED,  # tandem-19702: the race began with the handler fault's cut
        checkers.NOT_JUDGED,
    ]
    # tandem-18165: the fence device failed through vm1's node's head start: a coin flip, not judged
    for back, expected in ((22.0, checkers.NOT_JUDGED), (13.0, checkers.VM_NODE_FENCED)):
        device = (Injection(11.0, "fence-fail", "", False, ""), Injection(back, "fence-fail", "", True, ""))
        judged = checkers.split_outcomes(history(later, injections=(*cut, *device)))
        assert [s.outcome for s in judged] == [expected]
    assert f"priority-fencing-delay={checkers.PRIORITY_FENCING_DELAY:.0f}s" in (TOP / "README.md").read_text()
    # tandem-18043: the replication link cut while a partition (begun first) still held: one race, the
    # partition's; judging the cut as a race of its own flagged the VM's node, fenced for the partition
    inside = (Injection(5.0, "partition", "", False, ""), *cut, Injection(26.0, "partition", "", True, ""))
    assert [s.outcome for s in checkers.split_outcomes(history(later, injections=inside))] == [
        checkers.VM_NODE_FENCED,
        checkers.NOT_JUDGED,
    ]
    # tandem-18538: corosync crashed on vm1's node 1.2 s before the cut: lost, and fenced, for its crash;
    # tandem-19328: 7 s before, its fencing still due (the priority-fencing-delay); one fenced before the
    # cut is over
    for crashed, fenced, expected in (
        (8.8, (), checkers.NOT_JUDGED),
        (3.0, (), checkers.NOT_JUDGED),
        (3.0, ((5.0, "node1"),), checkers.VM_NODE_FENCED),
    ):
        crash = (Injection(crashed, "crash-corosync", "node1", False, ""), *cut)
        judged = checkers.split_outcomes(history(later, injections=crash, fenced=fenced))
        assert [s.outcome for s in judged] == [expected]
    libvirtd = (Injection(8.8, "crash-libvirtd", "node1", False, ""), *cut)  # no loss of membership
    assert [s.outcome for s in checkers.split_outcomes(history(later, injections=libvirtd))] == [
        checkers.VM_NODE_FENCED
    ]
    # tandem-18559: vm1's node's disk failed just before the replication link was cut (S6 exempts the side
    # that lost its own disk); one replaced before the cut excuses nothing
    for replaced, expected in ((15.0, checkers.NOT_JUDGED), (9.5, checkers.VM_NODE_FENCED)):
        disk = (
            Injection(5.0, "disk-fail", "node1", False, ""),
            Injection(replaced, "disk-fail", "node1", True, ""),
            *cut,
        )
        assert [s.outcome for s in checkers.split_outcomes(history(later, injections=disk))] == [expected]
    # tandem-18505: node2's controller started 0.5 s before the split and had not joined when it came: its
    # CIB held nothing of what node1 ran, so its scheduler fenced vm1's node at once (no priority delay);
    # tandem-18881: node2's controller respawned 0.4 s into the split, before node1's loss was seen
    windows = {
        ((9.5, 20.0, "node2"),): checkers.NOT_JUDGED,
        ((10.4, 11.0, "node2"),): checkers.NOT_JUDGED,
        ((9.5, 9.9, "node2"),): checkers.VM_NODE_FENCED,  # joined before the split
        ((13.5, 14.0, "node2"),): checkers.VM_NODE_FENCED,  # after node1's loss could be seen
        ((9.5, 20.0, "node1"),): checkers.VM_NODE_FENCED,  # vm1's node's own controller: no excuse
        ((9.5, 20.0, ""),): checkers.NOT_JUDGED,  # unnamed (before e676d09): 53f7f66's rule, a window
        ((10.4, 11.0, ""),): checkers.VM_NODE_FENCED,  # that holds the split's start
    }
    for joining, expected in windows.items():
        h = replace(history(later, injections=cut), joining=joining)
        assert [s.outcome for s in checkers.split_outcomes(h)] == [expected], joining


def test_l1_flags_no_recovery_and_failed_actions_left() -> None:
    stuck = [
        Sample(float(t), ALL, ("node1",), (view("node1"), view("node2")), frozenset({"node1"}))
        for t in range(90)
    ]
    h = history(stuck, healed_at=0.0)
    assert checkers.recovery(h) is None
    assert [v.checker for v in checkers.l1_healed(h)] == ["L1"]
    degraded = checkers.FailedAction("drbd-r0_monitor_10000", "node1", "degraded")
    left = checkers.l1_healed(replace(HEALTHY, failed_actions=(degraded,)))
    assert [v.detail for v in left] == [
        "failed action needs cleanup: drbd-r0_monitor_10000 on node1: degraded"
    ]


def node1_lost_at_10(vm1_back: int) -> list[Sample]:
    """Samples of node1 gone at 10 s, with vm1 running on node2 from `vm1_back` to 50 s."""
    alone = (view("node2", connected=frozenset()),)
    return [good(float(t)) for t in range(10)] + [
        Sample(float(t), frozenset({"node2"}), ("node2",) if t >= vm1_back else (), alone, None)
        for t in range(10, 50)
    ]


def test_l2_flags_a_vm_back_late_after_its_nodes_fencing() -> None:
    samples = node1_lost_at_10(vm1_back=40)
    cut = (Injection(9.5, "power-cut", "node1", False, ""),)
    late = history(samples, injections=cut, fenced=((20.0, "node1"),))
    assert [v.checker for v in checkers.l2_node_loss(late)] == ["L2"]
    assert checkers.l2_seconds(late) == [30.5]
    in_time = history(samples, injections=cut, fenced=((36.0, "node1"),))
    assert checkers.l2_node_loss(in_time) == []

    stale = [replace(x, fence=frozenset({"node1"})) for x in samples]  # node2's data is outdated
    assert checkers.l2_node_loss(history(stale, injections=cut, fenced=((20.0, "node1"),))) == []
    both = [replace(x, on=frozenset()) if 20 <= x.t < 30 else x for x in samples]  # the survivor died too
    assert checkers.l2_node_loss(history(both, injections=cut, fenced=((20.0, "node1"),))) == []
    resyncing = [  # node2 was still a SyncTarget when node1 went: it has no data to run vm1 on
        replace(x, drbd=(view("node1"), view("node2", role="Secondary", disk="Inconsistent")))
        if x.t < 10
        else x
        for x in samples
    ]
    assert checkers.l2_node_loss(history(resyncing, injections=cut, fenced=((20.0, "node1"),))) == []
    # tandem-19568: the survivor's corosync crashed before vm1 was due: alone, it waits for all (no quorum)
    restarted = (*cut, Injection(19.0, "crash-corosync", "node2", False, ""))
    assert checkers.l2_node_loss(history(samples, injections=restarted, fenced=((20.0, "node1"),))) == []
    too_late = (*cut, Injection(27.0, "crash-corosync", "node2", False, ""))  # after vm1 was due back
    assert [
        v.checker
        for v in checkers.l2_node_loss(history(samples, injections=too_late, fenced=((20.0, "node1"),)))
    ] == ["L2"]
    # tandem-19420: it crashed just before the power cut and its controller joined again after it: alone
    before = (Injection(9.4, "crash-corosync", "node2", False, ""), *cut)
    cases: list[tuple[tuple[tuple[float, float, str], ...], list[str]]] = [
        (((21.0, 23.0, "node2"),), []),
        (((9.45, 9.48, "node2"),), ["L2"]),  # back in the cluster before the power cut: it must recover
    ]
    for joined, flagged in cases:
        h = replace(history(samples, injections=before, fenced=((20.0, "node1"),)), joining=joined)
        assert [v.checker for v in checkers.l2_node_loss(h)] == flagged


def test_l2_clock_starts_at_the_lost_nodes_join_when_it_came_back_unfenced() -> None:
    """tandem-21172: node1 lost power and its controller joined again 2.2 s later, before its fencing was
    due; the DC scheduled vm1 only after that join, and vm1 ran 3.4 s after it (here: joined at 11-12,
    vm1 back at 16)."""
    cut = (Injection(9.5, "power-cut", "node1", False, ""),)
    unfenced = history(node1_lost_at_10(vm1_back=16), injections=cut)
    assert [v.detail for v in checkers.l2_node_loss(unfenced)] == [
        "power-cut of node1: vm1 back 6.5s after the fault, the fault (no fencing logged) +5 s allowed"
    ]
    assert checkers.l2_node_loss(replace(unfenced, joining=((11.0, 12.0, "node1"),))) == []
    late = replace(unfenced, joining=((9.5 + checkers.FENCING_DUE + 1, 30.0, "node1"),))  # fencing was due
    assert [v.checker for v in checkers.l2_node_loss(late)] == ["L2"]
    other = replace(unfenced, joining=((11.0, 12.0, "node2"),))  # another node's join tells nothing of node1
    assert [v.checker for v in checkers.l2_node_loss(other)] == ["L2"]


def test_l2_does_not_ask_a_cluster_without_quorum_anywhere_to_recover() -> None:
    """tandem-17005: three nodes, every cluster link cut, then the VM's node rebooted: no node has quorum
    until the heal, so nobody may restart vm1 (L1 judges the recovery after the heal). Two nodes keep
    quorum under the same cut (two_node) and must recover."""
    three = ("node1", "node2", "node3")
    on = frozenset(three)
    views = (view("node1"), view("node2"), view("node3", role="Secondary"))
    samples = [Sample(float(t), on, ("node1",), views, None) for t in range(10)]
    samples += [Sample(float(t), on - {"node1"}, (), views[1:], None) for t in range(10, 60)]
    loss = (Injection(5.0, "cluster-cut", "", False, ""), Injection(9.5, "reboot", "node1", False, ""))
    cut_three = replace(history(samples, injections=loss), nodes=three)
    assert checkers.l2_node_loss(cut_three) == []
    healed = (*loss, Injection(7.0, "cluster-cut", "", True, ""))  # healed before the reboot
    assert [v.checker for v in checkers.l2_node_loss(replace(cut_three, injections=healed))] == ["L2"]
    two = history([replace(x, on=x.on - {"node3"}) for x in samples], injections=loss)
    assert [v.checker for v in checkers.l2_node_loss(two)] == ["L2"]
    # tandem-17103: node3 was rebooting when vm1's node went: node2 alone is a minority of three
    reboot = (Injection(9.5, "reboot", "node1", False, ""),)
    minority = replace(
        history([replace(x, on=x.on - {"node3"}) for x in samples], injections=reboot), nodes=three
    )
    assert checkers.l2_node_loss(minority) == []
    assert [v.checker for v in checkers.l2_node_loss(replace(cut_three, injections=reboot))] == ["L2"]
    # tandem-17213: node3's corosync crashed 4 s after node1's loss, before vm1 was due back
    crash = (*reboot, Injection(13.5, "crash-corosync", "node3", False, ""))
    assert checkers.l2_node_loss(replace(cut_three, injections=crash)) == []
    late = (*reboot, Injection(40.0, "crash-corosync", "node3", False, ""))  # vm1 was overdue already
    assert [v.checker for v in checkers.l2_node_loss(replace(cut_three, injections=late))] == ["L2"]
    # tandem-17516: node3 was on but its DRBD not up again yet (a clean restart) when node1 went
    starting = [replace(x, drbd=tuple(v for v in x.drbd if v.node != "node3")) for x in samples]
    assert checkers.l2_node_loss(replace(history(starting, injections=reboot), nodes=three)) == []
    # tandem-17432: the replication network cut 3 s after the loss: no DRBD quorum for either survivor
    repl = (*reboot, Injection(12.5, "repl-cut", "", False, ""), Injection(30.0, "repl-cut", "", True, ""))
    assert checkers.l2_node_loss(replace(cut_three, injections=repl)) == []


def test_l3_flags_a_quiet_cluster_out_of_goal_but_not_during_a_fault() -> None:
    samples = list(HEALTHY.samples) + [
        Sample(float(t), ALL, (), (view("node1"), view("node2")), None) for t in range(60, 120)
    ]
    quiet = history(samples, actions=(59.0,))
    assert [v.checker for v in checkers.l3_stall(quiet)] == ["L3"]
    busy = history(samples, actions=tuple(float(t) for t in range(59, 120, 20)))
    assert checkers.l3_stall(busy) == []
    held = (Injection(55.0, "repl-cut", "", False, ""),)
    assert checkers.l3_stall(history(samples, actions=(59.0,), injections=held)) == []


def test_a_history_survives_its_json_with_every_field() -> None:
    h = history(
        [
            good(1.0),
            Sample(2.0, ALL, (), (view("node1", split_brain=True),), frozenset({"node1"}), (("node1", 3),)),
        ],
        injections=(Injection(1.5, "repl-cut", "", False, ""),),
        migrations=((1.0, 2.0),),
        fenced=((2.0, "node2"),),
        boots=(Boot(2.0, 5, None, "read on node1 at the end"),),
        failed_actions=(checkers.FailedAction("vm1_monitor_10000", "node1", "not running"),),
    )
    assert checkers.history_from_json(checkers.history_to_json(h)) == h


# ---------------------------------------------------------------- the parsers


def test_drbd_views_read_the_emulators_state() -> None:
    conn = {"state": "Connected", "peer_disk": {"0": "Outdated"}, "split_brain": True}
    st = {
        "nodes": {
            "node1": {
                "r0": {"role": "Primary", "disks": {"0": {"state": "UpToDate"}}, "conns": {"node2": conn}}
            }
        }
    }
    (v,) = record.drbd_views(st, NODES)
    assert v == DrbdView("node1", "Primary", "UpToDate", frozenset({"node2"}), (("node2", "Outdated"),), True)


def test_fencing_allowed_reads_ours_and_crm_fence_peers_constraint() -> None:
    import xml.etree.ElementTree as ET

    from tandem.fence import build_constraint

    ours = ET.tostring(build_constraint("drbd-r0-clone", "r0", ["node1"], "Promoted"), encoding="unicode")
    assert record.fencing_allowed(f"<constraints>{ours}</constraints>") == frozenset({"node1"})
    anchor = (
        '<constraints><rsc_location rsc="drbd-r0-clone" id="drbd-fence-by-handler-r0-drbd-r0-clone">'
        '<rule role="Promoted" score="-INFINITY" id="x"><expression attribute="#uname" operation="ne" '
        'value="node2" id="y"/></rule></rsc_location>'
        '<rsc_location id="cli-prefer-vm1" rsc="vm1"/></constraints>'
    )
    assert record.fencing_allowed(anchor) == frozenset({"node2"})
    assert record.fencing_allowed('<constraints><rsc_location id="cli-prefer-vm1"/></constraints>') is None


def test_failed_actions_from_crm_mon() -> None:
    xml = (
        '<crm_mon><failures><failure op_key="drbd-r0_monitor_20000" node="node2" exitstatus="degraded" '
        'exitreason="peer node1 disconnected"/></failures></crm_mon>'
    )
    (got,) = record.failed_actions(xml)
    assert str(got) == "drbd-r0_monitor_20000 on node2: peer node1 disconnected" and got.at == 0.0
    assert record.failed_actions("<crm_mon/>") == ()
    for stamp, at in (("2026-11-29 23:24:24Z", 1795994664.0), ("2026-11-30 00:24:24 +01:00", 1795994664.0)):
        (got,) = record.failed_actions(xml.replace("/>", f' last-rc-change="{stamp}"/>'))
        assert got.at == at
    cib = (
        '<cib><configuration><rsc_defaults><meta_attributes id="d">'
        '<nvpair id="d-ft" name="failure-timeout" value="5min"/></meta_attributes></rsc_defaults>'
        "</configuration></cib>"
    )
    assert record.failure_timeout(cib) == 300.0 and record.failure_timeout("<cib/>") is None


def test_l1_accepts_a_failed_action_that_expires_by_itself_but_not_one_overdue() -> None:
    failed = (checkers.FailedAction("vm1_monitor_10000", "node2", "not running", HEALTHY.end - 30),)
    expiring = replace(HEALTHY, failed_actions=failed, failure_timeout=300.0)
    assert checkers.l1_healed(expiring) == []
    overdue = replace(expiring, failure_timeout=5.0)
    assert [v.checker for v in checkers.l1_healed(overdue)] == ["L1"]
    assert [v.checker for v in checkers.l1_healed(replace(expiring, failure_timeout=None))] == ["L1"]


def test_log_facts_give_actions_migration_windows_and_fencing() -> None:
    def ev(t: float, kind: str, subject: str, op: str, text: str = "", where: str = "node1") -> Event:
        return Event(t, "node1", kind, subject, where, op, text)

    events = [
        ev(1.0, "initiate", "vm1", "migrate_to"),
        ev(2.0, "result", "vm1", "stop", where="node2"),  # the target's stop: migrate_to still runs (17007)
        ev(3.0, "result", "vm1", "stop"),
        ev(5.0, "fence-done", "node2", "reboot", "reboot of node2 by node1 for pacemaker-controld: OK"),
        ev(6.0, "fence-done", "node1", "reboot", "reboot of node1 by node2 for pacemaker-controld: Error"),
        Event(7.0, "node2", "join", "node2", "", "joining", ""),
        ev(7.5, "join", "node1", "joined"),  # another node's join ends no window of node2's
        Event(8.0, "node2", "dc-join", "node2", "", "joined", ""),  # node2, DC, finished a join round
        Event(9.0, "node1", "join", "node1", "", "joining", ""),  # never joined before the run's end
    ]
    facts = record.log_facts(events, 20.0)
    assert facts.actions == (1.0, 2.0, 3.0, 5.0, 6.0)  # a controller's joining is no cluster action (L3)
    assert facts.migrations == ((1.0, 3.0),)
    assert facts.fenced == ((5.0, "node2"),)
    assert facts.joining == ((7.0, 8.0, "node2"), (9.0, 20.0, "node1"))


def test_boots_pair_each_boot_with_the_generation_acknowledged_before_it() -> None:
    text = (
        "tandem-guest: alive t=1 gen=11\ntandem-guest: alive t=2 gen=12\n"
        "tandem-guest: booted mem=16MiB\ntandem-guest: disk gen=12 boots=2\n"
        "tandem-guest: alive t=1 gen=13\ntandem-guest: disk error=timeout\n"  # a write held too long
        "tandem-guest: booted\ntandem-guest: disk error=device-error\n"  # it read nothing (16504)
        "tandem-guest: booted\ntandem-guest: disk fresh\n"
    )
    got = record.boots(text, 10, [(100.0, 50), (101.0, 10_000)], 0)
    unread = Boot(101.0, 13, None, error="device-error")
    assert got == (Boot(101.0, 12, 12), unread, Boot(101.0, 13, None))


def test_a_boot_that_could_not_read_its_disk_is_no_lost_write_but_must_not_be_the_last() -> None:
    """tandem-16504: the guest started where DRBD had lost quorum; its first read failed. It saw no old data
    (no S2), but a guest left so has no disk (L1) until it boots again."""
    unread = Boot(5.0, 18, None, error="device-error")
    assert checkers.s2_lost_write(history(list(HEALTHY.samples), boots=(unread,))) == []
    left = checkers.l1_healed(history(list(HEALTHY.samples), boots=(unread,)))
    assert [v.detail for v in left] == ["the guest's last boot could not read its disk (device-error)"]
    again = (unread, Boot(9.0, 18, 18))
    assert checkers.l1_healed(history(list(HEALTHY.samples), boots=again)) == []


# ---------------------------------------------------------------- the report


def run(agents: str, faults: list[str], recovery: float | None, violations: list[str]) -> dict[str, object]:
    return {
        "run": f"{agents}-1",
        "agents": agents,
        "seed": 1,
        "nodes": 2,
        "faults": faults,
        "schedule": [{"at": 1.0, "kind": faults[0], "role": "vm", "hold": 0.0}],
        "injections": [{"t": 1.0, "kind": faults[0], "node": "node1", "undo": False, "note": ""}],
        "healed_s": 2.0,
        "violations": [{"checker": c, "detail": "x", "t": 3.0} for c in violations],
        "recovery_s": recovery,
        "node_loss_s": [12.0],
        "replay": "python3 -m lab campaign --agents tandem --faults power-cut --replay 1",
    }


def test_report_counts_runs_violations_and_recovery_per_kind() -> None:
    runs = [
        run("tandem", ["power-cut", "move"], 10.0, ["L1", "L1"]),
        run("tandem", ["power-cut"], 20.0, []),
        run("tandem", ["power-cut"], None, ["S1"]),
        run("anchors", ["power-cut"], 5.0, []),
    ]
    rows = {(r.kind, r.agents): r for r in report.tally(runs)}
    cut = rows[("power-cut", "tandem")]
    assert (cut.runs, cut.recovery, cut.unrecovered) == (3, (10.0, 20.0), 1)
    assert dict(zip(report.CHECKERS, cut.violations, strict=True))["L1"] == 1  # a run counts once
    assert rows[("move", "tandem")].runs == 1 and rows[("power-cut", "anchors")].runs == 1
    text = report.markdown(runs, None)
    assert "| power-cut | tandem | 3 | 1 | · | · | · | · | · | 1 | · | · | 10.0 / 20.0 / 20.0 | 1 |" in text
    assert (
        "| (all) | tandem | 3 | 12.0 / 12.0 / 12.0 |" in text and "| move | tandem | 1 | 12.0" in text
    )  # L2
    assert "`python3 -m lab campaign --agents tandem --faults power-cut --replay 1`" in text


def test_report_counts_three_node_runs_apart_under_their_shape() -> None:
    two, tie, data = (run("tandem", ["power-cut"], 5.0, []) for _ in range(3))
    tie["nodes"] = data["nodes"] = 3
    data["shape"] = "three-data"
    text = report.markdown([two, tie, data], None)
    for label in ("tandem", "tandem, 3 nodes (tiebreaker)", "tandem, 3 nodes (three-data)"):
        assert f"| {label} | 1 | 0 | 0 |" in text
    assert runner.replay_command("tandem", ("move",), 7, "three-data") == (
        "python3 -m lab campaign --agents tandem --nodes 3 --shape three-data --faults move --replay 7"
    )


def test_report_counts_violations_per_commit_and_says_what_a_known_one_was() -> None:
    old, fixed, fine = (run("tandem", ["power-cut"], 5.0, v) for v in (["L1"], ["S2"], []))
    old.update(commit="c892ed1d1f", run="tandem-13008")
    fixed.update(commit="c892ed1d1f", run="tandem-x")
    fine["commit"] = "65ed7cd000"
    text = report.markdown([old, fixed, fine], None)
    assert "| c892ed1 | tandem | 2 | 1 | 1 |" in text and "| 65ed7cd | tandem | 1 | 0 | 0 |" in text
    assert f"- found: {report.FINDINGS['tandem-13008']}" in text


def test_report_counts_runs_per_version_of_the_shipped_code(tmp_path: Path) -> None:
    """Commits that changed only the lab leave the agents as they were: their runs count together."""
    a, b, c = (run("tandem", ["power-cut"], 5.0, v) for v in ([], [], ["S3"]))
    a.update(commit="aaaaaaa111", started="2026-12-01T01:00")
    b.update(commit="bbbbbbb222", started="2026-12-01T02:00")
    c.update(commit="ccccccc333", started="2026-11-30T01:00")
    d = run("tandem", ["power-cut"], 5.0, [])
    d.update(commit="aaaaaaa111-dirty", started="2026-11-29T01:00")  # local changes: counted apart
    shipped = {"aaaaaaa111": "1234567890ab", "bbbbbbb222": "1234567890ab", "ccccccc333": "feedfacecafe"}
    text = report.markdown([a, b, c, d], None, shipped=shipped)
    newest = text.index("| 12345678 | tandem | 2 | 0 | 0 | aaaaaaa, bbbbbbb |")
    assert newest < text.index("| feedface | tandem | 1 | 1 | 0 | ccccccc |")
    assert text.index("| feedface |") < text.index("| 12345678-dirty | tandem | 1 | 0 | 0 | aaaaaaa |")
    for shipped_dir in report.SHIPPED:
        (tmp_path / shipped_dir).mkdir(parents=True)
        (tmp_path / shipped_dir / "file").write_text("v1\n")
    (tmp_path / "lab").mkdir()
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]

    def commit(path: str, text: str) -> str:
        (tmp_path / path).write_text(text)
        for argv in (["add", "-A"], ["commit", "-qm", path]):
            subprocess.run([*git, *argv], check=True)
        return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()

    subprocess.run([*git, "init", "-q"], check=True)
    first = commit("lab/x", "1")
    lab_only = commit("lab/x", "2")
    agent_changed = commit("agents/file", "v2")  # the library's tree alone would not tell (ef97c23)
    versions = report.shipped_versions({first, lab_only, agent_changed, "0" * 40}, tmp_path)
    assert set(versions) == {first, lab_only, agent_changed}  # an unknown commit: left out
    assert versions[first] == versions[lab_only] != versions[agent_changed]


def test_report_counts_who_lost_each_fence_race() -> None:
    race = run("tandem", ["partition"], 5.0, [])
    race["splits"] = [
        {"kind": "partition", "outcome": checkers.PEER_FENCED},
        {"kind": "partition", "outcome": checkers.VM_NODE_FENCED},
        {"kind": "repl-cut", "outcome": checkers.NOT_JUDGED},
    ]
    text = report.markdown([race, run("tandem", ["power-cut"], 5.0, [])], None)
    assert "| tandem | partition | 2 | 1 | 0 | 1 | 0 |" in text
    assert "| tandem | repl-cut | 1 | 0 | 0 | 0 | 1 |" in text
    assert "cluster-cut" not in text.split("## The fence race")[1].split("##")[0]


def test_shrinking_leaves_one_event_out_at_a_time_and_the_report_shows_the_result() -> None:
    from lab.campaign.shrink import smaller

    s = generate(5, RISKIEST)
    fewer = list(smaller(s))
    assert len(fewer) == len(s.events) and all(len(f.events) == len(s.events) - 1 for f in fewer)
    assert {e for f in fewer for e in f.events} == set(s.events) and Schedule.from_json(5, s.to_json()) == s
    failing = run("tandem", ["power-cut", "move"], None, ["S4"])
    shrunk = {"run": "tandem-1", "shrunk": [{"at": 1.0, "kind": "move", "role": "", "hold": 0.0}]}
    text = report.markdown([failing], None, shrunk={"tandem-1": {**shrunk, "attempts": [{}, {}]}})
    assert "- shrunk (`--shrink tandem-1`, 2 attempts): 1.0s move" in text


def test_l1_causes_are_told_apart() -> None:
    def l1(detail: str) -> dict[str, object]:
        return {"checker": "L1", "detail": detail}

    assert report.l1_cause(l1("not healthy within 75s of the heal")) == "late"
    assert (
        report.l1_cause(l1("failed action needs cleanup: drbd-r0_monitor_10000 on node1: degraded: x"))
        == "degraded"
    )
    assert report.l1_cause(l1("failed action needs cleanup: vm1_stop_0 on node1: error")) == "failed"
    assert report.l1_cause({"checker": "S1", "detail": "x"}) is None


def test_percentile_is_nearest_rank() -> None:
    assert report.percentile([], 50) is None
    assert report.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert report.percentile([float(x) for x in range(1, 11)], 90) == 9.0
    assert report.percentile([1.0, 9.0], 100) == 9.0


def test_report_writes_the_doc_and_plot(tmp_path: Path) -> None:
    (tmp_path / "runs.jsonl").write_text(json.dumps(run("tandem", ["partition"], 4.0, [])) + "\n")
    doc = report.write(tmp_path, tmp_path / "campaign.md")
    assert "| partition | tandem | 1 |" in doc.read_text()
    assert (tmp_path / "recovery.png").stat().st_size > 1000


def test_report_links_the_timeline_of_a_violation(tmp_path: Path) -> None:
    (tmp_path / "runs.jsonl").write_text(json.dumps(run("tandem", ["partition"], 4.0, ["S4"])) + "\n")
    (tmp_path / "timelines").mkdir()
    (tmp_path / "timelines" / "tandem-1.txt").write_text("  1.00s  node1    partition\n")
    text = report.write(tmp_path, tmp_path / "campaign.md").read_text()
    assert "### tandem-1: S4" in text
    assert "[campaign/timelines/tandem-1.txt](campaign/timelines/tandem-1.txt)" in text


def test_rejudge_recomputes_verdicts_from_kept_histories_and_drops_runs_without(tmp_path: Path) -> None:
    from lab.campaign.runner import keep_history, rejudge

    stale = {**run("tandem", ["power-cut"], None, ["L2"]), "run": "tandem-1"}
    lost = {**run("tandem", ["power-cut"], None, []), "run": "tandem-2"}
    (tmp_path / "runs.jsonl").write_text(json.dumps(stale) + "\n" + json.dumps(lost) + "\n")
    keep_history(tmp_path, "tandem-1", HEALTHY)
    assert rejudge(tmp_path) == (1, 1)
    (again,) = report.load(tmp_path / "runs.jsonl")
    assert (again["run"], again["violations"], again["recovery_s"]) == ("tandem-1", [], 0.0)


def test_three_nodes_run_the_readmes_tiebreaker_cluster() -> None:
    from lab.campaign.cli import parser
    from lab.campaign.runner import OursTiebreakerCluster, cluster_class, crm_for
    from lab.three_nodes import CRM_3NODE

    assert parser().parse_args(["--nodes", "3"]).nodes == 3
    assert cluster_class("tandem", 3) is OursTiebreakerCluster is cluster_class("anchors", 3)
    assert OursTiebreakerCluster.node_count == 3
    assert crm_for("tandem", 3) == CRM_3NODE.read_text()
    assert "clone-max=3" in crm_for("anchors", 3) and "ocf:linbit:drbd" in crm_for("anchors", 3)


def test_an_interrupted_campaign_ends_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from lab.campaign import cli

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "campaign", interrupted)
    assert cli.main(["--runs", "1", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("campaign: interrupted")
