"""The promotion-score policy, property-tested over every combination of DRBD states."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.drbd.model import ConnState, DiskState, Resource, Role
from tandem.drbd.policy import Tiers, promotion_score
from tandem.record import replace
from tests.unit.drbd_states import healthy, resources


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
        assert res.devices and all(d.disk is DiskState.UP_TO_DATE for d in res.devices)
        assert res.role in (Role.PRIMARY, Role.SECONDARY)
        assert res.quorum


@given(resources(), resources(role=Role.PRIMARY), tiers(), st.booleans())
def test_primary_uptodate_scores_at_least_every_other_state(other, primary, t, remove_if_peer_primary):
    primary = replace(
        primary,
        devices=tuple(replace(d, disk=DiskState.UP_TO_DATE, quorum=None) for d in primary.devices),
    )
    kw = {"remove_if_peer_primary": remove_if_peer_primary}
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
