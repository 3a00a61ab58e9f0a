# SPDX-License-Identifier: GPL-2.0-or-later
"""The monitor verdict over every combination of DRBD states, and the clone/config checks."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.drbd.health import allows_two_primaries, clone_limits, fencing_policy, verdict
from tandem.drbd.model import ConnState, DiskState, ReplState, Resource, Role, data_peer, is_client
from tandem.drbd.policy import promotion_score
from tandem.ocf.codes import Rc
from tandem.record import replace
from tests.unit.drbd_states import client_of, healthy, resources

PROMOTED_CODES = {Rc.RUNNING_PROMOTED, Rc.FAILED_PROMOTED, Rc.DEGRADED_PROMOTED}
UNPROMOTED_CODES = {Rc.SUCCESS, Rc.DEGRADED}


@given(resources(), st.integers(1, 2))
def test_the_code_always_matches_the_role(res, promoted_max):
    v = verdict(res, promoted_max=promoted_max)
    if res.role is Role.PRIMARY:
        assert v.rc in PROMOTED_CODES
    elif res.role is Role.SECONDARY:
        assert v.rc in UNPROMOTED_CODES
    elif res.role is Role.UNCONFIGURED:
        assert v.rc is Rc.NOT_RUNNING
    else:
        assert v.rc is Rc.ERR_GENERIC
    # A code that is not plain healthy or stopped always says why, on one line.
    assert bool(v.reason) == (v.rc not in (Rc.SUCCESS, Rc.RUNNING_PROMOTED, Rc.NOT_RUNNING))
    assert "\n" not in v.reason


@given(resources(role=Role.PRIMARY))
def test_a_primary_without_its_disk_is_degraded_and_unpromotable(res):
    """Never 9 for a lost disk, served by a peer or not: the removed score makes Pacemaker demote it (a
    failed monitor there stalls a new DC's demote, see the module docstring)."""
    lost = [d for d in res.devices if d.disk in (DiskState.DISKLESS, DiskState.FAILED)]
    if not lost:
        return
    v = verdict(res, promoted_max=2)
    unserved = [d for d in lost if data_peer(res, d.volume) is None]
    if v.rc is Rc.FAILED_PROMOTED:  # for another reason only
        assert "disk" not in v.reason and "without a connected UpToDate peer" not in v.reason
    else:
        assert v.rc is Rc.DEGRADED_PROMOTED
        assert ("without a connected UpToDate peer" in v.reason) == bool(unserved)
        assert "I/O served by peer" in v.reason or unserved or is_client(res)
    if unserved or not is_client(res):
        assert promotion_score(res, promoted_max=2).score is None  # so Pacemaker moves users away, demotes


@given(resources(client=True, role=Role.PRIMARY) | resources(client=True), st.integers(1, 2))
def test_a_client_is_healthy_exactly_while_data_is_reachable_with_quorum(res, promoted_max):
    """Every state of an intentional diskless client: never 'local disk Diskless'; a Primary that lost its
    data degraded (or failed for another reason) and unpromotable; 0/8 only with an UpToDate peer for every
    volume and quorum."""
    assert is_client(res)
    v = verdict(res, promoted_max=promoted_max)
    reachable = all(data_peer(res, d.volume) for d in res.devices)
    assert "local disk" not in v.reason
    if res.role is Role.PRIMARY and not reachable:
        assert v.rc is Rc.FAILED_PROMOTED or "diskless client Primary without" in v.reason
        assert promotion_score(res, promoted_max=promoted_max).score is None
    if v.healthy:
        assert reachable and res.quorum
    if (not reachable or not res.quorum) and res.role in (Role.PRIMARY, Role.SECONDARY):
        assert not v.healthy and v.reason


def test_healthy_clients_and_a_failed_disk_that_is_no_client():
    served = client_of(healthy(Role.SECONDARY))
    assert verdict(served).rc is Rc.SUCCESS
    assert verdict(replace(served, role=Role.PRIMARY)).rc is Rc.RUNNING_PROMOTED
    alone = replace(served, connections=())
    assert (
        verdict(alone).rc is Rc.DEGRADED
        and "without a connected UpToDate peer (volume 0)" in verdict(alone).reason
    )
    v = verdict(replace(alone, role=Role.PRIMARY))
    assert (
        v.rc is Rc.DEGRADED_PROMOTED
        and "diskless client Primary without a connected UpToDate peer (volume 0)" in v.reason
    )
    no_quorum = replace(served, devices=tuple(replace(d, quorum=False) for d in served.devices))
    assert verdict(no_quorum).rc is Rc.DEGRADED and "quorum lost" in verdict(no_quorum).reason
    # client:no is a diskful node whose disk failed: as before, degraded with its I/O served by the peer
    failed = replace(
        served, role=Role.PRIMARY, devices=tuple(replace(d, client=False) for d in served.devices)
    )
    v = verdict(failed)
    assert (
        v.rc is Rc.DEGRADED_PROMOTED
        and "local disk Diskless" in v.reason
        and "I/O served by peer bob" in v.reason
    )


def test_a_primary_whose_lost_disk_the_peer_serves_is_degraded():
    res = healthy(Role.PRIMARY, peer_role=Role.PRIMARY)
    res = replace(res, devices=tuple(replace(d, disk=DiskState.DISKLESS) for d in res.devices))
    v = verdict(res, promoted_max=2)
    assert v.rc is Rc.DEGRADED_PROMOTED and "I/O served by peer bob" in v.reason
    gone = verdict(replace(res, connections=()), promoted_max=2)
    assert gone.rc is Rc.DEGRADED_PROMOTED
    assert "no data under a Primary without a connected UpToDate peer (volume 0)" in gone.reason


def test_healthy_states():
    assert verdict(None).rc is Rc.NOT_RUNNING
    assert verdict(healthy(Role.SECONDARY)).rc is Rc.SUCCESS
    assert verdict(healthy(Role.PRIMARY)).rc is Rc.RUNNING_PROMOTED
    assert verdict(healthy(Role.SECONDARY, peer_role=Role.PRIMARY)).rc is Rc.SUCCESS
    assert verdict(healthy(Role.PRIMARY, peer_role=Role.PRIMARY), promoted_max=2).rc is Rc.RUNNING_PROMOTED


def test_unexpected_peer_primary_fails_a_single_primary():
    v = verdict(healthy(Role.PRIMARY, peer_role=Role.PRIMARY), promoted_max=1)
    assert v.rc is Rc.FAILED_PROMOTED
    assert "unexpected peer Primary: bob" in v.reason


@pytest.mark.parametrize(
    ("suspended", "rc"), [("user", 9), ("no-data", 191), ("quorum", 9), ("unknown", 9), ("fencing", 191)]
)
def test_suspended_io(suspended, rc):
    res = replace(healthy(Role.PRIMARY), suspended=(suspended,))
    v = verdict(res)
    assert v.rc == rc
    assert "suspended" in v.reason or "frozen" in v.reason


def _conn(res: Resource, **kw: Any) -> Resource:
    return replace(res, connections=tuple(replace(c, **kw) for c in res.connections))


def _pd(res: Resource, **kw: Any) -> Resource:
    return _conn(res, peer_devices=tuple(replace(p, **kw) for c in res.connections for p in c.peer_devices))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda r: _conn(r, connection=ConnState.STANDALONE, peer_role=Role.UNKNOWN),
            "StandAlone towards bob",
        ),
        (lambda r: _conn(r, connection=ConnState.CONNECTING, peer_role=Role.UNKNOWN), "bob disconnected"),
        (
            lambda r: _pd(r, replication=ReplState.SYNC_SOURCE, peer_disk=DiskState.INCONSISTENT, done=37.5),
            "resync SyncSource with bob 37.5%",
        ),
        (lambda r: _pd(r, peer_disk=DiskState.OUTDATED), "peer bob disk Outdated"),
        (lambda r: replace(r, devices=tuple(replace(d, quorum=False) for d in r.devices)), "quorum lost"),
        (lambda r: replace(r, connections=()), "no peer connection"),
    ],
)
@pytest.mark.parametrize("role", [Role.PRIMARY, Role.SECONDARY])
def test_degraded_states_are_named(change, words, role):
    v = verdict(change(healthy(role)))
    assert v.rc is (Rc.DEGRADED_PROMOTED if role is Role.PRIMARY else Rc.DEGRADED)
    assert words in v.reason


def test_a_secondary_with_outdated_data_is_degraded_not_failed():
    res = healthy(Role.SECONDARY)
    res = replace(res, devices=tuple(replace(d, disk=DiskState.OUTDATED) for d in res.devices))
    v = verdict(res)
    assert v.rc is Rc.DEGRADED
    assert "local disk Outdated" in v.reason


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ((1, 1, 2, 1), None),
        ((2, 1, 2, 1), None),
        ((None, None, None, None), None),
        ((1, 1, 3, 1), None),
        ((2, 1, 3, 1), None),
        ((2, 1, 4, 1), None),
        ((2, 1, 5, 1), "clone-max <= 4"),
        ((3, 1, 3, 1), "at most two Primaries"),
        ((1, 2, 2, 1), "promoted-node-max"),
        ((1, 1, 2, 2), "clone-node-max"),
    ],
)
def test_clone_limits(args, problem):
    found = clone_limits(*args)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


DUMP = """resource r0 {
    net {
        protocol           C;
        %s
        fencing            resource-and-stonith;
    }
}
"""


@pytest.mark.parametrize(
    ("line", "allowed"),
    [
        ("allow-two-primaries yes;", True),
        ("allow-two-primaries;", True),
        ("allow-two-primaries no;", False),
        ("", False),
        ("# allow-two-primaries yes;", False),
    ],
)
def test_allow_two_primaries(line, allowed):
    assert allows_two_primaries(DUMP % line) is allowed
    assert fencing_policy(DUMP % line) == "resource-and-stonith"


def test_fencing_default():
    assert fencing_policy("resource r0 { }") == "dont-care"


@pytest.mark.parametrize(
    ("fixture", "promoted_max", "rc", "words"),
    [
        ("status-9-dual-primary-2node.GENERATED.json", 2, Rc.RUNNING_PROMOTED, ""),
        ("status-9-dual-primary-2node.GENERATED.json", 1, Rc.FAILED_PROMOTED, "unexpected peer Primary: bob"),
        (
            "status-9-primary-suspended-fencing.GENERATED.json",
            1,
            Rc.DEGRADED_PROMOTED,
            "StandAlone towards bob",
        ),
        ("status-9-syncsource-3node.GENERATED.json", 1, Rc.DEGRADED_PROMOTED, "resync SyncSource with bob"),
        ("status-9-synctarget-2node.GENERATED.json", 1, Rc.DEGRADED, "local disk Inconsistent"),
        ("status-9-degraded-connecting.GENERATED.json", 1, Rc.DEGRADED_PROMOTED, "disconnected (Connecting)"),
        ("status-9-secondary-with-diskless-peer.GENERATED.json", 1, Rc.SUCCESS, ""),  # a client peer is fine
        ("status-9-healthy-3node-2vol.GENERATED.json", 1, Rc.RUNNING_PROMOTED, ""),
    ],
)
def test_verdicts_on_real_outputs(fixtures_dir, fixture, promoted_max, rc, words):
    """The fixtures as drbdsetup prints them, through the same parser the agent uses."""
    from tandem.drbd.parse import parse

    res = parse((fixtures_dir / fixture).read_text()).resources[0]
    v = verdict(res, promoted_max=promoted_max)
    assert v.rc is rc, v.reason
    assert words in v.reason
