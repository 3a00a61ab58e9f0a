# SPDX-License-Identifier: GPL-2.0-or-later
"""The promotion-score policy, property-tested over every combination of DRBD states."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.drbd.model import ConnState, DiskState, Resource, Role, is_client
from tandem.drbd.policy import DEFAULT_DISKLESS, Tiers, peers_in_role, promotion_score, unreachable_volumes
from tandem.record import replace
from tests.unit.drbd_states import client_of, healthy, resources


@st.composite
def tiers(draw: st.DrawFn) -> Tiers:
    values = sorted(draw(st.lists(st.integers(1, 1000000), min_size=3, max_size=3)))
    return Tiers(*values)


def score(res: Resource | None, t: Tiers | None = None, **kw: object) -> int:
    """Removed counts as -1, below every written score."""
    decision = promotion_score(res, t or Tiers(), **kw)  # type: ignore[arg-type]
    return -1 if decision.score is None else decision.score


@given(resources(), tiers(), st.booleans(), st.integers(1, 2))
def test_never_a_positive_score_without_uptodate_data(res, t, remove_if_peer_primary, promoted_max):
    decision = promotion_score(
        res, t, remove_if_peer_primary=remove_if_peer_primary, promoted_max=promoted_max
    )
    if decision.score is not None:
        assert decision.score > 0
        assert res.role in (Role.PRIMARY, Role.SECONDARY)
        assert res.quorum
        if is_client(res):  # its data is a connected peer's, for every volume
            assert decision.score == DEFAULT_DISKLESS and not unreachable_volumes(res)
        else:
            assert res.devices and all(d.disk is DiskState.UP_TO_DATE for d in res.devices)


@given(resources(client=True), tiers(), st.integers(1, 1000000), st.booleans(), st.integers(1, 2))
def test_a_client_has_its_own_tier_only_while_data_is_reachable_with_quorum(
    res, t, diskless, remove_if_peer_primary, promoted_max
):
    decision = promotion_score(
        res, t, diskless=diskless, remove_if_peer_primary=remove_if_peer_primary, promoted_max=promoted_max
    )
    reachable = res.role in (Role.PRIMARY, Role.SECONDARY) and res.quorum and not unreachable_volumes(res)
    assert decision.score in ((None, diskless) if reachable else (None,))
    slots_full = promoted_max == 2 and len(peers_in_role(res, Role.PRIMARY)) >= 2
    yields = (
        promoted_max == 2
        and bool(peers_in_role(res, Role.SECONDARY, with_data=True))
        and (res.role is Role.SECONDARY or all(d.open is False for d in res.devices))
    )
    if reachable and (
        (res.role is Role.PRIMARY and not yields)
        or (
            res.role is Role.SECONDARY
            and not slots_full
            and not yields
            and (not remove_if_peer_primary or promoted_max == 2)
        )
    ):
        assert decision.score == diskless, decision.reason
    if not res.quorum and res.role in (Role.PRIMARY, Role.SECONDARY):
        assert decision.reason == "quorum lost"


@given(resources(role=Role.SECONDARY), tiers(), st.none() | st.integers(1, 1000000))
def test_consistent_while_reconciling_keeps_at_most_the_score_it_had(res, t, previous):
    """DRBD 9.2.19+ holds a survivor at Consistent after a Primary loss: its score neither vanishes nor
    grows, a node that had none gets none, and Outdated/Inconsistent data never scores."""
    decision = promotion_score(res, t, previous=previous)
    disks = {d.disk for d in res.devices}
    if decision.score is not None and DiskState.CONSISTENT in disks:
        assert previous is not None and decision.score == min(previous, t.uptodate)
        assert disks <= {DiskState.CONSISTENT, DiskState.UP_TO_DATE} and res.quorum
        assert not any(c.peer_role is Role.PRIMARY for c in res.connections)
    if disks & {DiskState.OUTDATED, DiskState.INCONSISTENT} or not res.quorum:
        assert decision.score is None


def test_the_reconciling_survivor_keeps_its_score():
    survivor = replace(
        healthy(Role.SECONDARY),
        devices=tuple(replace(d, disk=DiskState.CONSISTENT) for d in healthy(Role.SECONDARY).devices),
    )
    survivor = replace(
        survivor,
        connections=tuple(
            replace(c, connection=ConnState.CONNECTING, peer_role=Role.UNKNOWN, peer_devices=())
            for c in survivor.connections
        ),
    )
    assert score(survivor, previous=10000) == 10000
    assert score(survivor, previous=1000) == 1000
    assert score(survivor) == -1  # no score before: none now
    with_primary = replace(healthy(Role.SECONDARY, peer_role=Role.PRIMARY), devices=survivor.devices)
    assert score(with_primary, previous=10000) == -1  # Consistent next to a Primary is no survivor


def test_client_tier():
    client = client_of(healthy(Role.SECONDARY))
    assert score(client) == DEFAULT_DISKLESS == 100 < Tiers().peer_unknown
    assert score(client, diskless=7) == 7
    assert score(replace(client, role=Role.PRIMARY)) == 100
    assert promotion_score(replace(client, connections=())).reason == (
        "diskless client without a connected UpToDate peer (volume 0)"
    )
    lost = replace(client, devices=tuple(replace(d, quorum=False) for d in client.devices))
    assert score(lost) == -1
    failed = replace(client, devices=tuple(replace(d, client=False) for d in client.devices))
    assert score(failed) == -1  # a diskful node whose disk failed is no client


@given(resources(), resources(role=Role.PRIMARY), tiers(), st.booleans())
def test_primary_uptodate_scores_at_least_every_other_state(other, primary, t, remove_if_peer_primary):
    primary = replace(
        primary,
        devices=tuple(replace(d, disk=DiskState.UP_TO_DATE, quorum=None) for d in primary.devices),
    )
    kw = {"remove_if_peer_primary": remove_if_peer_primary, "diskless": t.peer_unknown}
    assert score(primary, t, **kw) == t.primary
    assert score(other, t, **kw) <= score(primary, t, **kw)


@given(resources(), tiers())
def test_every_decision_is_explained(res, t):
    decision = promotion_score(res, t)
    assert decision.reason
    assert decision.render() == ("remove" if decision.score is None else str(decision.score))


def test_tiers_follow_the_documented_table():
    assert promotion_score(None).score is None
    assert score(healthy(Role.PRIMARY)) == 10000
    assert score(healthy(Role.SECONDARY)) == 10000
    gone = healthy()
    disconnected = replace(
        gone,
        connections=tuple(
            replace(
                c,
                connection=ConnState.CONNECTING,
                peer_role=Role.UNKNOWN,
                peer_devices=tuple(replace(p, peer_disk=DiskState.DUNKNOWN) for p in c.peer_devices),
            )
            for c in gone.connections
        ),
    )
    assert score(disconnected) == 1000
    # A peer outdated by fencing is known: we are the best copy.
    outdated_peer = replace(
        disconnected,
        connections=tuple(
            replace(c, peer_devices=tuple(replace(p, peer_disk=DiskState.OUTDATED) for p in c.peer_devices))
            for c in disconnected.connections
        ),
    )
    assert score(outdated_peer) == 10000
    for disk in DiskState:
        if disk is not DiskState.UP_TO_DATE:
            res = replace(healthy(), devices=tuple(replace(d, disk=disk) for d in healthy().devices))
            assert promotion_score(res).score is None, disk


def test_one_volume_not_uptodate_removes_the_score():
    res = healthy(volumes=2)
    res = replace(res, devices=(res.devices[0], replace(res.devices[1], disk=DiskState.CONSISTENT)))
    decision = promotion_score(res)
    assert decision.score is None
    assert "Consistent" in decision.reason


def test_quorum_lost_removes_the_score():
    res = healthy(Role.PRIMARY)
    res = replace(res, devices=tuple(replace(d, quorum=False) for d in res.devices))
    assert promotion_score(res).score is None
    assert promotion_score(res).reason == "quorum lost"


def test_remove_if_peer_primary_only_in_single_primary_mode():
    res = healthy(Role.SECONDARY, peer_role=Role.PRIMARY)
    assert score(res) == 10000
    assert promotion_score(res, remove_if_peer_primary=True).score is None
    assert score(res, remove_if_peer_primary=True, promoted_max=2) == 10000


def three_nodes(me: Resource, *peer_roles: tuple[Role, bool]) -> Resource:
    """`me` with one connected UpToDate peer per (role, client) pair: a client peer shows Diskless."""
    template = healthy().connections[0]
    conns = []
    for i, (role, client) in enumerate(peer_roles):
        disk = DiskState.DISKLESS if client else DiskState.UP_TO_DATE
        devices = tuple(replace(p, peer_disk=disk, peer_client=client) for p in template.peer_devices)
        conns.append(replace(template, peer=f"peer{i}", peer_role=role, peer_devices=devices))
    return replace(me, connections=tuple(conns))


def test_a_secondary_has_no_score_while_the_primary_slots_are_full():
    """Three nodes, promoted-max=2: the spare (a third node with data, or the client) gets no score while two
    peers are Primary, so scores never ask Pacemaker to demote one instance and promote another in one
    transition (with a live migration in it, Pacemaker 2.1's graph loops); it gets its score back when a
    slot is free."""
    p, s = Role.PRIMARY, Role.SECONDARY
    spare, client = healthy(), client_of(healthy())
    for me in (spare, client):
        for other in (False, True):  # a client Primary holds a slot too
            full = three_nodes(me, (p, False), (p, other))
            assert promotion_score(full, promoted_max=2).reason == (
                "the Primary slots are full (peer0, peer1 Primary, promoted-max=2)"
            )
        assert score(three_nodes(me, (p, False)), promoted_max=2) > 0  # the other data node is away
        assert score(three_nodes(me, (p, False), (p, False)), promoted_max=1) > 0  # remove_if_peer_primary's
    assert (
        score(three_nodes(healthy(p), (p, False), (s, False)), promoted_max=2) == 10000
    )  # a Primary keeps it


def test_an_idle_client_primary_yields_its_slot_to_a_secondary_with_data():
    """The client took a free slot (a data node was away); once that node is back, UpToDate and Secondary,
    the client, if no VM holds its device open, gives the slot up: demoted in one transition, the data
    node promoted in the next. A client the VM runs on keeps it."""
    p, s = Role.PRIMARY, Role.SECONDARY
    client = client_of(healthy(p))
    idle = replace(client, devices=tuple(replace(d, open=False) for d in client.devices))
    busy = replace(client, devices=tuple(replace(d, open=True) for d in client.devices))
    back = three_nodes(idle, (p, False), (s, False))
    assert promotion_score(back, promoted_max=2).reason == (
        "diskless client not in use while peer1 with data is Secondary"
    )
    assert score(three_nodes(busy, (p, False), (s, False)), promoted_max=2) == 100
    assert score(three_nodes(client, (p, False), (s, False)), promoted_max=2) == 100  # open unknown: kept
    resyncing = three_nodes(idle, (p, False), (s, False))
    conns = resyncing.connections
    inconsistent = tuple(replace(x, peer_disk=DiskState.INCONSISTENT) for x in conns[1].peer_devices)
    resyncing = replace(resyncing, connections=(conns[0], replace(conns[1], peer_devices=inconsistent)))
    assert score(resyncing, promoted_max=2) == 100  # that node is not ready yet
    assert score(back, promoted_max=1) == 100  # single primary: its score is lower than that node's anyway
    # demoted, it does not take the slot back while that node is Secondary (no flapping when that node
    # cannot be promoted: a ban, maintenance); it does once that node is gone
    assert score(replace(back, role=s), promoted_max=2) == -1
    assert score(three_nodes(replace(idle, role=s), (p, False)), promoted_max=2) == 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1000 10000 10000", Tiers()), ("1,2,3", Tiers(1, 2, 3)), (" 5 5 5 ", Tiers(5, 5, 5))],
)
def test_tiers_parse(text, expected):
    assert Tiers.parse(text) == expected


@pytest.mark.parametrize("text", ["", "1 2", "1 2 3 4", "3 2 1", "0 1 2", "-1 2 3", "a b c", "1 2 2000000"])
def test_tiers_reject_bad_input(text):
    with pytest.raises(ValueError, match=r"."):
        Tiers.parse(text)
