# SPDX-License-Identifier: GPL-2.0-or-later
"""Enumerations without the `enum` module, whose import (with functools and collections) and class
creation cost an agent's monitor about as much as the interpreter's own start.

Type checkers see the standard Enum, IntEnum and StrEnum; at run time these small classes give the same
behaviour for what tandem uses: members as singletons of their class (an int or str subclass for IntEnum and
StrEnum), `.name` and `.value`, lookup by value (`Role("Primary")`, ValueError when unknown) and by name
(`Role["PRIMARY"]`), iteration in definition order, and the standard str, format and repr.
`tests/unit/test_enums.py` checks them against the enum module.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from enum import Enum as Enum
    from enum import IntEnum as IntEnum
    from enum import StrEnum as StrEnum
else:

    def _is_member(key, value):
        """A plain value in the class body; methods, properties and _sunder_ or __dunder__ names are not."""
        return not (key[:1] == key[-1:] == "_") and not hasattr(value, "__get__")

    class _EnumType(type):
        def __new__(mcs, name, bases, namespace):
            body = {k: v for k, v in namespace.items() if not _is_member(k, v)}
            cls = super().__new__(mcs, name, bases, body)
            members = {}
            for key, value in namespace.items():
                if _is_member(key, value):
                    member = cls._new_member(value)
                    member._name_, member._value_ = key, value
                    type.__setattr__(cls, key, member)
                    members[key] = member
            cls.__members__ = members
            cls._value2member_map_ = {m._value_: m for m in members.values()}
            return cls

        def __call__(cls, value):
            if isinstance(value, cls):
                return value
            try:
                return cls._value2member_map_[value]
            except (KeyError, TypeError):
                raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

        def __getitem__(cls, name):
            return cls.__members__[name]

        def __iter__(cls):
            return iter(cls.__members__.values())

        def __len__(cls):
            return len(cls.__members__)

        def __contains__(cls, member):
            return isinstance(member, cls) and member._name_ in cls.__members__

    class Enum(metaclass=_EnumType):
        @classmethod
        def _new_member(cls, value):
            return object.__new__(cls)

        @property
        def name(self):
            return self._name_

        @property
        def value(self):
            return self._value_

        def __repr__(self):
            return f"<{type(self).__name__}.{self._name_}: {self._value_!r}>"

        def __str__(self):
            return f"{type(self).__name__}.{self._name_}"

        def __format__(self, spec):
            return format(str(self), spec)

        def __reduce_ex__(self, protocol):
            return type(self), (self._value_,)

        def __copy__(self):
            return self

        def __deepcopy__(self, memo):
            return self

    class IntEnum(int, Enum):
        @classmethod
        def _new_member(cls, value):
            return int.__new__(cls, value)

        __repr__ = Enum.__repr__
        __str__ = int.__repr__
        __format__ = int.__format__

    class StrEnum(str, Enum):
        @classmethod
        def _new_member(cls, value):
            return str.__new__(cls, value)

        __repr__ = Enum.__repr__
        __str__ = str.__str__
        __format__ = str.__format__


__all__ = ["Enum", "IntEnum", "StrEnum"]
