# SPDX-License-Identifier: GPL-2.0-or-later
"""Unit tests write their agents' and handlers' state files (locks, caches, PLACED) under their own tmp_path,
never in the host's /run/resource-agents."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_rsctmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HA_RSCTMP", str(tmp_path / "rsctmp"))
