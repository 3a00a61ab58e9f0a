# SPDX-License-Identifier: GPL-2.0-or-later
"""Emulator engine states the unit tests start from: a resource from drbd.conf text, and every node up and
connected after the initial full sync (DRBD 9 user's guide, "initial device synchronization")."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from lab.drbd_emu import config, engine


def resource(text: str) -> config.ResourceConfig:
    """r0 of a drbd.conf given as text."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(text)
    try:
        return config.load(f.name)["r0"]
    finally:
        Path(f.name).unlink()


def after_initial_sync(cfg: config.ResourceConfig, *, stay_primary: bool, t: float = 0.0) -> dict[str, Any]:
    """Every node attached and connected; the first node with a disk forced Primary, the full sync done by
    t + 3600 (its unfence-peer call dropped), then Secondary again unless `stay_primary`."""
    s = engine.new_state()
    for n in cfg.hosts:
        s["nodes"].setdefault(n, {})["r0"] = engine.new_resource(cfg, n)
        engine.attach(s, n, "r0", t)
        engine.connect(s, cfg, n, "r0")
    engine.settle(s, t)
    first = next(n for n, h in cfg.hosts.items() if h.volumes[0].disk != "none")
    engine.primary(s, cfg, first, "r0", t, force=True)
    engine.become_primary(s, first, "r0")
    engine.settle(s, t)
    engine.settle(s, t + 3600)
    if not stay_primary:
        engine.secondary(s, first, "r0", t + 3600)
        engine.settle(s, t + 3600)
    return s
