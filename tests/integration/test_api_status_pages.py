"""GET /status against a real `syncer serve`: the per-definition drift rows are paginated as
GET /definitions is (`page`, `per_page`, `pagination`), filtered with `drift`, while the
summary (in sync, drifted, counts per drift state and status) stays complete over every
definition."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.apiserver import serve, worker
from tests.helpers import commit_all, wait_until


def test_status_rows_are_paged_and_the_summary_is_whole(tmp_path: Path, project: str, docker_api: Any) -> None:
    applied = {"a": worker(project, "a").replace(f"{project}-worker", f"{project}-a"),
               "b": worker(project, "b").replace(f"{project}-worker", f"{project}-b")}
    with serve(tmp_path, project, definitions=applied) as s:
        for short in ("c", "d", "e"):  # in git, never applied: drifted (a plan would create them)
            (s.repo / "definitions" / f"{short}.yaml").write_text(
                worker(project, short).replace(f"{project}-worker", f"{project}-{short}"))
        commit_all(s.repo, "three more")
        names = [s.n(x) for x in "abcde"]

        def whole() -> Any:
            body = s.ok("GET", "/status")
            return body if body["data"]["drifted"] == 3 else None

        body = wait_until(whole, 30, 0.2, message="the three new definitions to show as drifted")
        data = body["data"]
        assert data["in_sync"] is False
        assert data["counts"] == {"definitions": 5, "in_sync": 2, "drifted": 3, "by_status": {"active": 2, "new": 3}}
        # the same defaults and meta as GET /definitions
        assert body["pagination"] == {"page": 1, "per_page": 20, "total": 5}
        assert s.ok("GET", "/definitions")["pagination"] == body["pagination"]
        assert [d["name"] for d in data["definitions"]] == names

        pages = [s.ok("GET", "/status", params={"page": n, "per_page": 2}) for n in (1, 2, 3, 4)]
        assert [[d["name"] for d in p["data"]["definitions"]] for p in pages] == [names[:2], names[2:4], names[4:], []]
        assert all(p["pagination"] == {"page": n, "per_page": 2, "total": 5} for n, p in enumerate(pages, 1))
        for p in pages:  # every page carries the whole summary
            assert (p["data"]["counts"], p["data"]["drifted"], p["data"]["in_sync"]) == (data["counts"], 3, False)
        assert pages[0]["data"]["definitions"][0]["definition_id"].startswith("def_")

        drifted = s.ok("GET", "/status", params={"drift": "true", "per_page": 2})
        assert [d["name"] for d in drifted["data"]["definitions"]] == names[2:4]
        assert drifted["pagination"]["total"] == 3
        assert all(not d["in_sync"] and d["drift"] for d in drifted["data"]["definitions"])
        steady = s.ok("GET", "/status", params={"drift": "false"})
        assert [d["name"] for d in steady["data"]["definitions"]] == names[:2] and steady["pagination"]["total"] == 2

        # the same limits as GET /definitions
        for params in ({"per_page": 101}, {"per_page": 0}, {"page": 0}, {"drift": "maybe"}):
            s.error("GET", "/status", 400, "invalid_request", params=params)
            if "drift" not in params:
                s.error("GET", "/definitions", 400, "invalid_request", params=params)
