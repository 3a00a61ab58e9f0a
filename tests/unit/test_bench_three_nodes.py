# SPDX-License-Identifier: GPL-2.0-or-later
"""bench.three_nodes' pure parts: the anchor's crm block, the outcome lines, the doc block."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.move import anchor_crm
from bench.three_nodes import BEGIN, END, AnchorTiebreakerCluster, Outcome, outcome_text, render, write_block
from lab.three_nodes import CRM_3NODE, Restart


def test_the_anchor_runs_the_readme_block_with_its_agents_and_one_promoted() -> None:
    crm = AnchorTiebreakerCluster.crm()
    assert "ocf:linbit:drbd" in crm and "ocf:heartbeat:VirtualDomain" in crm and "ocf:tandem" not in crm
    assert "promoted-max=1" in crm and "promoted-max=2" in CRM_3NODE.read_text()
    ours = anchor_crm(CRM_3NODE.read_text())
    assert crm == ours.replace("promoted-max=2", "promoted-max=1").replace(
        "allow-migrate=true", "allow-migrate=false"
    )
    assert AnchorTiebreakerCluster.promoted_max == 1 and AnchorTiebreakerCluster.node_count == 3


def test_outcome_text_lists_every_measurement() -> None:
    trips = [Restart("node1", "node3", 12.34, 40), Restart("node3", "node1", 9.0, 55)]
    assert outcome_text("ok", trips) == (
        "ok: source node1, target node3, outage_s 12.3, gen_found 40; "
        "source node3, target node1, outage_s 9.0, gen_found 55"
    )


def test_the_block_replaces_its_earlier_self(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# title\n\ntext\n")
    text = render({"ours": [Outcome("partition 2|1", "ok: fenced True", True, 0)]})
    write_block(text, doc)
    write_block(text.replace("fenced True", "fenced False"), doc)
    body = doc.read_text()
    assert body.count(BEGIN) == 1 and body.count(END) == 1 and "fenced False" in body
    assert body.startswith("# title\n\ntext\n\n" + BEGIN)


def test_single_primary_needs_a_dual_primary_block() -> None:
    from lab.three_nodes import single_primary

    with pytest.raises(ValueError, match="promoted-max=2 and allow-migrate=true"):
        single_primary("clone c p meta promoted-max=1")
