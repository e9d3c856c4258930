"""`Record`: the repr, == and hash of a frozen dataclass, written once in source.

@dataclass compiles every method it generates when the class is made: six for a frozen
class, about 0.7 ms, which the ~30 frozen dataclasses a no-op command imports paid at each
start. `@dataclass(frozen=True, repr=False, eq=False)` on a subclass of Record generates
only `__init__` and the frozen `__setattr__`/`__delattr__`; these three behave exactly as
the generated ones (fields in order, == only between instances of one class;
tests/unit/test_model_record.py).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

_NAMES: dict[type, tuple[str, ...]] = {}


class Record:
    """Base of frozen dataclasses declared with `repr=False, eq=False`."""

    __slots__ = ()

    def _names(self) -> tuple[str, ...]:
        names = _NAMES.get(type(self))
        if names is None:
            names = _NAMES[type(self)] = tuple(f.name for f in fields(self))  # type: ignore[arg-type]
        return names

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names())

    def __repr__(self) -> str:
        pairs = (f"{n}={getattr(self, n)!r}" for n in self._names())
        return f"{type(self).__qualname__}({', '.join(pairs)})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())
