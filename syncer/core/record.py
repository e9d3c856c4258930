"""`record`: a frozen dataclass whose repr, ==, hash and frozenness are written once in source.

@dataclass compiles every method it generates when the class is made: six for a frozen
class, about 0.7 ms, which the ~30 frozen dataclasses a no-op command imports paid at each
start. A class declared `@record` (a subclass of `Record`) has only its `__init__`
generated; `Record` gives the rest, behaving exactly as the generated methods (fields in
order, == only between instances of one class, a field set once by `__init__` and never
again, no attribute added or deleted: tests/unit/test_model_record.py). Type checkers read
`@record` as `@dataclass(frozen=True)` (`dataclass_transform`).
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import Any, TypeVar, dataclass_transform

_NAMES: dict[type, tuple[str, ...]] = {}
_FIELDS: dict[type, frozenset[str]] = {}

R = TypeVar("R", bound=type)


@dataclass_transform(frozen_default=True, eq_default=False, field_specifiers=(field,))
def record(cls: R) -> R:
    """`@dataclass(frozen=True, repr=False, eq=False)` for a subclass of Record, without the
    generated `__setattr__`/`__delattr__` (two compiled methods per class at every start)."""
    dataclass(repr=False, eq=False)(cls)  # made in place (no slots): the class itself
    _FIELDS[cls] = frozenset(f.name for f in fields(cls))
    return cls


class Record:
    """Base of the classes declared `@record`."""

    __slots__ = ()

    def _names(self) -> tuple[str, ...]:
        names = _NAMES.get(type(self))
        if names is None:
            names = _NAMES[type(self)] = tuple(f.name for f in fields(self))  # type: ignore[arg-type]
        return names

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names())

    def __setattr__(self, name: str, value: Any) -> None:
        # only `__init__`'s first assignment of each field (`cached_property` writes the
        # instance's __dict__ itself, as on a frozen dataclass)
        if name in self.__dict__ or name not in _FIELDS.get(type(self), ()):
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        pairs = (f"{n}={getattr(self, n)!r}" for n in self._names())
        return f"{type(self).__qualname__}({', '.join(pairs)})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())
