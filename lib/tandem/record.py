# SPDX-License-Identifier: GPL-2.0-or-later
"""Immutable records without the `dataclasses` module, whose import (with `inspect`) costs an agent more
than its whole monitor otherwise does.

Type checkers see typing's NamedTuple; at run time the same collections.namedtuple is built here without
importing typing. Records are tuples: compare, hash and `_replace` like typing's NamedTuple.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar
    from typing import NamedTuple as NamedTuple

    R = TypeVar("R", bound=NamedTuple)
else:
    # What the class statement puts in the namespace that is not a field or a method.
    _NOT_MEMBERS = frozenset({"__module__", "__qualname__", "__annotations__", "__doc__", "__orig_bases__"})

    class _RecordType(type):
        def __new__(mcs, name, bases, namespace):
            if not bases:  # NamedTuple itself
                return super().__new__(mcs, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", {}))
            defaults = [namespace[f] for f in fields if f in namespace]
            cls = namedtuple(name, fields, defaults=defaults, module=namespace.get("__module__"))
            cls.__qualname__ = namespace.get("__qualname__", name)
            if namespace.get("__doc__"):
                cls.__doc__ = namespace["__doc__"]
            for key, value in namespace.items():
                if key not in _NOT_MEMBERS and key not in fields:
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_RecordType):
        """Base of a record class: `class Point(NamedTuple): x: int; y: int = 0`."""


__all__ = ["NamedTuple", "replace"]


def replace(record: R, **changes: Any) -> R:
    """A copy with some fields changed (dataclasses.replace for records)."""
    return record._replace(**changes)
