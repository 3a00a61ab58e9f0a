# SPDX-License-Identifier: GPL-2.0-or-later
"""DRBD under a domain's disks: discovery, the start check, the migration-target check (recorded states)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.domain.config import Disk
from tandem.domain.storage import (
    DrbdRef,
    drbd_refs,
    find_connection,
    frozen,
    local_problems,
    primary_peers,
    resolve,
    target_problems,
)
from tandem.drbd.model import ConnState, DiskState, ReplState, Resource, Role, Status, data_peer, is_client
from tandem.drbd.parse import parse_status_json
from tandem.record import replace
from tests.unit.drbd_states import resources


def load(fixtures_dir: Path, name: str) -> Status:
    return parse_status_json((fixtures_dir / name).read_text())


def test_refs_from_disks() -> None:
    disks = (
        Disk("/dev/drbd/by-res/r0/0"),
        Disk("/dev/drbd/by-res/r1"),
        Disk("/dev/drbd1000"),
        Disk(None, drbd_resource="r2"),
        Disk("/dev/vg/lv"),
        Disk("/dev/drbd/by-res/r0/0"),
    )
    assert drbd_refs(disks) == (
        DrbdRef("r0", 0),
        DrbdRef("r1"),
        DrbdRef(minor=1000),
        DrbdRef("r2"),
    )
    # a udev name that resolves to a DRBD minor counts too
    assert drbd_refs((Disk("/dev/disk/by-id/x"),), realpath=lambda p: "/dev/drbd7") == (DrbdRef(minor=7),)


def test_resolve_minor_and_name(fixtures_dir: Path) -> None:
    status = load(fixtures_dir, "status-9-dual-primary-2node.GENERATED.json")
    assert resolve([DrbdRef(minor=1000), DrbdRef("r0", 0)], status) == (("r0",), ())
    names, missing = resolve([DrbdRef(minor=5), DrbdRef("nope")], status)
    assert names == () and len(missing) == 2 and "/dev/drbd5" in missing[0]


def test_dual_primary_allows_migration_to_the_peer(fixtures_dir: Path) -> None:
    status = load(fixtures_dir, "status-9-dual-primary-2node.GENERATED.json")
    assert target_problems(status, ["r0"], "bob") == []
    assert primary_peers(status, ["r0"]) == ("bob",)
    assert local_problems(status, ["r0"]) == []


def test_no_start_where_quorum_is_lost(fixtures_dir: Path) -> None:
    """A Primary that lost quorum fails (io-error) or holds (suspend-io) every I/O: a guest started there
    reads nothing at boot (tandem-16504), so a start waits for it as for frozen I/O. Leaving such a node by
    migration is still allowed."""
    status = load(fixtures_dir, "status-9-dual-primary-2node.GENERATED.json")
    res = status.resources[0]
    lost = tuple(replace(d, quorum=False) for d in res.devices)
    alone = replace(status, resources=(replace(res, devices=lost),))
    assert frozen(alone, ["r0"]) == ["r0 has lost quorum here"] and frozen(status, ["r0"]) == []
    held = replace(status, resources=(replace(res, devices=lost, suspended=("quorum",)),))
    assert frozen(held, ["r0"]) == ["r0 I/O is suspended (quorum)"]
    assert target_problems(alone, ["r0"], "bob") == []


@pytest.mark.parametrize(
    "fixture, target, expected",
    [
        ("status-9-healthy-3node-2vol.GENERATED.json", "bob", "r0 is Secondary on bob, not Primary"),
        ("status-9-degraded-connecting.GENERATED.json", "bob", "r0 connection to bob is Connecting"),
        ("status-9-synctarget-2node.GENERATED.json", "bob", "not Primary"),
        ("status-9-dual-primary-2node.GENERATED.json", "carol", None),  # the only connection: bob's
    ],
)
def test_target_refusals_say_what_is_missing(
    fixtures_dir: Path, fixture: str, target: str, expected: str | None
) -> None:
    problems = target_problems(load(fixtures_dir, fixture), ["r0"], target)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


def test_peer_disk_and_resync_problems(fixtures_dir: Path) -> None:
    status = load(fixtures_dir, "status-9-dual-primary-2node.GENERATED.json")
    res = status.resources[0]
    conn = res.connections[0]
    outdated = replace(conn, peer_devices=(replace(conn.peer_devices[0], peer_disk=DiskState.OUTDATED),))
    syncing = replace(conn, peer_devices=(replace(conn.peer_devices[0], replication=ReplState.SYNC_SOURCE),))
    for bad, words in ((outdated, "disk on bob is Outdated"), (syncing, "resyncing (SyncSource)")):
        changed = replace(status, resources=(replace(res, connections=(bad,)),))
        assert any(words in p for p in target_problems(changed, ["r0"], "bob"))
    secondary = replace(status, resources=(replace(res, role=Role.SECONDARY),))
    assert local_problems(secondary, ["r0"]) == [
        "r0 is Secondary here, not Primary (is the DRBD clone promoted here?)"
    ]
    assert any(p.startswith("r0 is Secondary here") for p in target_problems(secondary, ["r0"], "bob"))
    gone = replace(
        status, resources=(replace(res, connections=(replace(conn, connection=ConnState.STANDALONE),)),)
    )
    assert target_problems(gone, ["r0"], "bob") == ["r0 connection to bob is StandAlone"]
    assert target_problems(status, ["zz"], "bob") == ["DRBD resource zz is not configured here"]


def _client(status: Status, role: Role = Role.PRIMARY) -> Status:
    """The same status as seen on an intentional diskless client."""
    res = status.resources[0]
    devices = tuple(replace(d, disk=DiskState.DISKLESS, client=True) for d in res.devices)
    return replace(status, resources=(replace(res, role=role, devices=devices),))


def _target_client(status: Status, **kw: object) -> Status:
    """The source's view of a target that is a diskless client Primary."""
    res = status.resources[0]
    conn = res.connections[0]
    changes = {"peer_disk": DiskState.DISKLESS, "peer_client": True, **kw}
    pds = tuple(replace(p, **changes) for p in conn.peer_devices)
    return replace(status, resources=(replace(res, connections=(replace(conn, peer_devices=pds),)),))


def test_a_diskless_client_starts_only_with_a_connected_uptodate_peer(fixtures_dir: Path) -> None:
    status = load(fixtures_dir, "status-9-dual-primary-2node.GENERATED.json")
    client = _client(status)
    assert local_problems(client, ["r0"]) == []
    res = client.resources[0]
    cut = replace(
        client,
        resources=(
            replace(res, connections=(replace(res.connections[0], connection=ConnState.CONNECTING),)),
        ),
    )
    assert local_problems(cut, ["r0"]) == ["r0/0 is a diskless client here without a connected UpToDate peer"]
    # client:no is a diskful node whose disk failed: refused as before
    failed = replace(
        client, resources=(replace(res, devices=tuple(replace(d, client=False) for d in res.devices)),)
    )
    assert local_problems(failed, ["r0"]) == ["r0/0 disk is Diskless here"]


def test_migration_onto_a_diskless_client(fixtures_dir: Path) -> None:
    status = load(fixtures_dir, "status-9-dual-primary-2node.GENERATED.json")
    onto_client = _target_client(status)
    assert target_problems(onto_client, ["r0"], "bob") == []  # bob reads and writes through us
    # diskless to diskless (DRBD allows two client Primaries): our own data path is checked here
    assert target_problems(_client(onto_client), ["r0"], "bob") == [
        "r0/0 is a diskless client here without a connected UpToDate peer"
    ]
    both = _client(onto_client)
    alice = replace(status.resources[0].connections[0], peer="alice")  # a storage node, UpToDate
    res = both.resources[0]
    both = replace(both, resources=(replace(res, connections=(*res.connections, alice)),))
    assert target_problems(both, ["r0"], "bob") == []
    syncing = _target_client(status, replication=ReplState.WF_BITMAP_S)
    assert target_problems(syncing, ["r0"], "bob") == ["r0/0 replication to bob is WFBitMapS"]
    res = onto_client.resources[0]
    outdated_here = replace(
        onto_client,
        resources=(replace(res, devices=tuple(replace(d, disk=DiskState.OUTDATED) for d in res.devices)),),
    )
    assert "r0/0 on bob is a diskless client and the data here is Outdated, not UpToDate" in target_problems(
        outdated_here, ["r0"], "bob"
    )
    secondary = _target_client(
        replace(
            status,
            resources=(
                replace(
                    status.resources[0],
                    connections=(replace(status.resources[0].connections[0], peer_role=Role.SECONDARY),),
                ),
            ),
        )
    )
    assert target_problems(secondary, ["r0"], "bob") == ["r0 is Secondary on bob, not Primary"]
    not_client = _target_client(status, peer_client=False)
    assert target_problems(not_client, ["r0"], "bob") == ["r0/0 disk on bob is Diskless, not UpToDate"]


@given(resources())
def test_a_start_is_allowed_only_on_a_primary_with_data_here_or_through_a_peer(res: Resource) -> None:
    """Every state, clients included: no problem means Primary, and UpToDate data here or, on a diskless
    client, a connected UpToDate peer for every volume."""
    problems = local_problems(Status("json", None, (res,)), ["r0"])
    if not problems:
        assert res.role is Role.PRIMARY
        if is_client(res):
            assert all(data_peer(res, d.volume) for d in res.devices)
        else:
            assert all(d.disk is DiskState.UP_TO_DATE for d in res.devices)


@given(resources(), st.sampled_from(["peer0", "peer1"]))
def test_a_migration_target_is_a_primary_with_data_or_a_client_with_a_data_path(
    res: Resource, target: str
) -> None:
    problems = target_problems(Status("json", None, (res,)), ["r0"], target)
    if not problems:
        conn = find_connection(res, target)
        assert conn is not None and conn.connection is ConnState.CONNECTED and conn.peer_role is Role.PRIMARY
        assert conn.peer_devices
        for pd in conn.peer_devices:
            if pd.peer_disk is DiskState.UP_TO_DATE:
                assert not pd.replication.resyncing
            else:  # a client target reads through us, or through our own data peer (diskless to diskless)
                assert pd.peer_disk is DiskState.DISKLESS and pd.peer_client
                assert pd.replication is ReplState.ESTABLISHED
                here = next(d for d in res.devices if d.volume == pd.volume)
                assert here.disk is DiskState.UP_TO_DATE or (is_client(res) and data_peer(res, pd.volume))


def test_frozen_io_is_named_with_its_reasons(fixtures_dir: Path) -> None:
    status = load(fixtures_dir, "status-9-dual-primary-2node.GENERATED.json")
    assert frozen(status, ["r0"]) == []
    held = replace(status, resources=(replace(status.resources[0], suspended=("fencing",)),))
    assert frozen(held, ["r0", "other"]) == ["r0 I/O is suspended (fencing)"]


def test_a_source_whose_disk_failed_may_migrate_to_its_data_but_not_start(fixtures_dir: Path) -> None:
    """DRBD serves a Primary whose disk failed from the connected UpToDate peer: moving the VM there is the
    cure (the migration source needs no local data); a start on such a node is still refused."""
    status = load(fixtures_dir, "status-9-dual-primary-2node.GENERATED.json")
    res = status.resources[0]
    failed = replace(
        status,
        resources=(replace(res, devices=tuple(replace(d, disk=DiskState.DISKLESS) for d in res.devices)),),
    )
    target = res.connections[0].peer
    assert target is not None
    assert target_problems(failed, ["r0"], target) == []
    assert local_problems(failed, ["r0"]) == ["r0/0 disk is Diskless here"]
    cut = replace(
        failed,
        resources=(
            replace(
                failed.resources[0],
                connections=(replace(res.connections[0], connection=ConnState.CONNECTING),),
            ),
        ),
    )
    assert "r0/0 disk is Diskless here" in target_problems(cut, ["r0"], target)
