"""The frozen dataclasses a no-op command imports take repr, ==, hash and their frozenness
from one base written in source (`core.record.Record`, declared `@record`) rather than
generating them per class (start-up): they must behave exactly as the methods
@dataclass(frozen=True) generates."""

from __future__ import annotations

import dataclasses

import pytest

from syncer.adapters.store.runs import Revision
from syncer.core import model
from syncer.core.errors import Diagnostic
from syncer.core.record import Record
from syncer.core.redact import Redactor
from syncer.engine.options import ApplyOptions
from syncer.engine.project import Context, Planned
from syncer.engine.status import DefinitionStatus
from syncer.stages.expr import Expr
from syncer.stages.selfheal import Verdict
from syncer.stages.swarm import SwarmFile
from syncer.stages.tree import DirTree

MODEL = {c for c in vars(model).values() if isinstance(c, type) and dataclasses.is_dataclass(c)}
RECORDS = sorted(MODEL | {Diagnostic, Revision, Redactor, ApplyOptions, Context, Planned, DefinitionStatus, Expr, Verdict,
                          SwarmFile, DirTree}, key=lambda c: c.__name__)


def test_every_model_dataclass_is_a_record() -> None:
    assert len(MODEL) >= 19 and all(issubclass(c, Record) for c in RECORDS)


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_repr_eq_and_hash_are_the_generated_ones(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    twin = dataclasses.make_dataclass(cls.__name__, names, frozen=True)  # what @dataclass generates
    twin.__qualname__ = cls.__qualname__
    values = {name: f"{name}-{i}" for i, name in enumerate(names)}
    one, same, other = cls(**values), cls(**values), cls(**{**values, names[-1]: ("x", 1)})
    generated, generated_other = twin(**values), twin(**{**values, names[-1]: ("x", 1)})
    assert repr(one) == repr(generated) and repr(other) == repr(generated_other)
    assert hash(one) == hash(same) == hash(generated) and hash(other) == hash(generated_other)
    assert one == same and not one != same and one != other and not one == other
    assert one != generated  # another class never compares equal, as generated __eq__ says
    assert one.__eq__(tuple(values.values())) is NotImplemented
    for name in names:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(one, name, "changed")
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(one, name)
    with pytest.raises(dataclasses.FrozenInstanceError):  # nor is any attribute added
        one.added = 1  # type: ignore[attr-defined]
    assert one == same and dataclasses.replace(one, **{names[0]: "x"}) != one  # replace makes a new one
    with pytest.raises(TypeError):  # a field that cannot be hashed makes the record unhashable
        hash(cls(**{**values, names[0]: {}}))


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_nothing_but_init_is_generated_per_class(cls: type) -> None:
    """What start-up pays for: @dataclass compiles each method it generates. A record's class
    gets `__init__` only; its frozenness, repr, == and hash are Record's."""
    assert "__init__" in vars(cls)
    assert not {"__setattr__", "__delattr__", "__repr__", "__eq__", "__hash__"} & set(vars(cls))


def test_diagnostics_order_as_generated_order_does() -> None:
    twin = dataclasses.make_dataclass("Diagnostic", ["file", "line", "column", "message"], frozen=True, order=True)
    rows = [("b.yaml", 1, 2, "x"), ("a.yaml", 3, 1, "y"), ("a.yaml", 3, 1, "x"), ("a.yaml", 0, 0, "z"),
            ("a.yaml", 3, 1, "x")]
    assert [tuple(vars(d).values()) for d in sorted(Diagnostic(*r) for r in rows)] == \
        [tuple(vars(d).values()) for d in sorted(twin(*r) for r in rows)]
    one, two = Diagnostic(*rows[1]), Diagnostic(*rows[0])
    assert one < two and one <= two and two > one and two >= one and not one > two
    with pytest.raises(TypeError):
        assert one < rows[0]  # type: ignore[operator]
