"""Issue 11, points 3-7: the HTTP surface keeps the promises of DESIGN.md and its OpenAPI
document (health as the seed shows it, pushes that really sync, every webhook event)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.apiserver import serve


def test_health_is_the_seeds_body_and_503_when_the_store_cannot_be_read(tmp_path: Path, project: str) -> None:
    with serve(tmp_path, project, definitions={}) as s:
        r = s.http.get(f"{s.base}/health")
        assert r.status_code == 200 and set(r.json()) == {"status", "version", "timestamp"}
        assert r.json()["status"] == "healthy"
        # a corrupt store: garbage where state.db was (renamed over it, as a restore gone wrong does)
        garbage = s.state / "garbage.db"
        garbage.write_bytes(os.urandom(8192))
        os.replace(garbage, s.state / "state.db")
        r = s.http.get(f"{s.base}/health")
        assert r.status_code == 503, r.text
        assert set(r.json()) == {"status", "version", "timestamp"} and r.json()["status"] == "unhealthy"
