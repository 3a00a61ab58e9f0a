# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared test set-up: tiers are marked by folder, paths to the checkout and ../shared, and a check that a
session with lab tests leaves the host as it found it."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import settings

# no per-example deadline: a loaded 2-core machine (CI, or the lab running beside) makes timing flaky, and
# speed is the bench's to measure, not a test's
settings.register_profile("tandem", deadline=None)
settings.load_profile("tandem")

TOP = Path(__file__).resolve().parent.parent
LIB = TOP / "lib"
AGENTS = TOP / "agents"
SHARED = TOP.parent / "shared"
FIXTURES = SHARED / "fixtures" / "drbd"


def _interrupt(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def pytest_configure() -> None:
    """SIGTERM (a `kill`, a CI's timeout) stops the run like Ctrl-C, so that the fixtures' teardown runs:
    the agent tier's namespaces, emulator kernels and loop devices, the lab's nodes."""
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(str(item.fspath)).relative_to(TOP / "tests").parts[0]
        if tier in ("unit", "agent", "lab"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"{FIXTURES} is missing: tests need ../shared beside the checkout")
    return FIXTURES


@pytest.fixture(scope="session", autouse=True)
def host_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """A session that runs lab tests must leave no namespace, loop device, /dev entry or node process behind
    (lab.leftovers), checked against a snapshot from its start. Only then: lab tests hold the lab lock, so no
    campaign runs beside them and makes things of its own meanwhile."""
    if not any(item.get_closest_marker("lab") for item in request.session.items):
        yield
        return
    from lab import leftovers

    before = leftovers.snapshot()
    yield
    end = time.monotonic() + 15  # exiting processes and autoclear loop devices take a moment
    while (found := leftovers.left(before, leftovers.snapshot())) and time.monotonic() < end:
        time.sleep(0.5)
    if found:
        pytest.fail("the session left on the host:\n" + "\n".join(found[:40]))
