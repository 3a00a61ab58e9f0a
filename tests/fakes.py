# SPDX-License-Identifier: GPL-2.0-or-later
"""Test doubles shared by the tiers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tandem.ocf.runner import Result


@dataclass
class RecordingRunner:
    """A `tandem.ocf.runner.Runner` for tests: every call must be bounded (a DRBD, CIB or virsh command can
    hang; ours never wait forever), its argv is recorded in `calls`, and `answer` (the subclass's) says
    what it returns."""

    calls: list[tuple[str, ...]] = field(default_factory=list, kw_only=True)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Result:
        assert timeout is not None and timeout > 0, f"unbounded command {argv}"
        call = tuple(argv)
        self.calls.append(call)
        return self.answer(call, timeout)

    def start(self, argv: Sequence[str], *, timeout: float | None = None) -> Callable[[], Result]:
        """Recorded and answered at once, in call order: what the caller does meanwhile comes after it.
        Its result is collected once, as a real child's is."""
        results = [self.run(argv, timeout=timeout)]

        def wait() -> Result:
            assert results, f"the result of {argv} was collected twice"
            return results.pop()

        return wait

    def answer(self, argv: tuple[str, ...], timeout: float) -> Result:
        raise NotImplementedError
