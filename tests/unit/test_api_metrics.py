"""The live part of /metrics, read from a status snapshot: a server that does not answer is
`syncer_status_up 0` and its own `syncer_server_up{server}` 0 (was 1 whenever status ran)."""

from __future__ import annotations

from typing import Any

from syncer.api.metrics import _StateCollector
from syncer.core.errors import SyncerError


def _live(status: Any) -> dict[str, list[tuple[dict[str, str], float]]]:
    collector = _StateCollector(None, status)  # type: ignore[arg-type]  # (_live reads no store)
    return {m.name: [(s.labels, s.value) for s in m.samples] for m in collector._live()}


def test_status_up_is_0_when_a_server_does_not_answer() -> None:
    def snapshot(*reachable: bool) -> Any:
        return lambda: {"rows": [], "servers": [{"name": f"s{i}", "reachable": r} for i, r in enumerate(reachable)]}

    got = _live(snapshot(True, False))
    assert got["syncer_status_up"] == [({}, 0.0)]
    assert got["syncer_server_up"] == [({"server": "s0"}, 1.0), ({"server": "s1"}, 0.0)]
    assert _live(snapshot(True, True))["syncer_status_up"] == [({}, 1.0)]

    def broken() -> Any:
        raise SyncerError("no project")

    assert _live(broken) == {"syncer_status_up": [({}, 0.0)]}
