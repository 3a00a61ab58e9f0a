# SPDX-License-Identifier: GPL-2.0-or-later
"""Regular expressions compiled on first use. Importing `re` (with enum and functools) and compiling costs an
agent's start milliseconds; a steady monitor uses none of the module-level patterns declared this way, so it
never pays for them."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from re import Pattern


class _Lazy:
    __slots__ = ("_compiled", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: Pattern[str] | None = None

    def __getattr__(self, name: str) -> object:
        if self._compiled is None:
            import re

            self._compiled = re.compile(self._source)
        return getattr(self._compiled, name)


def lazy(source: str) -> Pattern[str]:
    """A pattern that compiles when first used; flags go inline: `(?m)`, `(?i)`, `(?x)`."""
    return _Lazy(source)  # type: ignore[return-value]  # it forwards every attribute to the compiled pattern
