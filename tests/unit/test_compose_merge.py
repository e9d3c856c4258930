"""Compose files merged as `docker compose -f A -f B` merges them (stages/compose_merge), and
the import of a merged pair: each rule against what `docker compose config` makes of the
same files (the results below were read from Compose v2's own output), and problems located
in the file that wrote them. tests/integration/test_compose_import.py compares the containers
of a whole pair (tests/cases/compose/override) with Compose's."""

from __future__ import annotations

from typing import Any

import pytest
from ruamel.yaml import YAML

from syncer.stages.compose import import_compose
from syncer.stages.compose_include import load_all
from syncer.stages.compose_merge import override_file
from tests.unit.test_compose_import import written


def _merged(base: str, *more: str) -> dict[str, Any]:
    files = [("compose.yaml", base.encode()), *((f"o{i}.yaml", m.encode()) for i, m in enumerate(more))]
    sources, doc, problems = load_all(files)
    assert doc is not None and not problems, problems
    return doc


def _app(base: str, over: str) -> dict[str, Any]:
    doc = _merged(f"services:\n  app:\n{base}", f"services:\n  app:\n{over}")
    return dict(doc["services"]["app"])


def test_a_later_scalar_wins_and_a_mapping_merges_key_by_key() -> None:
    app = _app("    image: a:1\n    restart: always\n    healthcheck: {test: [CMD, 'true'], interval: 5s}\n",
               "    image: a:2\n    healthcheck: {retries: 3}\n")
    assert app == {"image": "a:2", "restart": "always",
                   "healthcheck": {"test": ["CMD", "true"], "interval": "5s", "retries": 3}}


def test_command_entrypoint_and_the_healthcheck_test_are_replaced_not_appended() -> None:
    app = _app("    command: [a, b]\n    entrypoint: [sh]\n    healthcheck: {test: [CMD, x], interval: 5s}\n",
               "    command: [c]\n    entrypoint: [bash, -c]\n    healthcheck: {test: [CMD-SHELL, y]}\n")
    assert app["command"] == ["c"] and app["entrypoint"] == ["bash", "-c"]
    assert app["healthcheck"] == {"test": ["CMD-SHELL", "y"], "interval": "5s"}


def test_lists_are_appended_to_and_kept_unique_where_compose_keeps_them_so() -> None:
    app = _app("    ports: ['8080:80', '127.0.0.1:8443:443']\n    volumes: ['data:/data', './a:/etc/a']\n"
               "    cap_add: [NET_ADMIN]\n    dns: 1.1.1.1\n    expose: ['7000']\n"
               "    secrets: [db]\n    extra_hosts: ['a:10.0.0.1']\n",
               "    ports: ['9090:80', {target: 443, published: 8443, host_ip: 127.0.0.1}]\n"
               "    volumes: ['other:/data']\n    cap_add: [NET_ADMIN, SYS_TIME]\n    dns: [8.8.8.8]\n"
               "    expose: ['7000', '7001']\n    secrets: [{source: db2, target: /run/secrets/db}]\n"
               "    extra_hosts: ['a:10.0.0.1', 'b:10.0.0.2']\n")
    # a port by its address and protocol (either form), a volume and a secret by target
    assert app["ports"] == ["8080:80", {"target": 443, "published": 8443, "host_ip": "127.0.0.1"}, "9090:80"]
    assert app["volumes"] == ["other:/data", "./a:/etc/a"]
    assert app["cap_add"] == ["NET_ADMIN", "SYS_TIME"] and app["dns"] == ["1.1.1.1", "8.8.8.8"]
    assert app["expose"] == ["7000", "7001"] and app["secrets"] == [{"source": "db2", "target": "/run/secrets/db"}]
    assert app["extra_hosts"] == ["a:10.0.0.1", "b:10.0.0.2"]
    plain = _app("    devices: ['/dev/a:/dev/x']\n    security_opt: [a]\n",
                 "    devices: ['/dev/b:/dev/x']\n    security_opt: [a]\n")
    assert plain["devices"] == ["/dev/b:/dev/x"] and plain["security_opt"] == ["a", "a"]  # (as Compose)


def test_environment_and_labels_merge_by_name_whichever_form_each_file_wrote() -> None:
    app = _app("    environment: {MODE: prod, KEEP: '1'}\n    labels: [tier=1, team=web]\n",
               "    environment: [MODE=dev, EXTRA]\n    labels: {tier: '2', debug: true}\n")
    assert app["environment"] == ["KEEP=1", "MODE=dev", "EXTRA"]
    assert app["labels"] == ["tier=2", "team=web", "debug=true"]
    both = _app("    environment: {A: '1', B: '2'}\n", "    environment: {B: '3', C: null}\n")
    assert both["environment"] == {"A": "1", "B": "3", "C": None}  # two mappings stay one


def test_depends_on_and_networks_merge_as_mappings() -> None:
    app = _app("    depends_on: [db]\n    networks: [default, front]\n",
               "    depends_on: {cache: {condition: service_healthy}}\n    networks: {front: {aliases: [www]}}\n")
    assert app["depends_on"] == {"db": {"condition": "service_started", "required": True},
                                 "cache": {"condition": "service_healthy"}}
    assert app["networks"] == {"default": None, "front": {"aliases": ["www"]}}


def test_logging_merges_its_options_for_one_driver_and_is_replaced_for_another() -> None:
    same = _app("    logging: {driver: json-file, options: {max-size: 1m}}\n", "    logging: {options: {max-file: '2'}}\n")
    assert same["logging"] == {"driver": "json-file", "options": {"max-size": "1m", "max-file": "2"}}
    other = _app("    logging: {driver: json-file, options: {max-size: 1m}}\n",
                 "    logging: {driver: syslog, options: {tag: x}}\n")
    assert other["logging"] == {"driver": "syslog", "options": {"tag": "x"}}


def test_null_keeps_reset_removes_and_override_replaces_whole() -> None:
    app = _app("    image: a\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n    labels: {x: '1', y: '2'}\n"
               "    user: root\n",
               "    image:\n    ports: !reset []\n    environment: {A: !reset null}\n    labels: !override {z: '3'}\n"
               "    user: !reset null\n")
    assert app == {"image": "a", "environment": {"B": "2"}, "labels": {"z": "3"}}
    alone = _merged("services:\n  app:\n    image: a\n    ports: !reset ['80:80']\n    user: !override root\n")
    assert alone["services"]["app"] == {"image": "a", "user": "root"}  # one file alone: what its tags leave


def test_services_and_top_level_elements_are_added_by_later_files() -> None:
    doc = _merged("services:\n  a: {image: a}\nnetworks: {front: {}}\n",
                  "services:\n  b: {image: b}\nnetworks: {back: {internal: true}}\nvolumes: {data: {}}\nname: later\n")
    assert set(doc["services"]) == {"a", "b"} and doc["networks"] == {"front": {}, "back": {"internal": True}}
    assert doc["volumes"] == {"data": {}} and doc["name"] == "later"


def test_what_cannot_override_is_located_in_the_file_that_wrote_it() -> None:
    files = [("compose.yaml", b"services:\n  app:\n    image: a\n    ports: ['80:80']\n"),
             ("prod.yaml", b"services:\n  app:\n    ports: {a: b}\n")]
    _, doc, problems = load_all(files)
    assert [str(p) for p in problems] == [
        "prod.yaml:3:5: service 'app': ports: cannot override a list with a mapping (Compose refuses it too)"]
    got = import_compose("compose.yaml", files[0][1], read=lambda rel: None, project="p", folder="p", more=files[1:])
    assert [str(p) for p in got.problems] == [str(p) for p in problems]


def test_an_import_problem_names_the_file_that_set_the_value() -> None:
    base = b"services:\n  app:\n    image: a\n    restart: always\n"
    over = b"# the override\nservices:\n  app:\n    build: .\n    restart: always\n  b:\n    image: b\n    volumes_from: [\"container:x\"]\n"
    got = import_compose("compose.yaml", base, read=lambda rel: None, project="p", folder="p",
                         more=[("compose.override.yaml", over)])
    assert [str(p) for p in got.problems] == [
        "compose.override.yaml:4:5: service 'app': build: syncer deploys images; build it in CI",
        "compose.override.yaml:8:20: service 'b': volumes_from: 'container:x': another container's volumes are not"
        " carried; declare them on this service"]


@pytest.mark.parametrize("text", [b"services: [\n", b"- a\n", b"services: {app: {image: b}}\n---\nx: 1\n"])
def test_a_broken_later_file_is_one_located_error(text: bytes) -> None:
    got = import_compose("compose.yaml", b"services:\n  app: {image: a}\n", read=lambda rel: None, project="p",
                         folder="p", more=[("o.yaml", text)])
    assert len(got.problems) == 1 and got.problems[0].file == "o.yaml" and not got.files
    other = import_compose("compose.yaml", b"services:\n  app: {image: a}\n", read=lambda rel: None, project="p",
                           folder="p", more=[("o.yaml", b"just: text\n")])
    assert [str(p) for p in other.problems] == ["o.yaml:1:1: just: a top-level Compose element syncer does not carry"]


def test_the_override_file_is_the_one_docker_compose_reads_beside_a_file_it_looks_for() -> None:
    present = {"compose.override.yaml", "docker-compose.override.yml"}.__contains__
    assert override_file("compose.yaml", present) == "compose.override.yaml"
    assert override_file("docker-compose.yml", present) == "compose.override.yaml"  # its first, as Compose's
    assert override_file("prod.yaml", present) is None  # a file `docker compose` never looks for alone
    assert override_file("compose.yaml", lambda name: False) is None


def _extends(text: str, files: dict[str, bytes] | None = None) -> Any:
    return import_compose("compose.yaml", text.encode(), read=lambda rel: (files or {}).get(rel), project="p",
                          folder="p")


def test_extends_builds_a_service_from_another_by_the_merge_rules() -> None:
    doc = _merged("services:\n  base: {image: a, environment: {A: '1'}, ports: ['80:80'], command: [x]}\n"
                  "  child: {extends: base, environment: {B: '2'}, command: [y]}\n"
                  "  grand: {extends: {service: child}, ports: !override ['81:80']}\n")
    assert doc["services"]["child"] == {"image": "a", "environment": {"A": "1", "B": "2"}, "ports": ["80:80"],
                                        "command": ["y"]}
    assert doc["services"]["grand"]["ports"] == ["81:80"] and doc["services"]["grand"]["command"] == ["y"]


def test_extends_from_another_folder_keeps_its_relative_paths_its_own() -> None:
    other = (b"services:\n  w:\n    image: a\n    volumes: ['./w.conf:/etc/w.conf:ro', 'data:/data']\n"
             b"    env_file: w.env\n")
    got = _extends("services:\n  app: {extends: {file: lib/c.yaml, service: w}}\nvolumes: {data: {}}\n",  # (as Compose wants)
                   {"lib/c.yaml": other, "lib/w.conf": b"k=v\n", "lib/w.env": b"A=1\n"})
    assert got.problems == [] and got.files["files/w.conf"] == b"k=v\n" and got.files["files/w.env"] == b"A=1\n"


@pytest.mark.parametrize(("text", "why"), [
    ("  app: {image: a, extends: nope}\n", "service 'app': extends: no service 'nope' in this file"),
    ("  app: {extends: b}\n  b: {extends: app}\n", "service 'app': extends: 'app' extends itself (app -> b -> app)"),
    ("  app: {extends: {file: gone.yaml, service: w}}\n",
     "service 'app': extends: gone.yaml is not a Compose file with services: next to this one"),
    ("  app: {extends: {file: 3}}\n",
     "service 'app': extends: name the service (`service:`) and, from another file, its `file:`"),
    ("  app: {extends: b, ports: {x: 1}}\n  b: {image: a, ports: ['80:80']}\n",
     "service 'app': extends: ports: cannot override a list with a mapping (Compose refuses it too)"),
])
def test_an_extends_that_cannot_be_followed_is_located_at_it(text: str, why: str) -> None:
    got = _extends("services:\n" + text)
    assert [p.message for p in got.problems][:1] == [why] and got.problems[0].line == 2


def test_a_password_an_override_or_an_extended_service_sets_never_reaches_the_repository() -> None:
    """The canary of each form (env mapping, `K=V` list, a URL with a password, an env file of
    an extended service from another folder) becomes a secret as in one file alone."""
    base = b"services:\n  db: {image: postgres, environment: {POSTGRES_USER: app}}\n" \
           b"  app: {extends: {file: lib/app.yaml, service: app}}\n"
    over = b"services:\n  db:\n    environment: {POSTGRES_PASSWORD: canary-pw-1}\n" \
           b"  app:\n    environment: ['DATABASE_URL=postgres://app:canary-pw-2@db/app']\n"
    lib = {"lib/app.yaml": b"services:\n  app: {image: a, env_file: app.env}\n",
           "lib/app.env": b"API_TOKEN=canary-pw-3\nMODE=prod\n"}
    got = import_compose("compose.yaml", base, read=lib.get, project="p", folder="p",
                         more=[("compose.override.yaml", over)])
    assert got.problems == []
    assert "canary-pw" not in written(got) and "MODE=prod" in written(got)
    assert set(got.secrets) == {"POSTGRES_PASSWORD", "DATABASE_URL", "API_TOKEN"}


def test_include_copies_another_application_in_with_its_own_folder_for_paths() -> None:
    files = {"a/compose.yaml": b"include: [../b/compose.yaml]\nservices:\n  sa:\n    image: a\n"
                               b"    volumes: ['./data:/data', './conf.ini:/etc/conf.ini:ro']\n"
                               b"configs:\n  cfg: {file: ./cfg.txt}\n",
             "a/conf.ini": b"k=v\n", "a/cfg.txt": b"cfg\n",
             "b/compose.yaml": b"services:\n  sb: {image: b, env_file: b.env}\n", "b/b.env": b"B=1\n"}
    got = import_compose("compose.yaml", b"include: [a/compose.yaml]\nservices:\n  main: {image: m}\n",
                         read=files.get, project="p", folder="p", root="/srv/p")
    assert got.problems == []
    assert {"templates/main.yaml", "templates/sa.yaml", "templates/sb.yaml"} <= set(got.files)
    assert got.files["files/conf.ini"] == b"k=v\n" and got.files["files/b.env"] == b"B=1\n"
    assert "/srv/p/a/data:/data" in str(got.files["templates/sa.yaml"])  # its ./data: its own folder's


@pytest.mark.parametrize(("include", "files", "want"), [
    ("[gone.yaml]", {}, "compose.yaml:3:11: include.0: gone.yaml is not a Compose file next to this one"),
    ("[b.yaml]", {"b.yaml": b"services:\n  main: {image: b}\n"},
     "compose.yaml:3:11: include.0: services 'main' is defined both here and in b.yaml: Compose does not merge them"),
    ("[{path: b.yaml, env_file: b.env}]", {"b.yaml": b"services:\n  b: {image: b}\n"},
     "compose.yaml:3:26: include.0.env_file: b.env: no such file next to this one"),
    ("[{path: b.yaml, env_file: {x: 1}}]", {"b.yaml": b"services:\n  b: {image: b}\n"},
     "compose.yaml:3:26: include.0.env_file: expected a path or a list of paths"),
    ("[b.yaml]", {"b.yaml": b"include: [c.yaml]\nservices:\n  b: {image: b}\n",
                  "c.yaml": b"include: [b.yaml]\nservices:\n  c: {image: c}\n"},
     "c.yaml:1:11: include.0: b.yaml includes itself (b.yaml -> c.yaml -> b.yaml)"),  # where the loop closes
    ("3", {}, "compose.yaml:3:1: include: expected a list of Compose files"),
])
def test_an_include_that_cannot_be_carried_is_located_at_it(include: str, files: dict[str, bytes], want: str) -> None:
    got = import_compose("compose.yaml", f"services:\n  main: {{image: m}}\ninclude: {include}\n".encode(),
                         read=files.get, project="p", folder="p")
    assert [str(p) for p in got.problems] == [want]


def _input_defaults(got: Any, service: str) -> dict[str, Any]:
    template = YAML(typ="safe").load(got.files[f"templates/{service}.yaml"])
    return {k: v.get("default") for k, v in template["inputs"]["properties"].items()}


def test_an_included_application_takes_its_own_env_for_what_the_including_one_leaves_unset() -> None:
    """As `docker compose config` reads it (checked with Compose v2): the first file's .env
    wins; the included folder's .env gives the rest; its env_file, when the include names
    one, instead of that .env; and the includes nest, the outer one winning."""
    inner = b"services:\n  inner: {image: 'b:${TAG:-x}', environment: {A: '${A:-u}', B: '${B:-u}', C: '${C:-u}'}}\n"
    files = {"sub/compose.yaml": inner, "sub/.env": b"A=child\nB=child\nC=child\n", ".env": b"A=parent\nTAG=ptag\n",
             "other.env": b"C=fromfile\n"}
    top = b"include: [sub/compose.yaml]\nservices:\n  top: {image: 'b:${TAG:-x}', environment: {B: '${B:-u}'}}\n"
    got = import_compose("compose.yaml", top, read=files.get, project="p", folder="p")
    assert got.problems == []
    assert _input_defaults(got, "inner") == {"tag": "ptag", "a": "parent", "b": "child", "c": "child"}
    assert _input_defaults(got, "top") == {"tag": "ptag", "b": "u"}  # the included .env is the include's only
    named = b"include: [{path: sub/compose.yaml, env_file: other.env}]\nservices: {}\n"
    got = import_compose("compose.yaml", named, read=files.get, project="p", folder="p")
    assert got.problems == [] and _input_defaults(got, "inner") == {"tag": "ptag", "a": "parent", "b": "u",
                                                                     "c": "fromfile"}
    nested = {"a/compose.yaml": b"include: [../b/compose.yaml]\nservices: {}\n", "a/.env": b"X=outer\n",
              "b/compose.yaml": b"services:\n  deep: {image: 'b', environment: {X: '${X}', Y: '${Y}'}}\n",
              "b/.env": b"X=inner\nY=inner\n"}
    got = import_compose("compose.yaml", b"include: [a/compose.yaml]\nservices: {}\n", read=nested.get,
                         project="p", folder="p")
    assert got.problems == [] and _input_defaults(got, "deep") == {"x": "outer", "y": "inner"}


def test_a_password_in_an_included_env_becomes_a_secret_never_a_default() -> None:
    files = {"sub/compose.yaml": b"services:\n  db: {image: pg, environment: {POSTGRES_PASSWORD: '${DB_PASSWORD}'}}\n",
             "sub/.env": b"DB_PASSWORD=canary-inc-1\n"}
    got = import_compose("compose.yaml", b"include: [sub/compose.yaml]\nservices: {}\n", read=files.get,
                         project="p", folder="p")
    assert got.problems == [] and "canary-inc-1" not in written(got)
    assert set(got.secrets) == {"DB_PASSWORD"} and "a value is in .env" in got.secrets["DB_PASSWORD"]
