"""The revision a deployment is recorded at is its definition's, not that of a container it
removes: after an interrupted recreate, the converging apply's first action removes the
leftover `<name>_syncer-new`, which carries the abandoned spec's revision (QA: the deployment
was recorded at that revision, and `syncer rollback` then deployed a spec that never ran)."""

from __future__ import annotations

from typing import Any

from syncer.core.model import Action
from syncer.core.redact import NOTHING
from syncer.engine.apply import Applier


class _Recorder:
    def log(self, dep: Any, line: str) -> None:
        pass

    def finish(self, dep: Any, **_: Any) -> None:
        pass


class _Stub:
    """The parts of an Applier `_deploy` uses."""

    def __init__(self) -> None:
        self.begun: list[int] = []
        self.recorder, self.redact = _Recorder(), NOTHING

    def _begin(self, name: str, server: str, revision: int, kinds: list[str]) -> str:
        self.begun.append(revision)
        return "deploy_1"

    def _one(self, a: Action, log: Any) -> None:
        pass


def test_a_deployment_is_recorded_at_its_definitions_revision_not_a_removed_leftovers() -> None:
    stub = _Stub()
    actions = [Action("remove", "local", "db", "db_syncer-new", 3, "left over from an interrupted recreate"),
               Action("start", "local", "db", "db", 4, "container is exited")]
    assert Applier._deploy(stub, "db", actions).ok  # type: ignore[arg-type]
    assert stub.begun == [4]
    # a definition whose actions all remove (a scale down) is recorded at what they carry
    assert Applier._deploy(stub, "db", [Action("remove", "local", "db", "db-2", 4, "replica 2 is beyond replicas=1")]
                           ).ok  # type: ignore[arg-type]
    assert stub.begun == [4, 4]
