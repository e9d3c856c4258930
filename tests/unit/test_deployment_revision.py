"""The revision a deployment is recorded at is its definition's, not that of a container it
removes: after an interrupted recreate, the converging apply's first action removes the
leftover `<name>_syncer-new`, which carries the abandoned spec's revision (QA: the deployment
was recorded at that revision, and `syncer rollback` then deployed a spec that never ran)."""

from __future__ import annotations

from typing import Any

from syncer.core.model import Action
from syncer.core.redact import NOTHING
from syncer.engine.apply import Applier
from syncer.engine.readiness import ActionFailed


class _Recorder:
    def log(self, dep: Any, line: str) -> None:
        pass

    def finish(self, dep: Any, **_: Any) -> None:
        pass


class _Stub:
    """The parts of an Applier `_deploy` uses."""

    def __init__(self) -> None:
        self.begun: list[int] = []
        self.recorder, self.redact, self.swarms = _Recorder(), NOTHING, frozenset[str]()
        self.fails = ""  # the container whose action fails, its old container restored

    def _begin(self, name: str, server: str, revision: int, kinds: list[str]) -> str:
        self.begun.append(revision)
        return "deploy_1"

    def _one(self, a: Action, log: Any) -> None:
        if a.container == self.fails:
            raise ActionFailed(f"{a.container}: new container failed (unhealthy); old container restored",
                               rolled_back=True)


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


def test_a_replica_rolled_back_after_another_was_replaced_says_the_deployment_was_partly_rolled_back() -> None:
    """QA: web-2's recreate failed and its old container was restored, web (replaced just before)
    kept the new spec, and the report said only "old container restored"."""
    stub = _Stub()
    stub.fails = "web-2"
    actions = [Action("recreate", "local", "web", name, 3, "spec changed") for name in ("web", "web-2", "web-3")]
    result = Applier._deploy(stub, "web", actions)  # type: ignore[arg-type]
    assert not result.ok and result.rolled_back
    assert result.error == ("web-2: new container failed (unhealthy); old container restored; partly rolled back:"
                            " web already run(s) the new spec")
    stub.fails = "web"  # the first one failing: rolled back as a whole
    assert Applier._deploy(stub, "web", actions).error.endswith("old container restored")  # type: ignore[arg-type]
