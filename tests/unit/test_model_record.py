"""The frozen dataclasses a no-op command imports take repr, == and hash from one base
written in source (`core.record.Record`) rather than generating them per class (start-up):
they must behave exactly as the methods @dataclass(frozen=True) generates."""

from __future__ import annotations

import dataclasses

import pytest

from syncer.adapters.store.runs import Revision
from syncer.core import model
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
RECORDS = sorted(MODEL | {Revision, Redactor, ApplyOptions, Context, Planned, DefinitionStatus, Expr, Verdict,
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
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(one, names[0], "changed")
    with pytest.raises(TypeError):  # a field that cannot be hashed makes the record unhashable
        hash(cls(**{**values, names[0]: {}}))
