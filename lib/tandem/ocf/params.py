# SPDX-License-Identifier: GPL-2.0-or-later
"""Instance parameters: declared once, parsed from OCF_RESKEY_* into typed values, rendered into metadata."""

from __future__ import annotations

from tandem.enums import Enum
from tandem.ocf.codes import configured
from tandem.record import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

# What ocf_is_true accepts (any case), plus y and t.
TRUE_WORDS = frozenset({"1", "yes", "true", "on", "ja", "y", "t"})
FALSE_WORDS = frozenset({"0", "no", "false", "off", "n", "f"})
_UNIT_SECONDS = {"ms": 0.001, "msec": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


class Kind(Enum):
    """How a raw string becomes a value; `content` is the metadata type (the DTD knows only these three)."""

    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    SECONDS = "seconds"
    CHOICE = "choice"
    WORDS = "words"

    @property
    def content(self) -> str:
        return self.value if self in (Kind.STRING, Kind.INTEGER, Kind.BOOLEAN) else "string"


def parse_bool(raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{raw!r} is not a boolean (use true or false)")


def parse_seconds(raw: str) -> float:
    """Pacemaker-style durations: "30", "30s", "500ms", "2min", "1h" (a number, then maybe a unit)."""
    text = raw.strip()
    split = len(text)
    while split and text[split - 1].isalpha():
        split -= 1
    number, unit = text[:split].rstrip(), text[split:].lower() or "s"
    whole, dot, fraction = number.partition(".")
    if unit not in _UNIT_SECONDS or not whole.isdecimal() or (dot and not fraction.isdecimal()):
        raise ValueError(f"{raw!r} is not a duration (e.g. 30, 30s, 500ms, 2min)")
    return float(number) * _UNIT_SECONDS[unit]


def parse_int(raw: str) -> int:
    text = raw.strip()
    digits = text[1:] if text[:1] in ("-", "+") else text
    if not digits.isdecimal():
        raise ValueError(f"{raw!r} is not an integer")
    return int(text)


def parse_words(raw: str) -> tuple[str, ...]:
    """Words separated by blanks or commas."""
    return tuple(raw.replace(",", " ").split())


LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
ALNUM = LOWER.upper() + LOWER + DIGITS


class Chars(NamedTuple):
    """The spelling a string parameter must have (names, paths: what ends up on a command line): its first
    character from `first`, the others from `rest`, at most `longest` characters (0: no limit)."""

    first: str
    rest: str
    longest: int = 0
    empty: bool = False  # whether the empty string is allowed

    def allows(self, text: str) -> bool:
        if not text:
            return self.empty
        return (
            text[0] in self.first
            and all(c in self.rest for c in text[1:])
            and not (self.longest and len(text) > self.longest)
        )


class Param(NamedTuple):
    """One instance parameter. `default` is written as a user would write it and parsed like input."""

    name: str
    shortdesc: str
    longdesc: str
    kind: Kind = Kind.STRING
    default: str | None = None
    required: bool = False
    unique: bool = False
    choices: tuple[str, ...] = ()
    chars: Chars | None = None
    # Extra check on the parsed value: returns an error message, or None when the value is fine.
    check: Callable[[Any], str | None] | None = None

    def parse(self, raw: str) -> Any:
        if self.chars is not None and not self.chars.allows(raw):
            raise ValueError(f"{raw!r} has characters or a form that is not allowed")
        value: Any
        match self.kind:
            case Kind.STRING:
                value = raw
            case Kind.INTEGER:
                value = parse_int(raw)
            case Kind.BOOLEAN:
                value = parse_bool(raw)
            case Kind.SECONDS:
                value = parse_seconds(raw)
            case Kind.CHOICE:
                if raw not in self.choices:
                    raise ValueError(f"{raw!r} is not one of {', '.join(self.choices)}")
                value = raw
            case Kind.WORDS:
                value = parse_words(raw)
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise ValueError(problem)
        return value

    def describe(self) -> str:
        """The longdesc as shown in metadata, with the allowed values spelled out for choices."""
        if self.kind is Kind.CHOICE:
            return f"{self.longdesc} Allowed values: {', '.join(self.choices)}."
        return self.longdesc


class Params:
    """Parsed values; a parameter that failed to parse raises OCF_ERR_CONFIGURED only when it is used.

    That lets stop work on a resource whose configuration went bad, instead of failing (and fencing the node).
    """

    def __init__(self, values: Mapping[str, Any], errors: Mapping[str, str]) -> None:
        self._values = dict(values)
        self._errors = dict(errors)

    @classmethod
    def parse(cls, decls: tuple[Param, ...], env: Mapping[str, str]) -> Params:
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for decl in decls:
            raw = env.get(f"OCF_RESKEY_{decl.name}") or None  # empty means unset, as in the shell agents
            if raw is None:
                if decl.required:
                    errors[decl.name] = f"parameter {decl.name} is required"
                    continue
                raw = decl.default
            if raw is None:
                values[decl.name] = None
                continue
            try:
                values[decl.name] = decl.parse(raw)
            except ValueError as exc:
                errors[decl.name] = f"parameter {decl.name}: {exc}"
        return cls(values, errors)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(self._errors.values())

    def check(self) -> None:
        """Raise for the first bad parameter (validate-all and every action but stop)."""
        for message in self._errors.values():
            raise configured(message)

    def get(self, name: str) -> Any:
        if name in self._errors:
            raise configured(self._errors[name])
        return self._values[name]

    def text(self, name: str) -> str:
        value = self.get(name)
        if not isinstance(value, str):
            raise configured(f"parameter {name} is not set")
        return value

    def opt_text(self, name: str) -> str | None:
        value = self.get(name)
        return value if isinstance(value, str) and value else None

    def integer(self, name: str) -> int:
        value = self.get(name)
        assert isinstance(value, int)
        return value

    def flag(self, name: str) -> bool:
        value = self.get(name)
        assert isinstance(value, bool)
        return value

    def seconds(self, name: str) -> float:
        value = self.get(name)
        assert isinstance(value, float)
        return value

    def words(self, name: str) -> tuple[str, ...]:
        value = self.get(name)
        return value if isinstance(value, tuple) else ()
