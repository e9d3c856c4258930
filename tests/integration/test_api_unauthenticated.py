"""Issue 12, point 3: unauthenticated input is never echoed, and requests without a valid
key are rate-limited per client address (paths and keys could be guessed thousands of times
a second)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from syncer.api.auth import ANONYMOUS_LIMIT
from tests.apiserver import CANARY, serve


def test_a_guessed_path_is_not_echoed_and_guessing_is_limited(tmp_path: Path, project: str,
                                                              docker_api: Any) -> None:
    with serve(tmp_path, project, definitions={}) as s:
        root = s.base.removesuffix("/api/v1")
        for path in (f"/x{CANARY}x", f"/api/v1/x{CANARY}x"):
            r = s.http.get(root + path)
            assert r.status_code in (401, 404) and CANARY not in r.text, r.text
        assert s.call("GET", f"/x{CANARY}x", key="read").status_code == 404  # call() checks the body
        assert all(s.http.get(f"{s.base}/health").status_code == 200 for _ in range(20))  # answered: not counted
        statuses = [s.http.get(f"{root}/guess-{i}").status_code for i in range(ANONYMOUS_LIMIT + 5)]
        assert statuses.count(404) == ANONYMOUS_LIMIT - 2 and statuses[-7:] == [429] * 7  # 2 refused above
        wrong = {"key": "sk_live_not-a-real-key"}
        assert s.call("GET", "/status", key=wrong).status_code == 429  # wrong keys count too
        assert s.call("GET", "/status", key="read").status_code == 200  # a valid key: limited per key
        assert s.http.get(f"{s.base}/health").status_code == 200  # a load balancer's probe is never refused
