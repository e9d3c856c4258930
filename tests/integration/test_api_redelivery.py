"""Git webhook redeliveries against a real `syncer serve` that restarts in between: the
delivery ids (GitHub's, GitLab's, Gitea's) are kept in the store, so a provider's redelivery
after a restart is answered 202 "duplicate" and does nothing (issue 11, point 6)."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.apiserver import serve
from tests.helpers import REPO_ROOT

SECRET = "hook-secret-for-redelivery"
CASES = REPO_ROOT / "tests/cases/hooks"


def _deliveries() -> dict[str, tuple[bytes, dict[str, str]]]:
    """A push of each provider's own example (none of them to the tracked branch `main`)."""
    github, gitlab, gitea = ((CASES / f"{n}-push.json").read_bytes() for n in ("github", "gitlab", "gitea"))
    mac = hmac.new(SECRET.encode(), gitea, hashlib.sha256).hexdigest()
    return {
        "github:72d3162e-cc78-11e3-81ab-4c9367dc0958": (github, {
            "X-GitHub-Event": "push", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), github, hashlib.sha256).hexdigest()}),
        "gitlab:13792a34-cac6-4fda-95a8-c58e00a3954e": (gitlab, {
            "X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET,
            "X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"}),
        "gitea:f6266f16-1bf3-46a5-9ea4-602e06ead473": (gitea, {
            "X-Gitea-Event": "push", "X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473",
            "X-Gitea-Signature": mac}),
    }


def test_a_redelivery_after_a_restart_is_a_duplicate(tmp_path: Path, project: str, docker_api: Any) -> None:
    with serve(tmp_path, project, definitions={}, env={"SYNCER_GIT_WEBHOOK_SECRET": SECRET}) as s:
        deliveries = _deliveries()

        def outcomes() -> dict[str, str]:
            out = {}
            for key, (body, headers) in deliveries.items():
                r = s.call("POST", "/hooks/git", key=None, content=body,
                           headers={**headers, "Content-Type": "application/json"})
                assert r.status_code == 202 and r.json()["data"]["request_id"] is None, r.text
                out[key] = r.json()["data"]["outcome"]
            return out

        assert set(outcomes().values()) == {"ignored"}  # pushes to other branches, seen the first time
        assert set(outcomes().values()) == {"duplicate"}
        assert s.stop() == 0
        s.http = httpx.Client(timeout=60)
        s.start()  # a new process: it knows the ids from the store only
        assert set(outcomes().values()) == {"duplicate"}
        with sqlite3.connect(s.state / "state.db") as db:
            assert {k for (k,) in db.execute("SELECT key FROM hook_deliveries")} == set(deliveries)
