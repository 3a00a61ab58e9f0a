# SPDX-License-Identifier: GPL-2.0-or-later
"""lab/drbd_emu/store.py: the emulator's state in pieces, one per resource, read and written whole or by one
resource, always the same document to the rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from lab.drbd_emu import engine
from lab.drbd_emu.setup import two_node_conf
from lab.drbd_emu.store import merge, split

from tests.unit.emu_states import after_initial_sync, resource


def two_resources() -> dict[str, Any]:
    """r0 and s1 up and UpToDate on both nodes, a resync of s1 going on, a queued handler of r0."""
    st = after_initial_sync(resource(two_node_conf(net="127.0.0", minor=100, dual=True)), stay_primary=True)
    s1 = copy.deepcopy(st)
    for node, rs in s1["nodes"].items():
        st["nodes"][node]["s1"] = rs["r0"]
    for key, md in s1.get("meta", {}).items():
        node, _, vol = key.split("/")
        st["meta"][f"{node}/s1/{vol}"] = md
    st.setdefault("resyncs", {})["s1/0/node1/node2"] = {"start": 5.0, "total_kib": 4, "blocks": [3]}
    st["jobs"].append({"id": "j1", "node": "node1", "res": "r0", "handler": "fence-peer", "peer": "node2"})
    st["links"]["node1|node2"] = {"cut": False}
    return st


def test_split_and_merge_give_back_the_same_document() -> None:
    st = two_resources()
    top, parts = split(st)
    assert set(parts) == {"r0", "s1"}
    assert top["nodes"] == {"node1": {}, "node2": {}} and "meta" not in top and "jobs" not in top
    assert parts["s1"]["resyncs"] and not parts["r0"]["resyncs"] and parts["r0"]["jobs"][0]["id"] == "j1"
    assert json.dumps(merge(top, parts), sort_keys=True) == json.dumps(st, sort_keys=True)


def test_a_call_about_one_resource_reads_and_writes_its_piece_alone(tmp_path: Path) -> None:
    store = engine.Store(tmp_path)
    with store.locked() as st:
        st.update(two_resources())
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["r0.json", "s1.json"]
    s1_before = (tmp_path / "res" / "s1.json").read_text()
    with store.locked(only="r0") as st:
        assert set(st["nodes"]["node1"]) == {"r0"} and "s1/0/node1/node2" not in st.get("resyncs", {})
        st["nodes"]["node1"]["r0"]["role"] = "Secondary"
    assert (tmp_path / "res" / "s1.json").read_text() == s1_before
    whole = store.read()
    assert whole["nodes"]["node1"]["r0"]["role"] == "Secondary" and "s1" in whole["nodes"]["node2"]
    assert whole["resyncs"] == {"s1/0/node1/node2": {"start": 5.0, "total_kib": 4, "blocks": [3]}}


def test_a_call_about_one_resource_cannot_write_another(tmp_path: Path) -> None:
    store = engine.Store(tmp_path)
    with store.locked() as st:
        st.update(two_resources())
    with pytest.raises(ValueError, match="a call about r0 changed"), store.locked(only="r0") as st:
        st["nodes"]["node1"]["x9"] = st["nodes"]["node1"]["r0"]


def test_a_resource_gone_with_its_meta_data_leaves_no_piece(tmp_path: Path) -> None:
    store = engine.Store(tmp_path)
    with store.locked() as st:
        st.update(two_resources())
    with store.locked() as st:
        for rs in st["nodes"].values():
            rs.pop("s1")
        st["meta"] = {k: v for k, v in st["meta"].items() if "/s1/" not in k}
        st.pop("resyncs")
    assert [p.name for p in (tmp_path / "res").iterdir()] == ["r0.json"]
    assert set(store.read()["nodes"]["node2"]) == {"r0"}


def test_one_document_written_before_the_split_is_read_whole(tmp_path: Path) -> None:
    st = two_resources()
    (tmp_path / "state.json").write_text(json.dumps(st, sort_keys=True))
    store = engine.Store(tmp_path)
    with store.locked(only="r0") as got:
        assert set(got["nodes"]["node1"]) == {"r0", "s1"}  # whole: no piece of r0 alone yet
    assert json.dumps(store.read(), sort_keys=True) == json.dumps(st, sort_keys=True)
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["r0.json", "s1.json"]
