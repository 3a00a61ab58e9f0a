# SPDX-License-Identifier: GPL-2.0-or-later
"""The README stays true: its parameter tables are what the agents declare, and its configuration blocks are
the ones the lab runs."""

from __future__ import annotations

import re

from tandem import fence
from tandem.docs import agent_metadata, markdown_params, parse_metadata, update_readme
from tests.conftest import TOP

README = TOP / "README.md"


def block(text: str, name: str) -> str:
    match = re.search(rf"<!-- {name} -->\n```\n(.*?)```\n<!-- /{name} -->", text, re.DOTALL)
    assert match, f"README has no {name} block"
    return match.group(1)


def test_parameter_tables_are_current() -> None:
    text = README.read_text()
    tables = {name: markdown_params(parse_metadata(agent_metadata(name))) for name in ("drbd", "domain")}
    assert update_readme(text, tables) == text, "run: tandem docs --readme README.md"


def test_vm_crm_block_is_the_labs_configuration() -> None:
    assert block(README.read_text(), "crm-config") == (TOP / "lab" / "config" / "crm.txt").read_text()


def test_three_node_blocks_are_the_labs_configuration() -> None:
    text = README.read_text()
    assert block(text, "drbd-3node") == (TOP / "lab" / "config" / "drbd-3node.txt").read_text()
    assert block(text, "crm-config-3node") == (TOP / "lab" / "config" / "crm-3node.txt").read_text()


def test_the_anchor_runs_the_three_node_block_without_tandems_handlers() -> None:
    from lab.three_nodes import without_handlers

    ours = block(README.read_text(), "drbd-3node")
    anchors = without_handlers(ours)
    assert "tandem-disconnected" in ours and "tandem" not in anchors and "handlers" not in anchors
    assert anchors.splitlines() == ours.splitlines()[:2]  # net and options as they are


def test_pcs_block_is_the_labs_script() -> None:
    match = re.search(
        r"<!-- pcs-config -->\n```sh\n(.*?)```\n<!-- /pcs-config -->", README.read_text(), re.DOTALL
    )
    assert match, "README has no pcs-config block"
    assert match.group(1) == (TOP / "lab" / "config" / "pcs.sh").read_text()


def test_drbd_timeouts_exceed_the_fence_peer_handlers() -> None:
    """DRBD's rule: monitor and promote timeouts above the fence-peer handler's, in every README block."""
    text = README.read_text()
    for name in ("crm-drbd", "crm-config", "pcs-config", "crm-config-3node"):
        body = text.split(f"<!-- {name} -->", 1)[1].split(f"<!-- /{name} -->", 1)[0]
        drbd = body.split("ocf:tandem:drbd", 1)[1].split("ocf:tandem:domain", 1)[0]
        ops = re.findall(r"\b(monitor|promote)\b[^\\]*?timeout=(\d+)s", drbd)
        assert sorted({op for op, _ in ops}) == ["monitor", "promote"], (name, ops)
        assert all(int(seconds) > fence.TIMEOUT for _, seconds in ops), (name, ops)


def test_drbd_crm_block_is_what_the_drbd_lab_test_runs() -> None:
    from tests.lab.test_drbd_lab import TANDEM_CIB

    assert block(README.read_text(), "crm-drbd") == TANDEM_CIB


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text().split("## ", 1)[0]
    assert "./run demo" in head and "./run test" in head
    assert "exec ./run test" in (TOP / ".ci" / "run").read_text()
