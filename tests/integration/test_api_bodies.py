"""Bodies of the HTTP API that need no container: an in-process server (uvicorn on
loopback, real HTTP, the real SQLite store) over a project that is not applied."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncer.api.app import create_app, serve_in_thread
from syncer.engine import facade as engine
from syncer.engine import operations
from tests.helpers import IMAGE, git_init, remove_project, simple_repo, unique


def _db(version: str) -> str:
    return f'id: db\nversion: "{version}"\nspec:\n  image: {IMAGE}\n'


@contextmanager
def _served(tmp_path: Path, secret_values: tuple[str, str, str]) -> Iterator[tuple[httpx.Client, str]]:
    """A served project with three secrets of these values, and a template `db` with
    versions 8.4 and latest; yields (client with a write key, base URL)."""
    project = unique("tbody")
    definitions = {name: f"name: {project}-{name}\ntemplate: box\nparams:\n  token: {{secret: {secret}}}\n"
                   for name, secret in (("a", "S_NULL"), ("b", "S_TRUE"), ("c", "S_SUCCESS"))}
    definitions["d"] = f"name: {project}-d\ntemplate: db\n"
    repo = simple_repo(tmp_path / "r", project, definitions=definitions,
                       templates={"db-84": _db("8.4"), "db-latest": _db("latest")})
    git_init(repo)
    secrets = tmp_path / "secrets.env"
    secrets.write_text("".join(f"{n}={v}\n" for n, v in zip(("S_NULL", "S_TRUE", "S_SUCCESS"), secret_values)))
    ctx = engine.Context(repo=repo, state_dir=tmp_path / "s", secrets_file=secrets)
    store = operations.state_store(ctx)
    try:
        key = operations.create_api_key(store, name="t", permission="write").key
    finally:
        store.close()
    handle = serve_in_thread(create_app(ctx, sample_interval=None), "127.0.0.1", 0)
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            yield client, f"http://127.0.0.1:{handle.port}/api/v1"
    finally:
        handle.stop()
        import docker  # reads publish the project's key marker on the server: it goes too

        remove_project(docker.APIClient(), project)


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """Secrets `null`, `true` and `success`."""
    with _served(tmp_path, ("null", "true", "success")) as served:
        yield served


@pytest.fixture()
def plain(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    """Secrets no body could contain by chance."""
    with _served(tmp_path, ("s3cr3t-one", "s3cr3t-two", "s3cr3t-three")) as served:
        yield served


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_secrets_equal_to_json_words_neither_break_nor_rename_a_response(api: tuple[httpx.Client, str]) -> None:
    """Masking used to replace text in the serialised JSON: a secret `true`, `null` or
    `success` turned `"success":true` into `"success":***` or renamed the key."""
    client, base = api
    for path in ("/templates", "/definitions", "/definitions/nope", "/status"):
        r = client.get(base + path)
        body = r.json()  # valid JSON, whatever the secrets are
        assert "success" in body and "***" not in _keys(body), (path, r.text)
        assert body["success"] is (r.status_code < 400), (path, r.text)


def test_a_plain_template_id_names_the_version_a_definition_gets(plain: tuple[httpx.Client, str]) -> None:
    """The API sorted versions its own way: for 8.4 and latest, a definition got latest
    but GET /templates/db answered 8.4."""
    client, base = plain
    by_id = client.get(f"{base}/templates/db").json()["data"]
    definition = next(d for d in client.get(f"{base}/definitions").json()["data"] if d["name"].endswith("-d"))
    assert definition["template"] == "db@latest"
    assert by_id["ref"] == definition["template"] and by_id["id"] == definition["template_id"]
