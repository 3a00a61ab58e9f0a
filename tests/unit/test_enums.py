# SPDX-License-Identifier: GPL-2.0-or-later
"""tandem.enums and tandem.record stand in for enum and typing.NamedTuple at run time: they must behave the
same for what the agents do with them. Each check runs the same declaration through both."""

from __future__ import annotations

import copy
import enum
import pickle
from collections import namedtuple
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem import enums
from tandem.drbd.model import ConnState, DiskState, ReplState, Role
from tandem.ocf.codes import Rc
from tandem.ocf.params import Kind
from tandem.record import NamedTuple, replace


def declare(base: Any, values: dict[str, Any]) -> Any:
    """A class like `class Demo(base): A = ...; B = ...` with a property and a method, as the agents write."""
    body = type(base).__prepare__("Demo", (base,))  # enum's own namespace type for the standard ones
    extra = {"twice": property(lambda self: (self.name, self.name)), "label": lambda self: f"<{self.value}>"}
    for key, value in {"__module__": __name__, "__qualname__": "Demo", **values, **extra}.items():
        body[key] = value
    return type(base)("Demo", (base,), body)


CASES = [
    (enums.IntEnum, enum.IntEnum, {"OK": 0, "BAD": 1, "DEGRADED": 190}),
    (enums.StrEnum, enum.StrEnum, {"PRIMARY": "Primary", "SECONDARY": "Secondary", "EMPTY": ""}),
    (enums.Enum, enum.Enum, {"STRING": "string", "INTEGER": "integer"}),
]


def observe(cls: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Everything tandem relies on, as plain data."""
    members = list(cls)
    first = members[0]
    seen: dict[str, Any] = {
        "names": [m.name for m in members],
        "values": [m.value for m in members],
        "len": len(cls),
        "by value": [cls(v) is getattr(cls, k) for k, v in values.items()],
        "by name": [cls[k] is getattr(cls, k) for k in values],
        "itself": cls(first) is first,
        "str": [str(m) for m in members],
        "format": [f"{m}|{m!s}" for m in members],
        "repr": [repr(m).replace("enum.", "") for m in members],
        "bool": [bool(m) for m in members],
        "property": first.twice,
        "method": first.label(),
        "member of": [m in cls for m in members],
        "copies": [copy.copy(m) is m and copy.deepcopy(m) is m for m in members],
        "isinstance": [isinstance(m, cls) for m in members],
    }
    with pytest.raises(ValueError, match="is not a valid"):
        cls("no such value")
    with pytest.raises(KeyError):
        cls["NO_SUCH_NAME"]
    if isinstance(first, int | str):
        pairs = zip(members, values.values(), strict=True)
        seen["equal to value"] = [m == v and hash(m) == hash(v) for m, v in pairs]
        seen["sorted"] = [m.name for m in sorted(members)]
    return seen


@pytest.mark.parametrize(("ours", "std", "values"), CASES, ids=["IntEnum", "StrEnum", "Enum"])
def test_the_runtime_enums_behave_like_the_enum_module(ours: Any, std: Any, values: dict[str, Any]) -> None:
    assert observe(declare(ours, values), values) == observe(declare(std, values), values)


@pytest.mark.parametrize("cls", [Rc, Role, DiskState, ConnState, ReplState, Kind])
def test_the_agents_enums_are_the_light_ones_at_run_time(cls: Any) -> None:
    assert not isinstance(cls, enum.EnumMeta)
    assert [cls(m.value) for m in cls] == list(cls)
    assert all(pickle.loads(pickle.dumps(m)) is m for m in cls)


class Point(NamedTuple):
    """A record with a default, a method and a property."""

    x: int
    y: int = 0
    label: str = "p"

    def moved(self, by: int) -> Point:
        return replace(self, x=self.x + by)

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


Std = namedtuple("Std", ["x", "y", "label"], defaults=[0, "p"])


@given(st.integers(), st.integers(), st.text(max_size=3))
def test_records_behave_like_namedtuples(x: int, y: int, label: str) -> None:
    ours, std = Point(x, y, label), Std(x, y, label)
    assert tuple(ours) == tuple(std) and hash(ours) == hash(std)
    assert repr(ours) == repr(std).replace("Std(", "Point(", 1)
    assert tuple(Point(x)) == tuple(Std(x)) and tuple(Point(x, label=label)) == tuple(Std(x, label=label))
    assert tuple(Point(y=y, x=x)) == tuple(Std(y=y, x=x))
    assert tuple(ours._replace(y=1)) == tuple(std._replace(y=1)) and ours.moved(1).x == x + 1
    assert ours._asdict() == std._asdict() and Point._fields == Std._fields
    assert copy.copy(ours) == ours and pickle.loads(pickle.dumps(ours)) == ours
    assert (ours.x, ours.y, ours.label, ours.norm1) == (x, y, label, abs(x) + abs(y))
    match ours:
        case Point(a, b, c):
            assert (a, b, c) == (x, y, label)


@pytest.mark.parametrize(
    "call",
    [
        lambda: Point(),  # type: ignore[call-arg]
        lambda: Point(1, 2, "a", 4),  # type: ignore[call-arg]
        lambda: Point(1, x=2),  # type: ignore[misc]
        lambda: Point(1, z=2),  # type: ignore[call-arg]
    ],
    ids=["missing", "too many", "repeated", "unknown"],
)
def test_records_refuse_what_namedtuples_refuse(call: Any) -> None:
    with pytest.raises(TypeError):
        call()
    with pytest.raises(TypeError):
        Point(1)._replace(z=1)  # type: ignore[call-arg]
