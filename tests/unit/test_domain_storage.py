"""DRBD under a domain's disks: discovery, the start check, the migration-target check (recorded states)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.domain.config import Disk
from tandem.domain.storage import (
    DrbdRef,
    drbd_refs,
    local_problems,
    primary_peers,
    resolve,
    target_problems,
)
from tandem.drbd.model import ConnState, DiskState, ReplState, Role, Status
from tandem.drbd.parse import parse_status_json
from tandem.record import replace


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
