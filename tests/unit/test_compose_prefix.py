"""Several Compose applications onto one host: `syncer import --name-prefix shop-` names each
definition (its container) `shop-<service>`, as Compose's `shop-db-1`, the service's name
staying a DNS alias, so two applications' `db` no longer collide; and `${COMPOSE_PROJECT_NAME}`
reads as the project's name, as `docker compose config` (v2.40) reads it, not as an input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from syncer.core.errors import UsageError
from syncer.engine.importer import import_compose as engine_import
from syncer.stages.compose import Imported, import_compose
from syncer.stages.compose_names import prefix_problem

APP = b"""services:
  web:
    image: busybox
    depends_on: [db]
    networks: [front, back]
  db:
    image: busybox
    volumes: [data:/var/lib/db]
    networks: [back]
  cache:
    image: busybox
  backup:
    image: busybox
    volumes_from: [db]
    network_mode: service:db
  proxy:
    image: busybox
    container_name: edge
    depends_on: {web: {condition: service_started}}
    links: ["cache:kv"]
networks:
  front:
  back:
volumes:
  data:
"""


def _import(data: bytes = APP, prefix: str = "shop-", files: dict[str, bytes] | None = None,
            project: str | None = "shop") -> Imported:
    got = import_compose("compose.yaml", data, read=(files or {}).get, project=project, folder="app",
                         name_prefix=prefix)
    assert not got.problems, got.problems
    return got


def _yaml(got: Imported, path: str) -> Any:
    return YAML(typ="safe").load(str(got.files[path]))


def test_each_definition_takes_the_prefix_and_its_template_keeps_the_service_name() -> None:
    got = _import()
    assert sorted(p for p in got.files if p.startswith("definitions/")) == [
        "definitions/edge.yaml", "definitions/shop-backup.yaml", "definitions/shop-cache.yaml",
        "definitions/shop-db.yaml", "definitions/shop-web.yaml"]
    assert _yaml(got, "definitions/shop-db.yaml") == {"name": "shop-db", "template": "db"}
    # templates are the repository's own (no two repositories share one): the service's name
    assert sorted(p for p in got.files if p.startswith("templates/")) == [
        "templates/backup.yaml", "templates/cache.yaml", "templates/db.yaml", "templates/proxy.yaml",
        "templates/web.yaml"]
    assert _yaml(got, "templates/db.yaml")["id"] == "db"


def test_the_service_name_stays_an_alias_on_each_network_it_joins() -> None:
    got = _import()
    assert _yaml(got, "templates/db.yaml")["spec"]["networks"] == {"back": {"aliases": ["db"]}}
    assert _yaml(got, "templates/web.yaml")["spec"]["networks"] == {
        "front": {"aliases": ["web"]}, "back": {"aliases": ["web"]}}
    assert _yaml(got, "templates/cache.yaml")["spec"]["networks"] == {"default": {"aliases": ["cache", "kv"]}}


def test_depends_on_links_network_mode_and_volumes_from_follow_the_new_names() -> None:
    got = _import()
    assert _yaml(got, "definitions/shop-web.yaml")["depends_on"] == ["shop-db"]
    assert _yaml(got, "definitions/edge.yaml")["depends_on"] == {"shop-web": {"condition": "started"},
                                                                 "shop-cache": {"condition": "started"}}
    backup = _yaml(got, "templates/backup.yaml")["spec"]
    assert backup["network_mode"] == "container:shop-db"
    # the volume keeps Compose's `<project>_<volume>` name: the prefix names containers only
    assert backup["volumes"] == ["shop_data:/var/lib/db"] == _yaml(got, "templates/db.yaml")["spec"]["volumes"]


def test_a_service_with_its_own_container_name_keeps_it() -> None:
    got = _import()
    assert _yaml(got, "definitions/edge.yaml")["name"] == "edge"
    same = _import(b"services:\n  db: {image: busybox, container_name: db}\n  web: {image: busybox}\n")
    assert sorted(same.files) == ["definitions/db.yaml", "definitions/shop-web.yaml", "syncer.yaml",
                                  "templates/db.yaml", "templates/web.yaml"]


def test_without_a_prefix_definitions_keep_the_service_names() -> None:
    got = _import(prefix="")
    assert _yaml(got, "definitions/db.yaml") == {"name": "db", "template": "db"}
    assert _yaml(got, "definitions/web.yaml")["depends_on"] == ["db"]
    assert _yaml(got, "definitions/edge.yaml")["depends_on"] == {"web": {"condition": "started"},
                                                                 "cache": {"condition": "started"}}


@pytest.mark.parametrize(("data", "want"), [
    (b"services:\n  db: {image: busybox}\n  shop-db: {image: busybox}\n",
     (2, "service 'db': 'shop-db', its name with the prefix, is also the name of service 'shop-db'")),
    (b"services:\n  db: {image: busybox}\n  x: {image: busybox, container_name: shop-db}\n",
     (3, "service 'x': container_name: 'shop-db' is also the name of service 'db' with the prefix")),
])
def test_a_prefixed_name_that_names_another_container_is_a_located_problem(data: bytes, want: tuple[int, str]) -> None:
    # (two containers by one name, or a name that is another's DNS alias, as an unprefixed container_name)
    got = import_compose("compose.yaml", data, read={}.get, project="shop", folder="app", name_prefix="shop-")
    assert [(p.line, p.message) for p in got.problems] == [want]


@pytest.mark.parametrize("prefix", ["-shop", "shop!", "a b", "_x", ".", "ü-"])
def test_a_prefix_no_name_may_begin_with_is_one_line(prefix: str, tmp_path: Path) -> None:
    assert prefix_problem(prefix)
    (tmp_path / "compose.yaml").write_bytes(APP)
    with pytest.raises(UsageError) as raised:
        engine_import(tmp_path / "compose.yaml", out=tmp_path / "out", name_prefix=prefix)
    assert str(raised.value) == f"--name-prefix: '{prefix}' cannot begin a definition's name (its container's):" \
        " letters, digits, '_', '.' and '-', starting with a letter or a digit"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("prefix", ["", "shop-", "shop_", "s1.", "Shop"])
def test_a_prefix_that_begins_names(prefix: str) -> None:
    assert prefix_problem(prefix) is None


def test_the_written_repository_validates(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_bytes(APP)
    report = engine_import(tmp_path / "compose.yaml", out=tmp_path / "out", project="shop", name_prefix="shop-")
    assert not report.problems and "definitions/shop-web.yaml" in report.written


PROJECT_VARS = b"""services:
  web:
    image: busybox
    container_name: ${COMPOSE_PROJECT_NAME}-web
    env_file: [vars.env]
    environment:
      - PLAIN=${COMPOSE_PROJECT_NAME}
      - BARE=$COMPOSE_PROJECT_NAME
      - DEFAULTED=${COMPOSE_PROJECT_NAME:-other}
      - REQUIRED=${COMPOSE_PROJECT_NAME:?set it}
      - ALTERNATIVE=${COMPOSE_PROJECT_NAME:+yes}
      - ESCAPED=$${COMPOSE_PROJECT_NAME}
      - COMPOSE_PROJECT_NAME
    volumes: [data:/data]
volumes:
  data: {name: "${COMPOSE_PROJECT_NAME}_stuff"}
"""


@pytest.mark.parametrize(("project", "dotenv", "want"), [
    ("given", b"", "given"),  # --project (Compose's -p)
    (None, b"COMPOSE_PROJECT_NAME=from-dotenv\n", "from-dotenv"),
    (None, b"", "app"),  # the folder's name
])
def test_compose_project_name_reads_as_the_chosen_project_name(project: str | None, dotenv: bytes,
                                                               want: str) -> None:
    files = {".env": dotenv, "vars.env": b"FROM_FILE=${COMPOSE_PROJECT_NAME}-e\n"}
    got = _import(PROJECT_VARS, prefix="", files=files, project=project)
    assert got.project == want
    template = _yaml(got, "templates/web.yaml")
    # as `docker compose -p given config` prints it: the name, never a template input
    assert template["spec"]["env"] == [
        f"PLAIN={want}", f"BARE={want}", f"DEFAULTED={want}", f"REQUIRED={want}", "ALTERNATIVE=yes",
        "ESCAPED=$${COMPOSE_PROJECT_NAME}", f"COMPOSE_PROJECT_NAME={want}", f"FROM_FILE={want}-e"]
    assert template["inputs"] == {"type": "object", "properties": {}}
    assert template["spec"]["volumes"] == [f"{want}_stuff:/data"]
    assert f"definitions/{want}-web.yaml" in got.files
    assert not got.needs and not got.shell
