"""A recreate whose old container was removed between the plan and the apply (by hand, or by
another tool), and whose new container then fails: there was nothing to stop and nothing to
restore, so the failure is a create's (`did not come up`), not `old container restored` with
`rolled_back` — a review found it claimed a restore that never happened."""

from __future__ import annotations

from typing import Any

import pytest

from syncer.adapters.docker import Missing
from syncer.core.model import Action, ContainerSpec
from syncer.engine.containers import ContainerSteps
from syncer.engine.readiness import ActionFailed


class _Engine:
    """The calls a recreate makes; the old container is gone, the new one fails its start."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def remove(self, ident: str, **_: Any) -> None:
        self.calls.append(("remove", ident))

    def create(self, name: str, *_: Any) -> str:
        self.calls.append(("create", name))
        return "new-id"

    def inspect(self, ident: str) -> dict[str, Any]:
        raise Missing(ident)

    def stop(self, ident: str, **_: Any) -> None:
        self.calls.append(("stop", ident))

    def start(self, ident: str) -> None:
        self.calls.append(("start", ident))


class _Steps(ContainerSteps):
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.secrets = {}

    def _labels(self, a: Action, c: ContainerSpec) -> dict[str, str]:
        return {}

    def _ensure_image(self, *_: Any) -> None:
        pass

    def _bring_up(self, *_: Any, **__: Any) -> None:
        raise ActionFailed("unhealthy after 1s")


def test_a_recreate_whose_old_container_is_gone_fails_as_a_create_restoring_nothing() -> None:
    eng, steps = _Engine(), _Steps()
    spec = ContainerSpec("p", "local", "web", 1, "web", "t@1", {"image": "x"}, "sha256:a")
    action = Action("recreate", "local", "web", "web", 2, "spec changed", container_id="old-id")
    with pytest.raises(ActionFailed) as failed:
        steps._recreate(eng, action, spec, steps.lines.append)  # type: ignore[arg-type]
    assert str(failed.value) == "web did not come up: unhealthy after 1s" and not failed.value.rolled_back
    assert ("start", "old-id") not in eng.calls and ("stop", "old-id") not in eng.calls
    assert not any("restor" in line for line in steps.lines), steps.lines
