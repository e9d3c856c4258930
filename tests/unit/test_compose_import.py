"""The compose stage: each Compose file of tests/cases/compose/ and the repository it becomes
(golden files under expected/, what cannot be carried in not_carried.txt). Regenerate with
SYNCER_UPDATE_GOLDEN=1 and read the diff before committing it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from syncer.core.errors import Diagnostic
from syncer.engine.importer import import_compose as engine_import
from syncer.stages.compose import Imported, import_compose, project_name
from syncer.stages.compose_vars import Unsupported, Vars, input_schema, interpolate
from syncer.stages.load import parse
from syncer.stages.tree import DirTree
from syncer.stages.validate import build_project

CASES = Path(__file__).resolve().parents[1] / "cases" / "compose"
NAMES = sorted(p.name for p in CASES.iterdir() if (p / "compose.yaml").is_file())


def _import(case: str, project: str | None = None) -> Imported:
    folder = CASES / case

    def read(rel: str) -> bytes | None:
        path = folder / rel
        return path.read_bytes() if path.is_file() else None

    def listdir(rel: str) -> list[str] | None:
        top = folder / rel
        return sorted(p.relative_to(top).as_posix() for p in top.rglob("*") if p.is_file()) if top.is_dir() else None

    # a case with a compose.override.yaml is imported with it, as `docker compose` reads the pair
    more = [(name, (folder / name).read_bytes()) for name in ["compose.override.yaml"] if (folder / name).is_file()]
    # its folder as if it were /srv/<case> on the host (where a relative data directory is mounted from)
    return import_compose("compose.yaml", (folder / "compose.yaml").read_bytes(), read=read, project=project,
                          folder=case, listdir=listdir, more=more, root=f"/srv/{case}")


def written(got: Imported) -> str:
    """Everything an import wrote, as one text (to look for a canary in)."""
    return "".join(c if isinstance(c, str) else c.decode(errors="replace") for c in got.files.values())


def _as_bytes(content: str | bytes) -> bytes:
    return content if isinstance(content, bytes) else content.encode("utf-8")


@pytest.mark.parametrize("case", NAMES)
def test_golden(case: str) -> None:
    got = _import(case)
    expected_dir = CASES / case / "expected"
    problems = "".join(f"{p}\n" for p in got.problems)
    if os.environ.get("SYNCER_UPDATE_GOLDEN"):
        for rel, content in got.files.items():
            (expected_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / rel).write_bytes(_as_bytes(content))
        (CASES / case / "not_carried.txt").write_text(problems)
    want = {p.relative_to(expected_dir).as_posix(): p.read_bytes() for p in expected_dir.rglob("*") if p.is_file()}
    assert {k: _as_bytes(v) for k, v in got.files.items()} == want
    assert problems == (CASES / case / "not_carried.txt").read_text()


@pytest.mark.parametrize("case", NAMES)
def test_every_generated_yaml_file_parses(case: str) -> None:
    for rel, content in _import(case).files.items():
        if rel.endswith(".yaml"):
            source, problems = parse(rel, _as_bytes(content))
            assert problems == [] and source is not None and isinstance(source.docs[0], dict), rel


def test_the_spec_table_is_covered() -> None:
    """Every row of DESIGN.md's spec table appears in some case's output."""
    text = "".join(str(c) for case in NAMES for c in _import(case).files.values())
    rows = ["image", "command", "entrypoint", "env", "env_file", "ports", "volumes", "tmpfs", "files", "labels",
            "networks", "network_mode", "depends_on", "healthcheck", "restart", "user", "working_dir", "hostname",
            "domainname", "init", "tty", "stdin_open", "resources", "memory", "cpus", "pids",
            "memory_reservation", "shm_size", "cap_add", "cap_drop", "read_only", "security_opt",
            "ulimits", "sysctls", "extra_hosts", "dns", "dns_search", "stop_signal", "stop_grace_period",
            "logging", "pid", "ipc", "kind: job", "condition: completed", "condition: healthy",
            "condition: started", "external: true", "aliases", "runtime"]
    assert [r for r in rows if f"{r}:" not in text and r not in text] == []


def test_passwords_become_secrets_and_never_reach_the_repository() -> None:
    got = _import("web_db")
    text = "".join(str(c) for c in got.files.values())
    assert "example" not in text
    assert "POSTGRES_PASSWORD: \"${inputs.postgres_password}\"" in str(got.files["templates/cx-db.yaml"])
    assert "format: password" in str(got.files["templates/cx-db.yaml"])
    assert "secret: POSTGRES_PASSWORD" in str(got.files["definitions/cx-db.yaml"])
    assert "\"DB_PASSWORD=${inputs.db_password}\"" in str(got.files["templates/cx-web.yaml"])
    assert set(got.secrets) == {"POSTGRES_PASSWORD", "DB_PASSWORD"}


def test_a_compose_secret_is_a_secret_file_and_its_value_is_not_copied() -> None:
    got = _import("configs_files")
    assert "s3cret" not in "".join(str(c) for c in got.files.values())
    # a password in an env file leaves the copied file and becomes a secret input
    assert b"abc123" not in got.files["files/app.env"] and "secret: API_KEY" in str(got.files["definitions/cx-conf.yaml"])
    assert "secret: API_TOKEN" in str(got.files["templates/cx-conf.yaml"])
    assert got.files["files/app.conf"] == b"listen 8080\n" and "files/api_token.txt" not in got.files


def test_interpolation_becomes_inputs_with_defaults() -> None:
    tpl = str(_import("interpolation").files["templates/cx-interp.yaml"])
    assert "cx_greeting:\n      type: string\n      default: \"hello world\"" in tpl
    assert "cx_workers:\n      type: integer\n      default: 4" in tpl
    assert "cx_db_password:\n      type: string\n      format: password" in tpl
    assert "required: [cx_db_password]" in tpl
    assert "echo $HOSTNAME" in tpl  # $$ is Compose's literal $


def test_unsupported_fields_are_listed_with_service_and_line() -> None:
    got = _import("build_unsupported")
    assert Diagnostic("compose.yaml", 4, 5, "service 'cx-built': build: syncer deploys images; build it in CI") \
        in got.problems
    assert Diagnostic("compose.yaml", 17, 20, "service 'cx-gpu': volumes_from: 'container:legacy-data': another"
                      " container's volumes are not carried; declare them on this service") in got.problems
    # without an image, the one Compose would have built: <project>-<service>
    assert "image: build_unsupported-cx-built" in str(got.files["templates/cx-built.yaml"])


def test_a_file_that_is_not_compose_is_one_located_error() -> None:
    got = import_compose("c.yaml", b"services: [\n", read=lambda _: None, project=None, folder="x")
    assert got.files == {} and len(got.problems) == 1 and got.problems[0].line == 2
    got = import_compose("c.yaml", b"just: text\n", read=lambda _: None, project=None, folder="x")
    assert got.files == {} and "not a Compose file" in got.problems[0].message


def test_project_name_as_compose_makes_it() -> None:
    assert project_name("Given", "named", "dir") == "given"
    assert project_name(None, "My App!", "dir") == "myapp"
    assert project_name(None, None, "_Some.Dir") == "somedir"


@pytest.mark.parametrize("text, want", [
    ("plain", "plain"), ("$$", "$"), ("a${X}b", "a${inputs.x}b"), ("$X/y", "${inputs.x}/y"),
    ("${X:-d}", "${inputs.x}"), ("${X-d}", "${inputs.x}"), ("${X:?e}", "${inputs.x}"), ("cost $5", "cost $5"),
    ("$${X}", "$${X}"), ("$$$${X}", "$$${X}"),  # a literal `${`: syncer writes it as Compose does
])
def test_interpolate(text: str, want: str) -> None:
    assert interpolate(text, Vars()) == want


@pytest.mark.parametrize("text", ["${X:+alt}", "${X"])
def test_interpolate_refuses_what_syncer_cannot_say(text: str) -> None:
    with pytest.raises(Unsupported):
        interpolate(text, Vars())


def test_an_unset_variable_is_empty_as_under_compose() -> None:
    """`$HOME` with no default is "" when not given (an optional input without a default
    would drop the whole value instead)."""
    vars = Vars()
    assert interpolate("echo $HOME ${USER}", vars) == "echo ${inputs.home} ${inputs.user}"
    assert [input_schema(v) for v in vars.found.values()] == [{"type": "string", "default": ""}] * 2


def test_a_password_variable_has_no_default_and_is_required() -> None:
    vars = Vars()
    interpolate("${DB_PASSWORD:-changeme}", vars)
    assert input_schema(vars.found["DB_PASSWORD"]) == {"type": "string", "format": "password", "writeOnly": True}


def test_values_compose_would_refuse_are_located_not_raised() -> None:
    text = b"services:\n  a:\n    image: x\n    ports: 80\n    volumes: [{type: bind}]\n  b: [1]\n"
    got = import_compose("c.yaml", text, read=lambda _: None, project="p", folder="x")
    assert [(p.line, p.column) for p in got.problems] == [(4, 5), (5, 15), (6, 3)]


def test_a_variable_naming_where_a_password_is_stays_plain() -> None:
    """The official images' `*_FILE` convention: POSTGRES_PASSWORD_FILE holds a path, not a
    password. Made a secret, it had to be set as one, and its path was masked in every log."""
    text = b"""
services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD_FILE: /run/secrets/db_password
      MYSQL_ROOT_PASSWORD: ${ROOT_PASSWORD}
      TLS_KEY_PATH: ${KEY_PATH:-/etc/tls/key.pem}
"""
    got = _imported(text)
    tpl = str(got.files["templates/db.yaml"])
    assert "POSTGRES_PASSWORD_FILE: /run/secrets/db_password" in tpl
    assert "MYSQL_ROOT_PASSWORD: \"${inputs.root_password}\"" in tpl and "format: password" in tpl
    assert "key_path:\n      type: string\n      default: /etc/tls/key.pem" in tpl
    assert set(got.secrets) == {"ROOT_PASSWORD"}


def _imported(text: bytes) -> Imported:
    """A Compose file that names no file of its own, imported as project `p`."""
    return import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p")


def _with_tree(text: bytes, tree: dict[str, bytes], root: str = "") -> Imported:
    def read(rel: str) -> bytes | None:
        return tree.get(rel)

    def listdir(rel: str) -> list[str] | None:
        inner = sorted(p[len(rel) + 1:] for p in tree if p.startswith(rel + "/"))
        return inner if inner or rel in ("data",) else None  # `data`: an empty directory

    return import_compose("compose.yaml", text, read=read, project="p", folder="p", listdir=listdir, root=root)


def test_a_data_directory_is_the_host_directory_compose_mounts_by_its_absolute_path() -> None:
    """Missing (Compose makes it), mounted read-write, empty, or too big to carry as files:
    what the container writes there stays on the host, where the Compose deployment left it
    (and an application moved from Compose finds it). What it only reads is copied."""
    big = {f"assets/{i:03}.txt": b"x" for i in range(101)}
    got = _with_tree(b"""
services:
  web:
    image: busybox
    volumes:
      - ./assets:/assets:ro
      - ./data:/var/lib/data
      - ../shared/state:/state
      - {type: bind, source: ./cache, target: /cache, read_only: true}
      - ./config:/config
      - ./acme.json:/acme.json
      - ./small:/small:ro
      - ./app.conf:/etc/app.conf
""", {**big, "small/a": b"A", "config/settings.xml": b"<x/>", "acme.json": b"", "app.conf": b"k=v"},
        root="/srv/app")
    assert got.problems == []
    spec = str(got.files["templates/web.yaml"])
    assert all(f"- {entry}\n" in spec for entry in (
        "/srv/app/assets:/assets:ro", "/srv/app/data:/var/lib/data", "/srv/shared/state:/state",
        "/srv/app/config:/config", "/srv/app/acme.json:/acme.json"))
    assert "mount_path: /cache\n      host_path: /srv/app/cache\n      read_only: true" in spec
    assert got.files["files/small/a"] == b"A" and got.files["files/app.conf"] == b"k=v"  # read-only, or a file
    assert got.host_paths == {p: "web" for p in ("/srv/app/assets", "/srv/app/data", "/srv/shared/state",
                                                 "/srv/app/cache", "/srv/app/config", "/srv/app/acme.json")}
    # stated in the policy, for the operator to review
    assert YAML(typ="safe").load(str(got.files["syncer.yaml"]))["policy"]["bind_mounts"] == sorted(got.host_paths)


def test_a_path_under_home_is_the_home_of_who_imports_it_as_compose_reads_it() -> None:
    text = b"""
services:
  mc:
    image: busybox
    volumes: ["~/minecraft_data:/data", "~other/x:/x", {type: bind, source: ~/logs, target: /logs}]
"""
    got = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p", home="/home/op")
    assert [p.message for p in got.problems] == [
        "service 'mc': volumes: '~other/x:/x': a path under ~ depends on who runs it; write the absolute path"]
    assert got.host_paths == {"/home/op/minecraft_data": "mc", "/home/op/logs": "mc"}
    spec = str(got.files["templates/mc.yaml"])
    assert "- /home/op/minecraft_data:/data\n" in spec and "host_path: /home/op/logs" in spec
    unknown = _imported(text)
    assert len(unknown.problems) == 3  # (no home given: nothing guessed)


def test_a_directory_too_big_or_empty_is_listed_not_carried_where_its_host_is_unknown() -> None:
    big = {f"assets/{i:03}.txt": b"x" for i in range(101)}
    got = _with_tree(b"""
services:
  web:
    image: busybox
    volumes: ["./assets:/assets:ro", "./data:/var/lib/data", "./small:/small"]
""", {**big, "small/a": b"A", "small/b/c": b"C"})
    problems = [d.message for d in got.problems]
    assert problems == [
        "service 'web': volumes: './assets:/assets:ro': ./assets is neither a file nor a directory of at most 100"
        " files next to the Compose file (syncer's files: carries those; mount anything else from an absolute"
        " host path)",
        "service 'web': volumes: './data:/var/lib/data': ./data is an empty directory; a named volume keeps what"
        " the container writes there",
    ]
    assert got.files["files/small/a"] == b"A" and got.files["files/small/b/c"] == b"C"
    assert "path: /small/b/c\n      source: files/small/b/c" in str(got.files["templates/web.yaml"])


def test_a_directory_and_a_file_of_one_name_get_folders_of_their_own() -> None:
    got = _with_tree(b"""
services:
  a:
    image: busybox
    volumes: ["./x/conf:/etc/a:ro", "./y/conf:/etc/b:ro", "./conf:/etc/c/conf"]
  b:
    image: busybox
    volumes: ["./x/conf:/etc/a:ro"]
""", {"x/conf/one": b"1", "y/conf/one": b"2", "conf": b"file"})
    assert got.problems == []
    assert {k: v for k, v in got.files.items() if k.startswith("files/")} == {
        "files/conf/one": b"1", "files/2-conf/one": b"2", "files/3-conf": b"file"}
    assert "source: files/conf/one" in str(got.files["templates/b.yaml"])  # copied once


def test_an_optional_env_file_that_is_not_there_is_left_out_as_compose_does() -> None:
    got = _with_tree(b"""
services:
  web:
    image: busybox
    env_file:
      - path: ./local.env
        required: false
      - path: ./app.env
        required: false
""", {"app.env": b"A=1\n"})
    assert got.problems == []
    assert "env_file: [files/app.env]" in str(got.files["templates/web.yaml"])
    got = _with_tree(b"services:\n  web:\n    image: busybox\n    env_file: [{path: ./local.env, required: false}]\n", {})
    assert got.problems == [] and "env_file" not in str(got.files["templates/web.yaml"])
    missing = _with_tree(b"services:\n  web:\n    image: busybox\n    env_file: [./local.env]\n", {})
    assert [d.message for d in missing.problems] == [
        "service 'web': env_file: ./local.env is not a file next to the Compose file"]


def test_a_service_in_profiles_none_of_which_is_asked_for_is_left_out_as_compose_does() -> None:
    text = b"""
services:
  web:
    image: busybox
    depends_on: [api]
  api:
    image: busybox
  debug:
    image: busybox
    profiles: [debug, tools]
  admin:
    image: busybox
    profiles: [admin]
    depends_on: [debug]
"""
    got = _imported(text)
    assert got.problems == [] and sorted(k for k in got.files if k.startswith("definitions/")) == [
        "definitions/api.yaml", "definitions/web.yaml"]
    assert got.skipped == {
        "admin": "in profile admin: Compose starts it only when asked (--profile admin)",
        "debug": "in profile debug, tools: Compose starts it only when asked (--profile debug)"}
    tools = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p", profiles=["tools"])
    assert "definitions/debug.yaml" in tools.files and "profiles" not in str(tools.files["templates/debug.yaml"])
    assert list(tools.skipped) == ["admin"] and tools.problems == []
    # a service asked for that depends on one left out: Compose refuses the project, the import says why
    admin = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p", profiles=["admin"])
    assert [d.message for d in admin.problems] == [
        "service 'admin': depends_on: 'debug' is in profile debug, tools: Compose starts it only when asked"
        " (--profile debug)"]
    # the profile "" is Compose's when none is asked for (checked with `docker compose config --services`)
    blank = b"services:\n  a: {image: busybox}\n  b: {image: busybox, profiles: [\"\"]}\n"
    assert "definitions/b.yaml" in _imported(blank).files
    asked = import_compose("compose.yaml", blank, read=lambda rel: None, project="p", folder="p", profiles=["x"])
    assert "definitions/b.yaml" not in asked.files and list(asked.skipped) == ["b"]


def test_a_container_name_that_cannot_name_a_definition_is_listed_where_it_is_written() -> None:
    text = b"""
services:
  a:
    image: busybox
    container_name: ${NAME:-x}
  b:
    image: busybox
    container_name: "-bad"
  c:
    image: busybox
    container_name: a
  d:
    image: busybox
    container_name: e
  e:
    image: busybox
    networks: [back]
    container_name: e
networks:
  back: {}
"""
    got = _imported(text)
    assert [(d.line, d.message) for d in got.problems] == [
        (5, "service 'a': container_name: a name with a variable cannot name a definition; write the name"),
        (8, "service 'b': container_name: '-bad' is not a container name Docker accepts"),
        (11, "service 'c': container_name: 'a' is also the name of service 'a'"),
        (14, "service 'd': container_name: 'e' is also the name of service 'e'"),
    ]
    # a container_name equal to the service's is what syncer does anyway: nothing to add
    assert got.files["definitions/e.yaml"] == "name: e\ntemplate: e\n"
    assert "aliases" not in str(got.files["templates/e.yaml"])


def test_aliases_on_the_default_network_are_carried_and_its_address_where_it_has_a_subnet() -> None:
    text = b"""
services:
  web:
    image: busybox
    networks:
      default:
        aliases: [www]
        ipv4_address: 10.5.0.9
"""
    got = _imported(text)
    assert "networks:\n    default:\n      aliases: [www]\n" in str(got.files["templates/web.yaml"])
    assert [d.message for d in got.problems] == [
        "service 'web': networks.default.ipv4_address: not carried on the default network (its subnet is"
        " Docker's choice: give it `ipam` in the Compose file's networks)"]
    # the default network of a fixed subnet: the project network's pools, and the address carried
    fixed = _imported(text + b"networks:\n  default:\n    ipam: {config: [{subnet: 10.5.0.0/24}]}\n")
    assert fixed.problems == []
    assert "      aliases: [www]\n      ipv4_address: \"10.5.0.9\"" in str(fixed.files["templates/web.yaml"])
    assert "default:\n    ipam:\n      config:\n        - subnet: \"10.5.0.0/24\"" in str(fixed.files["syncer.yaml"])


def test_links_are_dependencies_and_aliases_where_the_linking_service_is() -> None:
    got = _imported(b"""
services:
  web:
    image: busybox
    depends_on: [cache]
    links: [db, "db:database", cache, "gone:x"]
    networks: [front]
  api:
    image: busybox
    links: ["db:sql"]
  db:
    image: busybox
    networks: [front, back, default]
  cache:
    image: busybox
  debug:
    image: busybox
    profiles: [debug]
  tool:
    image: busybox
    links: [debug]
networks:
  front: {}
  back: {}
""")
    assert [(d.line, d.message) for d in got.problems] == [
        (6, "service 'web': links: 'gone' is no service of this file"),
        (21, "service 'tool': links: 'debug' is in profile debug: Compose starts it only when asked"
             " (--profile debug)")]
    assert got.files["definitions/web.yaml"] == "name: web\ntemplate: web\ndepends_on: [cache, db]\n"
    assert got.files["definitions/api.yaml"] == "name: api\ntemplate: api\ndepends_on: [db]\n"
    # `database` where web is (front), `sql` where api is (the project network)
    assert ("  networks:\n    default:\n      aliases: [sql]\n    front:\n      aliases: [database]\n"
            "    back: {}\n") in str(got.files["templates/db.yaml"])


def test_a_service_off_the_default_network_stays_off_it_whatever_alias_it_is_given() -> None:
    """Compose puts a service that lists networks without `default` on those alone: its
    `container_name` (the service's name becomes an alias) or a link from a service on the
    default network must not add the project network to an `internal` one's isolation."""
    got = _imported(b"""
services:
  db:
    image: busybox
    container_name: the-db
    networks: [back]
  api:
    image: busybox
    links: ["db:sql"]
networks:
  back: {internal: true}
""")
    assert got.problems == []
    tpl = str(got.files["templates/db.yaml"])
    assert "  networks:\n    back:\n      aliases: [db]\n  project_network: false\n" in tpl, tpl


def test_the_default_network_listed_beside_internal_ones_only_is_kept() -> None:
    """syncer leaves a container on internal networks only off the project network; Compose's
    `networks: [back, default]` (back internal) puts it on both, so `default` stays listed."""
    got = _imported(b"""
services:
  worker:
    image: busybox
    networks: [back, default]
  api:
    image: busybox
    networks: {back: {}, default: {}}
  web:
    image: busybox
    networks: [front, default]
networks:
  back: {internal: true}
  front: {}
""")
    assert got.problems == []
    assert "  networks: [back, default]\n" in str(got.files["templates/worker.yaml"])
    assert "  networks:\n    back: {}\n    default: {}\n" in str(got.files["templates/api.yaml"])
    assert "  networks: [front]\n" in str(got.files["templates/web.yaml"])  # (it joins the project network anyway)


def test_the_policy_lets_through_a_bind_mount_whose_path_is_a_variable_with_a_default() -> None:
    """`${STORAGE:-/mnt/docker-volumes}/app:/data` validates as `/mnt/docker-volumes/app`:
    the policy the import writes names that path, so what it wrote validates."""
    got = _imported(b"""
services:
  app:
    image: busybox
    volumes: ["${STORAGE:-/mnt/docker-volumes}/app:/data", "/srv/plain:/plain"]
""")
    assert got.problems == []
    assert "policy:\n  bind_mounts: [/mnt/docker-volumes/app, /srv/plain]\n" in str(got.files["syncer.yaml"])


def test_dotenv_beside_the_compose_file_gives_variables_as_compose_reads_them_but_never_passwords() -> None:
    text = b"""
services:
  vpn:
    image: busybox
    environment:
      - PROVIDER=${PROVIDER:-none}
      - CITIES=${CITIES:?CITIES must be set}
      - REGION=${REGION:?REGION must be set}
      - EMPTY=${EMPTY:-kept}
      - WIREGUARD_PRIVATE_KEY=${WIREGUARD_PRIVATE_KEY}
"""
    dotenv = b"# provider\nPROVIDER=mullvad\nCITIES='Oslo'\nEMPTY=\nWIREGUARD_PRIVATE_KEY=k-canary-0451\n"
    got = import_compose("compose.yaml", text, read=lambda rel: dotenv if rel == ".env" else None,
                         project="p", folder="p")
    template = str(got.files["templates/vpn.yaml"])
    assert "provider:\n      type: string\n      default: mullvad\n" in template
    assert "cities:\n      type: string\n      default: Oslo\n" in template
    assert "empty:\n      type: string\n      default: kept\n" in template  # `:-` takes its default for ""
    assert "required: [region, wireguard_private_key]" in template
    assert "k-canary-0451" not in "".join(str(v) for v in got.files.values())
    assert got.secrets == {"WIREGUARD_PRIVATE_KEY": "service 'vpn'; a value is in .env"}
    # REGION has no value anywhere: Compose would refuse to start; the report says where to give it
    assert got.needs == {"definitions/vpn.yaml params.region": "REGION"}


def test_deploy_placement_and_update_config_are_the_swarm_fields_of_the_spec() -> None:
    got = _imported(b"""
services:
  app:
    image: busybox
    deploy:
      replicas: 2
      placement:
        constraints: [node.role == worker]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 1
      update_config: {parallelism: 1, delay: 10s, order: start-first, failure_action: pause}
""")
    template = str(got.files["templates/app.yaml"])
    assert ('  placement:\n    constraints: ["node.role == worker"]\n    preferences:\n      - spread: node.labels.zone\n'
            '    max_replicas_per_node: 1\n  update:\n    parallelism: 1\n    delay: "10s"\n'
            "    order: start-first\n") in template
    assert "replicas: 2" in str(got.files["definitions/app.yaml"])
    assert [d.message for d in got.problems] == [
        "service 'app': deploy.update_config.failure_action: not carried: syncer's Swarm updates roll back when a"
        " task fails"]
    # what syncer does anyway, stated, is carried: no problem
    same = _imported(b"""
services:
  app:
    image: busybox
    deploy:
      update_config: {parallelism: 2, failure_action: rollback, max_failure_ratio: 0}
      rollback_config: {parallelism: 0, order: stop-first, failure_action: pause}
""")
    assert same.problems == [] and "  update:\n    parallelism: 2\n" in str(same.files["templates/app.yaml"])
    both = _imported(b"""
services:
  agent:
    image: busybox
    deploy: {mode: global, replicas: 2}
""")
    assert [d.message for d in both.problems] == [
        "service 'agent': deploy.mode: mode: global runs one task on each node: replicas cannot go with it"]
    each = _imported(b"""
services:
  sweep:
    image: busybox
    deploy: {mode: global-job, replicas: 2}
""")
    assert [d.message for d in each.problems] == [
        "service 'sweep': deploy.mode: mode: global-job runs one task on each node: replicas cannot go with it"]
    assert "  rollback:\n    parallelism: 0\n    order: stop-first\n" in str(same.files["templates/app.yaml"])


def test_deploy_mode_endpoint_mode_labels_cpu_reservations_and_host_ports_are_the_swarm_fields() -> None:
    got = _imported(b"""
services:
  agent:
    image: busybox
    deploy:
      mode: global
      labels: {com.example.role: agent}
      endpoint_mode: dnsrr
      resources: {reservations: {cpus: "0.25", memory: 32M}}
    ports:
      - {target: 9100, published: 9100, mode: host}
      - {target: 80, published: 8080, mode: ingress}
""")
    template = str(got.files["templates/agent.yaml"])
    assert "  mode: global\n" in template and "  service_labels:\n    com.example.role: agent\n" in template
    assert ("    - container_port: 9100\n      host_port: 9100\n      mode: host\n"
            "    - container_port: 80\n      host_port: 8080\n") in template
    assert "  endpoint_mode: dnsrr\n" in template and "cpus_reservation: \"0.25\"" in template
    assert "replicas" not in str(got.files["definitions/agent.yaml"]) and not got.problems


def test_named_volumes_keep_the_names_compose_gives_them_so_a_compose_deployment_keeps_its_data() -> None:
    got = import_compose("compose.yaml", b"""
services:
  app:
    image: busybox
    volumes:
      - data:/data
      - type: volume
        source: shared
        target: /shared
      - old:/old:ro
      - named:/named
      - nfs:/nfs:ro
volumes:
  data:
    driver: local
  shared:
    external: true
  old:
    external: {name: legacy_volume}
  named:
    name: exact-name
  nfs:
    driver: nfs-plugin
    driver_opts: {type: nfs, o: "addr=10.0.0.5,nfsvers=4", device: ":/export"}
    labels: {team: data, backup: 1}
  tagged:
    labels: [backup.stop=true]
    driver_opts: {type: tmpfs, device: tmpfs}
    x-custom: 1
""", read=lambda rel: None, project="shop", folder="p")
    template = str(got.files["templates/app.yaml"])
    assert ("    - shop_data:/data\n    - mount_path: /shared\n      name: shared\n      external: true\n"
            "    - mount_path: /old\n      name: legacy_volume\n      read_only: true\n      external: true\n"
            "    - exact-name:/named\n    - mount_path: /nfs\n      name: shop_nfs\n      read_only: true\n"
            "      driver: nfs-plugin\n      driver_opts:\n        type: nfs\n        o: \"addr=10.0.0.5,nfsvers=4\"\n"
            "        device: \":/export\"\n      labels:\n        team: data\n        backup: \"1\"\n"
            ) in template  # (made with them by the engine, or each Swarm node)
    assert [d.message for d in got.problems] == []  # (`tagged` is declared only; an x- extension is the file's own)


@pytest.mark.parametrize("name, secret", [
    ("DB_PASS", True), ("SMTP_PASS", True), ("DB_PWD", True), ("AUTH_SALT", True), ("GOOGLE_CREDENTIALS", True),
    ("PASSENGER_COUNT", False), ("BYPASS_CACHE", False), ("COMPASS", False), ("DB_PASS_FILE", False),
])
def test_short_password_names_are_passwords_too(name: str, secret: bool) -> None:
    """`.env` is read now, and it is where such values live: `DB_PASS=…` must not reach git."""
    got = import_compose("compose.yaml", f"services:\n  app:\n    image: busybox\n    environment:\n      - {name}=${{{name}}}\n"
                         .encode(), read=lambda rel: f"{name}=v-canary-77\n".encode() if rel == ".env" else None,
                         project="p", folder="p")
    assert (name in got.secrets) is secret
    assert ("v-canary-77" in "".join(str(v) for v in got.files.values())) is not secret


def test_a_url_holding_a_password_is_a_secret_whatever_its_name() -> None:
    got = import_compose("compose.yaml", b"""
services:
  app:
    image: busybox
    environment:
      DATABASE_URL: postgres://app:pw-canary-31@db/app
      CACHE_URL: ${CACHE_URL}
      HOME_URL: http://example.com:8080/x
""", read=lambda rel: b"CACHE_URL=redis://:pw-canary-32@cache:6379\n" if rel == ".env" else None,
        project="p", folder="p")
    assert set(got.secrets) == {"DATABASE_URL", "CACHE_URL"}
    written = "".join(str(v) for v in got.files.values())
    assert "canary" not in written and "HOME_URL: http://example.com:8080/x" in written


def test_an_env_file_line_holding_a_url_with_a_password_stays_out_of_the_copy() -> None:
    got = _with_tree(b"services:\n  app:\n    image: busybox\n    env_file: [app.env]\n",
                     {"app.env": b"MODE=fast\nDATABASE_URL=postgres://u:pw-canary-9@db/x\nDB_PASS=pw-canary-8\n"})
    assert got.problems == [] and set(got.secrets) == {"DATABASE_URL", "DB_PASS"}
    assert got.files["files/app.env"] == b"MODE=fast\n"
    assert "canary" not in "".join(str(v) for v in got.files.values())


def test_device_reservations_are_the_gpus_docker_compose_asks_the_engine_for() -> None:
    """Compose's GPU form (`deploy.resources.reservations.devices`, as AI stacks write it) is
    the spec's `gpus` (DeviceRequests); one naming neither a count nor devices asks for all."""
    text = b"""
services:
  ollama:
    image: ollama/ollama
    deploy:
      resources:
        reservations:
          memory: 1g
          devices:
            - {driver: nvidia, count: 1, capabilities: [gpu]}
            - {capabilities: [gpu, utility], device_ids: ["0", "3"]}
            - {driver: nvidia, capabilities: [gpu]}
            - {capabilities: [gpu], shared: true}
"""
    got = _imported(text)
    assert [p.message for p in got.problems] == [
        "service 'ollama': deploy.resources.reservations.devices.shared: not a field of a device request"]
    spec = YAML(typ="safe").load(str(got.files["templates/ollama.yaml"]))["spec"]
    assert spec["gpus"] == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]},
                            {"device_ids": ["0", "3"], "capabilities": ["gpu", "utility"]},
                            {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]},
                            {"count": "all", "capabilities": ["gpu"]}]
    assert spec["resources"] == {"memory_reservation": "1g"}
    from syncer.adapters.container_args import create_args
    from syncer.stages.shortforms import gpus
    requests = create_args({"image": "i", "gpus": gpus(spec["gpus"][:3])}, {})["host_config"]["device_requests"]
    assert [(r["Driver"], r["Count"], r["DeviceIDs"], r["Capabilities"]) for r in requests] == [
        ("nvidia", 1, [], [["gpu"]]), ("", 0, ["0", "3"], [["gpu", "utility"]]), ("nvidia", -1, [], [["gpu"]])]


def test_a_file_or_directory_holding_a_private_key_is_never_copied_into_the_repository() -> None:
    """A certificate's key, or Traefik's acme.json after a Compose deployment ran (its account
    and certificate keys), stays on the host, mounted from where Compose mounted it."""
    pem = b"-----BEGIN EC PRIVATE KEY-----\ncanary-key-material\n-----END EC PRIVATE KEY-----\n"
    acme = b'{"le": {"Account": {"Email": "a@b.c", "PrivateKey": "canary-acme-account"}, "Certificates": []}}'
    text = b"""
services:
  proxy:
    image: traefik
    volumes:
      - ./acme.json:/acme.json
      - ./certs:/certs:ro
      - ./tls/site.key:/etc/ssl/site.key:ro
      - ./traefik.yml:/etc/traefik/traefik.yml:ro
      - ./ssh:/root/.ssh
"""
    tree = {"acme.json": acme, "certs/site.crt": b"-----BEGIN CERTIFICATE-----\nx\n", "certs/site.key": pem,
            "tls/site.key": pem, "traefik.yml": b"entryPoints: {}\n", "ssh/id_ed25519": pem}
    got = _with_tree(text, tree, root="/srv/p")
    assert got.problems == []
    assert "canary" not in written(got) and got.files["files/traefik.yml"] == b"entryPoints: {}\n"
    assert set(got.host_paths) == {"/srv/p/acme.json", "/srv/p/certs", "/srv/p/tls/site.key", "/srv/p/ssh"}
    unknown = _with_tree(text, tree)  # where the host is not known: said, and still not copied
    assert [p.message for p in unknown.problems] == [
        f"service 'proxy': volumes: '{v}': {v.split(':')[0]} holds a private key, which the import never copies"
        " into the repository: mount it from an absolute host path"
        for v in ("./acme.json:/acme.json", "./certs:/certs:ro", "./tls/site.key:/etc/ssl/site.key:ro",
                  "./ssh:/root/.ssh")]
    assert "canary" not in written(unknown)


def test_a_secret_is_readable_by_the_services_user_as_under_compose() -> None:
    got = _imported(b"""
services:
  api:
    image: busybox
    user: "1000:1000"
    secrets: [token, {source: key, mode: 0400, uid: "1000"}]
secrets:
  token: {file: ./token.txt}
  key: {environment: API_KEY}
""")
    template = str(got.files["templates/api.yaml"])
    assert "    - path: /run/secrets/token\n      secret: TOKEN\n      mode: \"0444\"\n" in template
    assert "    - path: /run/secrets/key\n      secret: API_KEY\n      mode: \"0400\"\n      uid: 1000\n" in template


def test_pid_or_ipc_of_another_service_is_a_located_problem_not_an_apply_failure() -> None:
    got = _imported(b"""
services:
  legacy:
    image: busybox
  dep:
    image: busybox
    pid: "service:legacy"
    ipc: host
""")
    assert [(d.line, d.message) for d in got.problems] == [
        (7, "service 'dep': pid: service:legacy: sharing another service's pid namespace is not carried"
            " (syncer shares a container's network only)")]
    assert "  ipc: host\n" in str(got.files["templates/dep.yaml"])


def test_an_optional_dependency_compose_does_not_start_is_left_out_as_compose_leaves_it() -> None:
    text = b"""
services:
  web:
    image: busybox
    depends_on:
      opt: {condition: service_started, required: false}
      db: {condition: service_healthy, required: false}
  db:
    image: busybox
  opt:
    image: busybox
    profiles: [extras]
"""
    got = _imported(text)
    assert not got.problems
    assert str(got.files["definitions/web.yaml"]).endswith("depends_on:\n  db:\n    condition: healthy\n")
    both = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p", profiles=["extras"])
    assert not both.problems and "  opt:\n" in str(both.files["definitions/web.yaml"])
    required = _imported(text.replace(b"required: false}\n      db:", b"required: true}\n      db:"))
    assert [d.message for d in required.problems] == [
        "service 'web': depends_on: 'opt' is in profile extras: Compose starts it only when asked (--profile extras)"]


def test_an_external_network_with_a_name_is_joined_by_that_name() -> None:
    """Traefik's usual `proxy: {external: true, name: traefik_proxy}` (and the older
    `external: {name: ...}`): syncer finds an external network by its key, so the key becomes
    the Docker name, in syncer.yaml and in each service that joins it."""
    got = _imported(b"""
services:
  web:
    image: busybox
    networks:
      proxy: {aliases: [site]}
      default: {}
  worker:
    image: busybox
    networks: [old, default]
networks:
  proxy: {external: true, name: traefik_proxy}
  old:
    external: {name: legacy_net}
""")
    assert not got.problems
    assert "networks:\n  traefik_proxy:\n    external: true\n  legacy_net:\n    external: true\n" in str(got.files["syncer.yaml"])
    assert "  networks:\n    traefik_proxy:\n      aliases: [site]\n" in str(got.files["templates/web.yaml"])
    assert "  networks: [legacy_net]\n" in str(got.files["templates/worker.yaml"])
    clash = _imported(b"services:\n  a:\n    image: busybox\n    networks: [x]\n"
                      b"networks:\n  x: {external: true, name: y}\n  y: {}\n")
    assert [d.message for d in clash.problems] == ["networks: x: name: y is another network's key"]


def test_a_host_binds_selinux_label_and_a_long_tmpfs_options_are_carried() -> None:
    got = _with_tree(b"""
services:
  web:
    image: busybox
    volumes:
      - ./data:/data:z
      - {type: bind, source: ./state, target: /state, bind: {selinux: Z}}
      - {type: tmpfs, target: /cache, tmpfs: {size: 67108864, mode: 1777}}
      - {type: tmpfs, target: /run/x}
""", {}, root="/srv/app")
    assert not got.problems, got.problems
    template = str(got.files["templates/web.yaml"])
    assert "/srv/app/data:/data:z" in template
    assert "host_path: /srv/app/state\n      selinux: Z" in template
    # (Compose sends `mode: 1777` as the number it reads, 1777, which is 0o3361: measured with
    # `docker compose up`, v2.40; `mode: 01777` is 0o1777)
    assert '  tmpfs: ["/cache:size=67108864,mode=03361", /run/x]\n' in template


def test_a_variable_compose_takes_from_the_shell_is_reported_as_a_param_to_give() -> None:
    """`KEY:` (or `- KEY`) with no value: Compose passes the shell's at `up`. The import cannot
    know it, so it says so (unless `.env` gives it, as Compose would read it there too)."""
    got = _with_tree(b"services:\n  web:\n    image: busybox\n    environment:\n      FROM_SHELL:\n"
                     b"      FROM_DOTENV:\n      PLAIN: x\n  job:\n    image: busybox\n    environment: [LISTED]\n",
                     {".env": b"FROM_DOTENV=d\n"})
    assert got.shell == {"definitions/web.yaml params.from_shell": "FROM_SHELL",
                         "definitions/job.yaml params.listed": "LISTED"}
    assert not got.needs and not got.problems


def test_a_variable_whose_uses_read_differently_is_a_problem_not_the_first_default() -> None:
    """Compose reads `${X-a}` and `${X:-b}` apart (an empty value is `-`'s, not `:-`'s): one
    syncer input cannot say both, so the import says so instead of giving both the first."""
    text = b"services:\n  web:\n    image: busybox\n    environment:\n      A: ${EMPTY-dash}\n      B: ${EMPTY:-colon}\n"
    for dotenv, expected in ((b"EMPTY=\n", "'' and as 'colon'"), (b"", "'colon' and as 'dash'")):
        got = _with_tree(text, {".env": dotenv})
        assert [(d.line, d.message) for d in got.problems] == [
            (2, f"service 'web': ${{EMPTY}} reads as {expected} in its uses here (their defaults differ):"
                " a syncer input has one value; give every use the same default")]
    same = _with_tree(text, {".env": b"EMPTY=set\n"})  # a value: both read it
    assert not same.problems and "default: set" in str(same.files["templates/web.yaml"])
    dash = _with_tree(b"services:\n  web:\n    image: busybox\n    environment: {A: \"${EMPTY-dash}\"}\n",
                      {".env": b"EMPTY=\n"})
    assert not dash.problems and "      default: \"\"\n" in str(dash.files["templates/web.yaml"])


def test_a_default_made_of_another_variable_is_a_located_problem_not_literal_text() -> None:
    got = _imported(b"services:\n  web:\n    image: busybox\n    environment:\n      N: ${OUTER:-${INNER:-deep}}\n")
    assert [(d.line, d.message) for d in got.problems] == [
        (5, "service 'web': environment.N: '${OUTER:-${INNER:-deep}}': a default made of another variable is not"
            " carried (a syncer input's default is a value)")]


def test_an_env_files_variables_are_interpolated_as_compose_does() -> None:
    """Compose interpolates an env file's values (not single-quoted ones): such a line leaves
    the copied file for the spec's `env`, its variables as inputs, as in `environment:`."""
    got = _with_tree(b"services:\n  web:\n    image: busybox\n    env_file: [common.env]\n",
                     {"common.env": b"PLAIN=1\nEXPANDED=${TEAM:-none}-x\nKEPT='${NOT}'\nCOST=$$5\n",
                      ".env": b"TEAM=payments\n"})
    assert not got.problems
    assert got.files["files/common.env"] == b"PLAIN=1\nKEPT='${NOT}'\n"
    template = str(got.files["templates/web.yaml"])
    assert "COST: \"$5\"\n" in template
    assert "EXPANDED: \"${inputs.team}-x\"" in template and "default: payments" in template
    assert "not" not in template.split("properties:")[1].split("spec:")[0]


@pytest.mark.parametrize(("value", "text"), [
    (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (1e-05, "1e-05"), (1.5e-05, "1.5e-05"), (1e21, "1e+21"),
    (123456.5, "123456.5"), (100000.0, "100000"), (1000.0, "1000"), (0.1, "0.1"), (0.0001, "0.0001"),
    (-2.5, "-2.5"), (0.0, "0"), (-0.0, "-0"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"),
    (float("nan"), "NaN"), (3.14159265358979, "3.14159265358979"), (12345678901234567890, "12345678901234567890"),
    (99999999999999999999999, "1e+23"), (-12, "-12"), (True, "true"), (False, "false"), ("0755", "0755"),
    (None, None),
])
def test_a_number_where_compose_wants_text_is_the_text_go_prints(value: Any, text: Any) -> None:
    """Go's `%v` of what yaml.v3 read (checked against `docker compose config`)."""
    from syncer.stages.compose_text import go_text

    assert go_text(value) == text


def test_compose_reads_a_leading_0_as_octal_and_no_yaml_file_prints_a_warning(recwarn: Any) -> None:
    """yaml.v3 (Compose's reader) takes `0755` as 493; syncer's own files stay YAML 1.2 (755). A
    float with an exponent and no dot (`1e3`) once made the C loader print a YAML 1.1 warning."""
    from syncer.stages.load import parse

    text = b"a: 0755\nb: -012\nc: 08\nd: 0x1F\ne: 0o17\nf: 1e3\ng: 1_000\nh: .5\ni: -.inf\n"
    compose, _ = parse("compose.yaml", text, compose=True)
    own, _ = parse("t.yaml", text)
    assert compose is not None and own is not None
    assert compose.docs[0] == {"a": 493, "b": -10, "c": 8, "d": 31, "e": 15, "f": 1000.0, "g": 1000, "h": 0.5,
                               "i": float("-inf")}
    assert own.docs[0]["a"] == 755 and own.docs[0]["f"] == 1000.0
    assert not recwarn.list, [str(w.message) for w in recwarn.list]


def test_depends_on_restart_is_read_as_compose_reads_it() -> None:
    """`restart: true` (or `yes`, `"true"`) is carried; `"false"` and `no` are false, as Compose
    reads them (measured with `docker compose config`); anything else is a located problem."""
    def imported(value: str) -> Imported:
        text = ("services:\n  db: {image: busybox}\n  web:\n    image: busybox\n    depends_on:\n"
                f"      db: {{condition: service_started, restart: {value}}}\n").encode()
        return _imported(text)

    for value in ("true", "yes", '"true"'):
        got = imported(value)
        assert not got.problems and "restart: true" in str(got.files["definitions/web.yaml"]), value
    for value in ('"false"', "no", "false"):
        got = imported(value)
        assert not got.problems and "restart" not in str(got.files["definitions/web.yaml"]), value
    for value in ('"banana"', "1"):
        assert [d.message for d in imported(value).problems] == [
            f"service 'web': depends_on.db.restart: expected true or false, got {'banana' if 'b' in value else 1!r}"
            .replace("got banana", "got 'banana'")], value


def test_partial_leaves_out_only_the_entry_it_cannot_carry() -> None:
    """One environment entry (or label) syncer cannot say (`${X:+y}`) is a problem of its own:
    the service's other entries are carried (`--partial` once wrote no `env` at all)."""
    got = _imported(b"services:\n  y:\n    image: busybox\n    environment:\n      KEEP: '1'\n"
                    b"      ALT: ${X:+y}\n    labels: [a=1, 'b=${X:+y}']\n")
    assert [(d.line, d.message) for d in got.problems] == [
        (6, "service 'y': environment.ALT: '${X:+y}': syncer inputs have no ':+' form"),
        (7, "service 'y': labels.1: '${X:+y}': syncer inputs have no ':+' form")]
    template = str(got.files["templates/y.yaml"])
    assert 'KEEP: "1"' in template and "labels: [a=1]" in template and "ALT" not in template, template


def test_a_password_written_over_several_lines_leaves_the_copied_env_file_whole() -> None:
    """A quoted value may span lines in an env file: every line of a password's statement
    leaves the file copied into the repository (the line-based cut left its later lines there)."""
    env = b'A=1\nDB_PASSWORD="line1\nline2-canary-9e"\n  # kept\nNOTE="two\nlines kept"\nB=2\n'
    got = _with_tree(b"services:\n  web:\n    image: busybox\n    env_file: [./app.env]\n", {"app.env": env})
    copied = got.files["files/app.env"]
    assert isinstance(copied, bytes) and b"canary" not in copied and b"line1" not in copied
    assert copied == b'A=1\n  # kept\nNOTE="two\nlines kept"\nB=2\n'
    assert "secret: DB_PASSWORD" in str(got.files["definitions/web.yaml"])


def test_volumes_from_what_cannot_be_shared_is_one_located_line_each() -> None:
    """Docker shares the other container's very volumes: a named volume or a bind mount is the
    same mount when copied; an anonymous volume or a tmpfs copied would be another one."""
    text = (b"services:\n  data:\n    image: a\n    volumes: [\"/cache\", \"kept:/kept\"]\n    tmpfs: [/run]\n"
            b"  more:\n    image: a\n    volumes:\n      - {type: tmpfs, target: /scratch}\n"
            b"  app:\n    image: a\n    volumes_from: [data, more, nowhere]\n"
            b"volumes:\n  kept: {}\n")
    got = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p")
    assert [str(p) for p in got.problems] == [
        "compose.yaml:4:15: service 'app': volumes_from: 'data' mounts an anonymous volume at /cache: Docker shares"
        " that one, a copy would be another; name it under the top-level volumes:",
        "compose.yaml:9:9: service 'app': volumes_from: 'more' mounts a tmpfs at /scratch: Docker shares that one,"
        " a copy would be another; name it under the top-level volumes:",
        "compose.yaml:12:32: service 'app': volumes_from: 'nowhere' is not a service of this Compose file"]
    assert "p_kept:/kept" in str(got.files["templates/app.yaml"])


def test_volumes_from_in_a_mode_other_than_ro_or_rw_is_refused_not_ignored() -> None:
    """Docker's `--volumes-from data:rx` is `invalid mode`: read-write mounts for a typo of `ro` would be a surprise."""
    text = (b"services:\n  data:\n    image: a\n    volumes: [\"kept:/kept\"]\n"
            b"  app:\n    image: a\n    volumes_from: [\"data:rx\"]\nvolumes:\n  kept: {}\n")
    got = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p")
    assert [str(p) for p in got.problems] == [
        "compose.yaml:7:20: service 'app': volumes_from: 'data:rx': the mode 'rx' is neither ro nor rw"]


def test_volumes_from_in_a_mode_mounts_each_entry_so_and_a_chain_keeps_it() -> None:
    text = (b"services:\n  data:\n    image: a\n    volumes: [\"kept:/kept\", \"/srv/x:/x:rw,z\", {type: bind, source: /etc,"
            b" target: /e}]\n  reader:\n    image: a\n    volumes_from: [\"data:ro\"]\n"
            b"  chain:\n    image: a\n    volumes_from: [reader]\n  writer:\n    image: a\n    volumes_from: [\"reader:rw\"]\n"
            b"volumes:\n  kept: {}\n")
    got = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p")
    assert got.problems == []
    for name in ("reader", "chain"):
        tpl = str(got.files[f"templates/{name}.yaml"])
        assert "p_kept:/kept:ro" in tpl and "/srv/x:/x:z,ro" in tpl and "read_only: true" in tpl, tpl
    assert "p_kept:/kept:rw" in str(got.files["templates/writer.yaml"])  # (the chain's outer mode wins)


def test_partial_leaves_out_a_value_syncer_refuses_and_every_problem_is_said_in_one_run(tmp_path: Path) -> None:
    """QA: beside something that cannot be carried (`cpuset`), a value syncer's spec refuses
    (`pull_policy: build`) went unsaid — the check of what is written ran only when nothing
    else was wrong — and `--partial` wrote it, exit 0, for `syncer validate` to refuse."""
    compose = tmp_path / "app" / "compose.yaml"
    compose.parent.mkdir()
    compose.write_text('services:\n  web:\n    image: busybox\n    pull_policy: build\n    cpuset: "0"\n'
                       '    init: "yes"\n')
    said = [f"{compose}:2:3: service 'web': spec.init: invalid value \"yes\" (templates/web.yaml:11:9 in the"
            " repository it becomes)",
            f"{compose}:2:3: service 'web': spec.pull_policy: \"build\" is not one of \"always\", \"never\","
            " \"missing\", \"if_not_present\" (templates/web.yaml:10:16 in the repository it becomes)",
            f"{compose}:5:5: service 'web': cpuset: not a field of syncer's container spec"]
    whole = engine_import(compose, out=tmp_path / "whole")
    assert [str(p) for p in whole.problems] == said and not (tmp_path / "whole").exists()
    partial = engine_import(compose, out=tmp_path / "out", partial=True)
    assert [str(p) for p in partial.problems] == said
    build_project(DirTree(tmp_path / "out"), str(tmp_path / "out"))  # (raises InvalidProject if refused)
    template = (tmp_path / "out" / "templates" / "web.yaml").read_text()
    assert "pull_policy" not in template and "init" not in template and "image: busybox" in template


def test_partial_leaves_out_a_dependency_on_a_service_it_leaves_out_so_what_it_writes_validates(
        tmp_path: Path) -> None:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: busybox\n    depends_on: [db, cache]\n  db: [1]\n"
                       "  cache:\n    image: busybox\n")
    report = engine_import(compose, out=tmp_path / "out", partial=True)
    assert [(p.line, p.message.split(" (")[0]) for p in report.problems] == [
        (2, "service 'web': depends_on names an unknown definition 'db'"), (5, "service 'db': expected a mapping")]
    build_project(DirTree(tmp_path / "out"), str(tmp_path / "out"))
    assert "depends_on: [cache]" in (tmp_path / "out" / "definitions" / "web.yaml").read_text()


def test_a_service_with_neither_an_image_nor_a_build_is_refused_as_compose_refuses_it() -> None:
    """QA: it was imported with an image made up (`p-web`); Compose says `service "web" has
    neither an image nor a build context specified`."""
    got = _imported(b"services:\n  web:\n    command: sleep 1\n  ok:\n    image: busybox\n")
    assert [str(p) for p in got.problems] == [
        "compose.yaml:2:3: service 'web': neither an image nor a build: Compose refuses it too (give it the image"
        " it runs)"]
    assert "templates/web.yaml" not in got.files and "templates/ok.yaml" in got.files
    built = _imported(b"services:\n  web:\n    build: .\n")  # (built: the name Compose gives the image)
    assert built.problems[0].message.startswith("service 'web': build:") and len(built.problems) == 1
    assert "image: p-web" in str(built.files["templates/web.yaml"])


def test_a_field_of_another_shape_than_compose_gives_it_is_one_located_line_not_read_piece_by_piece() -> None:
    """QA: `ports: "8080:80"` was read a character a port (`spec.ports[4]: invalid value ":"`),
    and a mapping among `environment`'s entries became an input named `{'foo': 'bar'}`."""
    got = _imported(b"services:\n  web:\n    image: busybox\n    ports: \"8080:80\"\n    environment:\n"
                    b"      - FOO: bar\n      - KEEP=1\n    deploy: [1]\n    volumes: [/data, [x]]\n")
    assert [str(p) for p in got.problems] == [
        "compose.yaml:4:5: service 'web': ports: expected a list, got a string (Compose refuses it too)",
        "compose.yaml:6:9: service 'web': environment.0: expected KEY=VALUE text, got a mapping (Compose refuses"
        " it too)",
        "compose.yaml:8:5: service 'web': deploy: expected a mapping, got a list (Compose refuses it too)",
        "compose.yaml:9:22: service 'web': volumes.1: expected a string or a mapping, got a list (Compose refuses"
        " it too)"]
    template = str(got.files["templates/web.yaml"])
    assert "ports" not in template and "env: [KEEP=1]" in template and "inputs." not in template, template
    got = _imported(b"services:\n  web:\n    image: busybox\n    environment: {A: {b: 1}, B: 2}\n")
    assert [str(p) for p in got.problems] == [
        "compose.yaml:4:19: service 'web': environment.A: expected a string, a number, a boolean or nothing, got a"
        " mapping (Compose refuses it too)"]


@pytest.mark.parametrize(("scale", "problem"), [
    (3, "compose.yaml:4:5: service 'web': scale: 3 beside deploy.replicas: 2: Compose refuses distinct values (give"
        " one of them)"),
    (2, None)])
def test_scale_and_deploy_replicas_that_differ_are_refused_as_compose_refuses_them(scale: int,
                                                                                    problem: str | None) -> None:
    """QA: `scale: 3` beside `deploy.replicas: 2` was imported as 2, without a word."""
    got = _imported(f"services:\n  web:\n    image: busybox\n    scale: {scale}\n    deploy:\n      replicas: 2\n"
                    .encode())
    assert [str(p) for p in got.problems] == ([problem] if problem else [])
    assert "replicas: 2" in str(got.files["definitions/web.yaml"])


def test_scale_or_replicas_given_as_text_are_the_number_compose_reads() -> None:
    """`scale: ${N:-2}` is the usual way to size a service from `.env`; Compose reads it (and
    `replicas: "2"`) as a number. The import refused it, and --partial left the service at 1."""
    text = (b"services:\n  sa:\n    image: a\n    scale: ${N:-2}\n  sb:\n    image: a\n    deploy: {replicas: \"2\"}\n"
            b"  sc:\n    image: a\n    scale: \"3\"\n  sd:\n    image: a\n    scale: \"${M}\"\n")
    got = import_compose("compose.yaml", text, read=lambda rel: None, project="p", folder="p")
    assert [str(p) for p in got.problems] == [
        "compose.yaml:11:3: service 'sd': replicas: no whole number (a variable without one for its default is read"
        " by Compose at `up` only: give the number, or the variable a default)"]
    for name, n in (("sa", 2), ("sb", 2), ("sc", 3)):
        assert f"replicas: {n}\n" in str(got.files[f"definitions/{name}.yaml"]), got.files[f"definitions/{name}.yaml"]
