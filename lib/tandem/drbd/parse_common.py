# SPDX-License-Identifier: GPL-2.0-or-later
"""What the four DRBD parsers share: state-name lookups, key:value tokens and the checks that keep
a truncated or garbled output from turning into a plausible but wrong state."""

from __future__ import annotations

from tandem.drbd.model import SUSPEND_REASONS, ConnState, ParseError, ReplState
from tandem.enums import StrEnum
from tandem.record import NamedTuple
from tandem.regex import lazy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import TypeVar

    E = TypeVar("E", bound=StrEnum)


# DRBD 8.x folds connection and replication into one `cs:` value; these are its connection-only states.
CS_CONNECTION_8X: Mapping[str, ConnState] = {
    "StandAlone": ConnState.STANDALONE,
    "Disconnecting": ConnState.DISCONNECTING,
    "Unconnected": ConnState.UNCONNECTED,
    "Timeout": ConnState.TIMEOUT,
    "BrokenPipe": ConnState.BROKEN_PIPE,
    "NetworkFailure": ConnState.NETWORK_FAILURE,
    "ProtocolError": ConnState.PROTOCOL_ERROR,
    "TearDown": ConnState.TEAR_DOWN,
    "WFConnection": ConnState.CONNECTING,
    "WFReportParams": ConnState.CONNECTING,
}

_ANSI = lazy(r"\x1b\[[0-9;]*m")


class Line(NamedTuple):
    """One line of input (or several joined continuation lines), numbered from 1 for error messages."""

    no: int
    text: str

    def error(self, message: str) -> ParseError:
        return ParseError(message, self.no, self.text)


def lines(text: str, what: str) -> Iterator[Line]:
    """Numbered lines of a text output, colours removed; refuses output cut in the middle of a line.

    Every drbdsetup output and /proc/drbd ends with a newline. Without it the last line may be cut
    anywhere (`minor:10` of `minor:1000`, `done:3` of `done:37.50`), so it cannot be trusted.
    """
    if text and not text.endswith("\n"):
        raw = text.split("\n")
        raise ParseError(f"{what} ends in the middle of a line (truncated output?)", len(raw), raw[-1])
    for no, raw_line in enumerate(text.split("\n")[:-1], start=1):
        yield Line(no, (_ANSI.sub("", raw_line) if "\x1b" in raw_line else raw_line).rstrip("\r"))


def state(cls: type[E], value: str, what: str, at: Line, aliases: Mapping[str, E] | None = None) -> E:
    """The enum member DRBD names `value`, or a ParseError: an unknown name is never guessed."""
    try:
        return cls(value)
    except ValueError:
        pass
    if aliases and value in aliases:
        return aliases[value]
    raise at.error(f"unknown {what} {value!r}")


def split_cs(value: str, at: Line) -> tuple[ConnState, ReplState]:
    """A DRBD 8.x `cs:` value as DRBD 9's connection + replication pair."""
    if value in CS_CONNECTION_8X:
        return CS_CONNECTION_8X[value], ReplState.OFF
    if value == "Connected":
        return ConnState.CONNECTED, ReplState.ESTABLISHED
    return ConnState.CONNECTED, state(ReplState, value, "connection state", at)


def key_values(tokens: list[str], at: Line) -> dict[str, str]:
    """`key:value` tokens (the value may hold more colons, e.g. `local:ipv4:10.0.0.1:7789`)."""
    out: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token.partition(":")
        if not sep or not key:
            raise at.error(f"expected key:value, got {token!r}")
        out[key] = value
    return out


def yes_no(value: str, key: str, at: Line) -> bool | None:
    """drbdsetup's yes/no flags; `unknown` (old kernels for client/peer-client) is None."""
    if value == "yes":
        return True
    if value == "no":
        return False
    if value == "unknown":
        return None
    raise at.error(f"{key}: expected yes or no, got {value!r}")


def integer(value: str, key: str, at: Line) -> int:
    if not (value.isascii() and value.isdigit()):
        raise at.error(f"{key}: expected a number, got {value!r}")
    return int(value)


def percent(value: str, key: str, at: Line) -> float:
    try:
        number = float(value)
    except ValueError:
        raise at.error(f"{key}: expected a percentage, got {value!r}") from None
    if not 0.0 <= number <= 100.0:
        raise at.error(f"{key}: {value} is not a percentage")
    return number


def suspended(value: str, at: Line) -> tuple[str, ...]:
    """`suspended:no` or a comma-joined list of reasons (`user,fencing`)."""
    if value == "no":
        return ()
    reasons = tuple(value.split(","))
    for reason in reasons:
        if reason not in SUSPEND_REASONS:
            raise at.error(f"unknown suspend reason {reason!r}")
    return reasons
