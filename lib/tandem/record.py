# SPDX-License-Identifier: GPL-2.0-or-later
"""Immutable records without the `dataclasses` module (whose import, with `inspect`, costs an agent more
than its whole monitor otherwise does) and without `collections.namedtuple` (whose import, and the source it
compiles for every class, cost an agent's start a few milliseconds more).

Type checkers see typing's NamedTuple; at run time a record class is a tuple subclass with a property per
field: records compare, hash, unpack and `_replace` like typing's NamedTuple.
"""

from __future__ import annotations

from _operator import itemgetter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar
    from typing import NamedTuple as NamedTuple

    R = TypeVar("R", bound=NamedTuple)
else:
    # What the class statement puts in the namespace that is not a field or a member.
    _NOT_MEMBERS = frozenset({"__annotations__", "__orig_bases__"})

    class _Record(tuple):
        __slots__ = ()
        _fields = ()
        _field_defaults: dict[str, object] = {}  # noqa: RUF012 (read only)

        def __new__(cls, *args, **kwargs):
            fields = cls._fields
            if len(args) > len(fields):
                raise TypeError(f"{cls.__name__} takes {len(fields)} values, got {len(args)}")
            values = list(args)
            for field in fields[len(args) :]:
                if field in kwargs:
                    values.append(kwargs.pop(field))
                elif field in cls._field_defaults:
                    values.append(cls._field_defaults[field])
                else:
                    raise TypeError(f"{cls.__name__}() is missing the value of {field!r}")
            if kwargs:
                raise TypeError(f"{cls.__name__}() got unexpected or repeated {', '.join(kwargs)}")
            return tuple.__new__(cls, values)

        def _replace(self, **changes):
            values = [changes.pop(f, v) for f, v in zip(self._fields, self, strict=True)]
            if changes:
                raise TypeError(f"{type(self).__name__} has no field {', '.join(changes)}")
            return tuple.__new__(type(self), values)

        def _asdict(self):
            return dict(zip(self._fields, self, strict=True))

        def __getnewargs__(self):
            return tuple(self)

        def __repr__(self):
            pairs = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self, strict=True))
            return f"{type(self).__name__}({pairs})"

    class _RecordType(type):
        def __new__(mcs, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(mcs, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", {}))
            body = {k: v for k, v in namespace.items() if k not in _NOT_MEMBERS and k not in fields}
            body.update(
                __slots__=(),
                __match_args__=fields,
                _fields=fields,
                _field_defaults={f: namespace[f] for f in fields if f in namespace},
            )
            body.update((f, property(itemgetter(i), doc=f"field {f}")) for i, f in enumerate(fields))
            return type(name, (_Record,), body)

    class NamedTuple(metaclass=_RecordType):
        """Base of a record class: `class Point(NamedTuple): x: int; y: int = 0`."""


__all__ = ["NamedTuple", "replace"]


def replace(record: R, **changes: Any) -> R:
    """A copy with some fields changed (dataclasses.replace for records)."""
    return record._replace(**changes)
