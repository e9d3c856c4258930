"""Property-based run against the API's own OpenAPI document, on a real server.

For every operation the document lists, hypothesis generates requests — path parameters
(real ids and random text), query parameters (in range, out of range, wrong type),
JSON bodies (well-formed, wrong shape, malformed bytes), and the key (a write key mostly;
also a read key, a garbage key, none) — and every answer must be below 500 and in the
envelope: `success: true` with `data`, or `success: false` with a known `error.code`
and the HTTP status that code goes with. No body may carry the canary secret.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apiserver import CANARY, Served, serve, web, worker
from tests.helpers import unique

CODES = {"invalid_request": {400, 405, 413}, "unauthorized": {401}, "forbidden": {403}, "not_found": {404},
         "conflict": {409}, "rate_limited": {429}, "internal_error": {500, 503}}
EXAMPLES = 50
TEXT = st.text(alphabet=string.ascii_letters + string.digits + "_-.~%é€ :@", min_size=1, max_size=30)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
JSON_VALUE = st.recursive(JSON_SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                              st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                          max_leaves=6)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, docker_api: Any) -> Iterator[Served]:
    project = unique("tfuzz")
    try:
        with serve(tmp_path_factory.mktemp("fuzz"), project, definitions={"web": web(project), "worker":
                                                                           worker(project)}) as s:
            yield s
    finally:
        for c in docker_api.containers(all=True, filters={"label": [f"syncer.project={project}"]}):
            docker_api.remove_container(c["Id"], force=True, v=True)


def _known_ids(s: Served) -> list[str]:
    """Real ids of every kind, so that some requests reach the code behind the 404s."""
    ids = ["srv_local", "local", "box", "box@1.0", s.n("web"), s.n("web-2"), s.n("worker"), "req_000000000000"]
    for path, field in (("/templates", "id"), ("/definitions", "id"), ("/instances", "id"),
                        ("/instances", "container_id"), ("/deployments", "id")):
        ids.extend(str(row[field]) for row in s.ok("GET", path)["data"])
    ids.append(s.ok("POST", "/sync", 202)["data"]["request_id"])
    return ids


def _value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for one query parameter: what its schema allows, near its edges, and junk."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"] or [schema]
    found: list[st.SearchStrategy[Any]] = [TEXT, st.just("")]
    for option in options:
        if "enum" in option:
            found.append(st.sampled_from(option["enum"]))
        elif option.get("type") == "integer":
            low, high = option.get("minimum", -10), option.get("maximum", 10**6)
            found += [st.integers(low, high), st.sampled_from([low - 1, high + 1, 0, -1, 10**20])]
        elif option.get("format") == "date-time":
            found += [st.datetimes().map(lambda d: d.isoformat()), st.sampled_from(["2020-01-01T00:00:00Z",
                                                                                    "0001-01-01T00:00:00+14:00",
                                                                                    "9999-12-31T23:59:59-12:00"])]
    return st.one_of(found)


def _body(schema: dict[str, Any] | None) -> st.SearchStrategy[tuple[str, Any]]:
    """("json", value) or ("raw", bytes): fitting the schema, any JSON, or not JSON at all."""
    raw = st.tuples(st.just("raw"), st.one_of(st.binary(max_size=40), st.just(b'{"definition_id": ')))
    anything = st.tuples(st.just("json"), JSON_VALUE)
    if not schema or "properties" not in schema:
        return st.one_of(st.just(("none", None)), raw, anything)
    fitting = st.fixed_dictionaries({name: st.one_of(TEXT, JSON_SCALAR) for name in schema["properties"]})
    return st.one_of(st.tuples(st.just("json"), fitting), raw, anything, st.just(("none", None)))


def _resolve(doc: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any] | None:
    while schema and "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    if schema and "anyOf" in schema:
        schema = next((_resolve(doc, s) for s in schema["anyOf"] if s.get("type") != "null"), None)
    return schema


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, item in sorted(doc["paths"].items())
            for method, op in sorted(item.items())]


def _check(s: Served, method: str, path: str, response: httpx.Response) -> None:
    where = f"{method} {path} -> {response.status_code}"
    assert response.status_code < 500, f"{where}: {response.text[:500]}"
    assert CANARY not in response.text, where
    if path.endswith("/metrics") and response.status_code == 200 and "/definitions/" not in path:
        assert response.text.startswith("# HELP"), where
        return
    body = response.json()
    if path.endswith("/health") and response.status_code == 200:  # the seed's body: no envelope (DESIGN.md)
        assert set(body) == {"status", "version", "timestamp"} and body["status"] == "healthy", f"{where}: {body}"
        return
    assert isinstance(body, dict) and isinstance(body.get("success"), bool), f"{where}: {body}"
    if body["success"]:
        assert "data" in body and 200 <= response.status_code < 300, f"{where}: {body}"
        if "pagination" in body:
            assert set(body["pagination"]) == {"page", "per_page", "total"}, where
        return
    error = body.get("error")
    assert isinstance(error, dict) and set(error) == {"code", "message", "details"}, f"{where}: {body}"
    assert response.status_code in CODES.get(error["code"], set()), f"{where}: {body}"
    assert isinstance(error["message"], str) and error["message"] and "Traceback" not in error["message"], where


def test_every_operation_answers_in_the_envelope(server: Served) -> None:
    s = server
    doc = s.http.get(f"{s.base}/openapi.json").json()
    operations = _operations(doc)
    assert len(operations) >= 26, [f"{m} {p}" for m, p, _ in operations]
    ids = _known_ids(s)
    keys = st.sampled_from(["write"] * 6 + ["read", "none", "garbage"])
    seen: dict[int, int] = {}
    for method, template, op in operations:
        params = [_resolve(doc, p) or {} for p in op.get("parameters", [])]
        query = {p["name"]: _value(_resolve(doc, p.get("schema")) or {}) for p in params if p.get("in") == "query"}
        path_names = [p["name"] for p in params if p.get("in") == "path"]
        body_schema = _resolve(doc, ((op.get("requestBody") or {}).get("content", {}).get("application/json")
                                     or {}).get("schema"))
        methods = st.sampled_from([method] * 8 + ["PUT", "DELETE", "PATCH"])

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(path_values=st.fixed_dictionaries({n: st.one_of(st.sampled_from(ids), TEXT) for n in path_names}),
               query_values=st.fixed_dictionaries({}, optional=query), body=_body(body_schema), key=keys,
               verb=methods)
        def check(path_values: dict[str, str], query_values: dict[str, Any], body: tuple[str, Any], key: str,
                  verb: str) -> None:
            path = template
            for name, value in path_values.items():
                path = path.replace("{" + name + "}", httpx.URL("/" + value).raw_path.decode()[1:] or "x")
            kw: dict[str, Any] = {"params": {k: str(v) for k, v in query_values.items()}}
            kind, value = body
            if kind == "json":
                kw["json"] = value
            elif kind == "raw":
                kw["content"], kw["headers"] = value, {"Content-Type": "application/json"}
            chosen: Any = {"write": "write", "read": "read", "none": None, "garbage": {"key": "syncer_x"}}[key]
            response = s.call(verb, path.removeprefix("/api/v1"), key=chosen, **kw)
            _check(s, verb, path, response)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1

        check()
    # the run reached both the routes' answers and every kind of refusal
    assert {200, 202, 400, 401, 403, 404, 405} <= set(seen), seen
    assert s.call("GET", "/health", key=None).json()["status"] == "healthy"
