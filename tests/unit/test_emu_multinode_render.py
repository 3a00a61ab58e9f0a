# SPDX-License-Identifier: GPL-2.0-or-later
"""The emulator shows multi-node states as drbd-utils prints them: each state of data/multinode (printed by
drbdsetup's own code, README there) is reached by DRBD's rules in the engine, and the node's view renders
byte for byte as the fixture, in status text (plain and --verbose), --json and events2 --now.

The harness's made-up counters replace the emulator's (both are invented numbers), and `blocked:upper` is
given where the fixture has a write queued: the emulator holds queued writes in the data plane, not in its
state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lab.drbd_emu import config, engine, view
from lab.drbd_emu.render import (
    Details,
    DeviceStats,
    PeerDeviceExtra,
    PeerDeviceStats,
    render_events2,
    render_status_json,
    render_status_text,
)

from tandem.drbd.model import Status
from tests.unit.emu_states import after_initial_sync, resource

DATA = Path(__file__).parent / "data" / "multinode"

CONF = """
resource r0 {
  net { protocol C; fencing dont-care; }
  options { quorum majority; on-no-quorum suspend-io; on-no-data-accessible suspend-io; }
  volume 0 { device minor 1000; disk /dev/sda; meta-disk internal; }
  on alice { node-id 0; address 10.1.1.31:7000; }
  on bob { node-id 1; address 10.1.1.32:7000; }
  on charlie { node-id 2; address 10.1.1.33:7000; volume 0 { disk none; } }
  connection-mesh { hosts alice bob charlie; }
}
"""

# drbdsetup_instrumented's counters (sectors halved to KiB where drbdsetup prints KiB)
HARNESS_DEVICE = DeviceStats(
    size=5, read=10, written=15, al_writes=40, bm_writes=50, upper_pending=60, lower_pending=70
)
HARNESS_PEER = PeerDeviceStats(received=5, sent=10, pending=30, unacked=40)


def load() -> config.ResourceConfig:
    return resource(CONF)


def up(cfg: config.ResourceConfig) -> dict[str, Any]:
    """alice, bob and charlie connected, alice and bob UpToDate after their initial sync (UG9)."""
    return after_initial_sync(cfg, stay_primary=False)


def cut(s: dict[str, Any], a: str, b: str) -> None:
    s["links"][engine.link_key(a, b)] = {"cut": True}
    engine.settle(s, 4000.0)


def client_primary(cfg: config.ResourceConfig) -> dict[str, Any]:
    s = up(cfg)
    assert engine.primary(s, cfg, "charlie", "r0", 3600.0) == []
    engine.become_primary(s, "charlie", "r0")
    engine.res_state(s, "charlie", "r0")["disks"]["0"]["open"] = 1  # type: ignore[index]
    engine.settle(s, 3600.0)
    return s


def client_primary_no_data(cfg: config.ResourceConfig) -> dict[str, Any]:
    s = client_primary(cfg)
    cut(s, "charlie", "alice")
    cut(s, "charlie", "bob")
    return s


def secondary_no_quorum(cfg: config.ResourceConfig) -> dict[str, Any]:
    s = up(cfg)
    cut(s, "alice", "bob")
    cut(s, "alice", "charlie")
    return s


SCENARIOS: dict[str, tuple[str, Callable[[config.ResourceConfig], dict[str, Any]], str]] = {
    "client-primary": ("charlie", client_primary, "no"),
    "client-primary-no-data": ("charlie", client_primary_no_data, "upper"),
    "storage-with-client-primary": ("alice", client_primary, "no"),
    "secondary-no-quorum": ("alice", secondary_no_quorum, "no"),
}


def shown(name: str) -> tuple[Status, Details]:
    node, build, blocked = SCENARIOS[name]
    cfg = load()
    status, d = view.node_view(build(cfg), node)
    details = Details(
        devices={k: replace(x, stats=replace(HARNESS_DEVICE, blocked=blocked)) for k, x in d.devices.items()},
        connections={k: replace(x, ap_in_flight=10, rs_in_flight=20) for k, x in d.connections.items()},
        peer_devices={k: PeerDeviceExtra(stats=HARNESS_PEER) for k in d.peer_devices},
    )
    return status, details


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_status_text_and_verbose_match(name: str) -> None:
    status, details = shown(name)
    assert (
        render_status_text(status, details=details) == (DATA / f"status-9-{name}.GENERATED.txt").read_text()
    )
    expected = (DATA / f"status-9-{name}-verbose.GENERATED.txt").read_text()
    assert render_status_text(status, details=details, verbose=True) == expected


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_status_json_matches(name: str) -> None:
    status, details = shown(name)
    assert (
        render_status_json(status, details=details) == (DATA / f"status-9-{name}.GENERATED.json").read_text()
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_events2_now_matches(name: str) -> None:
    status, details = shown(name)
    expected = (DATA / f"events2-9-now-{name}.GENERATED.txt").read_text()
    assert render_events2(status, details=details) == expected


def test_every_fixture_is_checked() -> None:
    outputs = {p.name for p in DATA.iterdir() if ".GENERATED." in p.name}
    assert len(outputs) == 4 * len(SCENARIOS)
