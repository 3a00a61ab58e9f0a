# SPDX-License-Identifier: GPL-2.0-or-later
"""lab.leftovers: what a session left is what its end has that its start had not."""

from __future__ import annotations

import os
from pathlib import Path

from lab.leftovers import Snapshot, left, parse_loops, snapshot


def snap(**fields: list[str]) -> Snapshot:
    empty: dict[str, frozenset[str]] = {k: frozenset() for k in ("netns", "loops", "dev", "processes")}
    return Snapshot(**{**empty, **{k: frozenset(v) for k, v in fields.items()}})


def test_only_what_is_new_is_left() -> None:
    before = snap(netns=["tcamp-node1"], loops=["/dev/loop0 /var/img"])
    after = snap(
        netns=["tcamp-node1", "tlt-node2"],
        loops=["/dev/loop0 /var/img", "/dev/loop3 /tmp/tlt-lab/emu/nodes/node1/data/r0-0"],
        dev=["/dev/drbd9177"],
    )
    assert left(before, after) == [
        "netns: tlt-node2",
        "loops: /dev/loop3 /tmp/tlt-lab/emu/nodes/node1/data/r0-0",
        "dev: /dev/drbd9177",
    ]
    assert left(after, before) == []  # things that went away are no leak


def test_losetup_lines() -> None:
    text = "/dev/loop0  /tmp/x/nodes/n1/data/r0-0 (deleted)\n\n/dev/loop1 /var/a\n"
    assert parse_loops(text) == ["/dev/loop0 /tmp/x/nodes/n1/data/r0-0 (deleted)", "/dev/loop1 /var/a"]


def test_dev_entries_and_namespaces_from_the_file_system(tmp_path: Path) -> None:
    dev, run = tmp_path / "dev", tmp_path / "run"
    (dev / "drbd" / "by-res" / "r0").mkdir(parents=True)
    (dev / "drbd9177").write_text("")
    os.symlink("/dev/drbd9177", dev / "drbd" / "by-res" / "r0" / "0")
    os.symlink("/run/tlt/pids/dev-log", dev / "log")
    (run / "netns").mkdir(parents=True)
    (run / "netns" / "tlt-hub").write_text("")
    found = snapshot(dev=dev, run=run)
    assert found.netns == {"tlt-hub"}
    assert found.dev == {
        f"{dev}/drbd",
        f"{dev}/drbd9177",
        f"{dev}/drbd/by-res/r0/0 -> /dev/drbd9177",
        f"{dev}/log -> /run/tlt/pids/dev-log",
    }
