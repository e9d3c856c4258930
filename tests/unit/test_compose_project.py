"""The project a Compose application is and the services `docker compose up` starts, as
Compose picks them: `--project` / `--profile`, then the shell's COMPOSE_PROJECT_NAME /
COMPOSE_PROFILES, then `.env`'s (or the `--env-file`s'), then `name:` and the folder.
(QA: the import read neither variable, so a migrated app started on new, empty volumes.)"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from syncer.engine.importer import import_compose as engine_import
from syncer.stages.compose import Imported, import_compose

COMPOSE = b"""services:
  store: {image: busybox, volumes: [data:/data]}
  extra: {image: busybox, profiles: [extra]}
volumes:
  data:
"""


def _import(dotenv: str | None = None, *, environ: Mapping[str, str] | None = None, project: str | None = None,
            profiles: tuple[str, ...] = (), env_files: list[bytes] | None = None, name: str = "") -> Imported:
    files = {".env": dotenv.encode()} if dotenv is not None else {}
    data = (f"name: {name}\n" if name else "").encode() + COMPOSE
    return import_compose("compose.yaml", data, read=files.get, project=project, folder="app", profiles=profiles,
                          environ=environ, env_files=env_files)


def _volume(got: Imported) -> str:
    return str(got.files["templates/store.yaml"]).split("volumes: [")[1].split("]")[0]


@pytest.mark.parametrize(("dotenv", "environ", "project", "name", "want"), [
    ("COMPOSE_PROJECT_NAME=from-dotenv\n", None, None, "", "from-dotenv"),
    ("COMPOSE_PROJECT_NAME=from-dotenv\n", None, None, "named", "from-dotenv"),  # (.env over name:)
    ("COMPOSE_PROJECT_NAME=from-dotenv\n", {"COMPOSE_PROJECT_NAME": "from-shell"}, None, "", "from-shell"),
    (None, {"COMPOSE_PROJECT_NAME": "from-shell"}, None, "named", "from-shell"),
    ("COMPOSE_PROJECT_NAME=from-dotenv\n", {"COMPOSE_PROJECT_NAME": "from-shell"}, "given", "", "given"),
    # set empty in the shell: .env's is hidden and the name is the next place's (`docker compose config`)
    ("COMPOSE_PROJECT_NAME=from-dotenv\n", {"COMPOSE_PROJECT_NAME": ""}, None, "named", "named"),
    ("COMPOSE_PROJECT_NAME=from-dotenv\n", {"COMPOSE_PROJECT_NAME": ""}, None, "", "app"),
    ("OTHER=1\n", None, None, "", "app"),
])
def test_the_project_is_named_as_compose_names_it_and_so_are_its_volumes(
        dotenv: str | None, environ: dict[str, str] | None, project: str | None, name: str, want: str) -> None:
    got = _import(dotenv, environ=environ, project=project, name=name)
    assert got.project == want and _volume(got) == f'"{want}_data:/data"' and not got.problems
    assert f"project: {want}\n" in str(got.files["syncer.yaml"])


@pytest.mark.parametrize(("dotenv", "environ", "profiles", "started"), [
    ("COMPOSE_PROFILES=extra\n", None, (), True),
    ("COMPOSE_PROFILES=other,extra\n", None, (), True),
    (None, {"COMPOSE_PROFILES": "other, extra"}, (), True),  # (spaces around a name: Compose trims them)
    (None, {"COMPOSE_PROFILES": "extra"}, (), True),
    ("COMPOSE_PROFILES=extra\n", {"COMPOSE_PROFILES": ""}, (), False),  # (the shell's, empty, hides .env's)
    ("COMPOSE_PROFILES=extra\n", {"COMPOSE_PROFILES": "other"}, (), False),
    ("COMPOSE_PROFILES=extra\n", None, ("other",), False),  # (--profile replaces the variable, as Compose's)
    ("COMPOSE_PROFILES=other\n", None, ("extra",), True),
    (None, None, ("*",), True),  # (Compose's "all of them")
    (None, {"COMPOSE_PROFILES": "*"}, (), True),
])
def test_the_profiles_started_are_those_compose_starts(dotenv: str | None, environ: dict[str, str] | None,
                                                       profiles: tuple[str, ...], started: bool) -> None:
    got = _import(dotenv, environ=environ, profiles=profiles)
    assert ("definitions/extra.yaml" in got.files) is started and ("extra" in got.skipped) is not started


def test_env_files_replace_dotenv_for_variables_and_for_the_name_a_later_one_winning() -> None:
    dotenv = "COMPOSE_PROJECT_NAME=from-dotenv\nCOMPOSE_PROFILES=extra\n"
    got = _import(dotenv, env_files=[b"COMPOSE_PROJECT_NAME=first\nX=1\n", b"COMPOSE_PROJECT_NAME=second\n"])
    assert got.project == "second" and "extra" in got.skipped  # (.env's profile is not read either)
    assert _import(dotenv, env_files=[b"X=1\n"]).project == "app"


def test_the_command_reads_the_processs_environment_and_its_env_files(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "compose.yaml").write_bytes(COMPOSE)
    (folder / ".env").write_text("COMPOSE_PROJECT_NAME=from-dotenv\nCOMPOSE_PROFILES=extra\n")
    (tmp_path / "given.env").write_text("COMPOSE_PROJECT_NAME=from-env-file\n")
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    monkeypatch.delenv("COMPOSE_PROFILES", raising=False)
    report = engine_import(folder / "compose.yaml", out=tmp_path / "a")
    assert report.project == "from-dotenv" and report.skipped == {} and "definitions/extra.yaml" in report.written
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "from-shell")
    assert engine_import(folder / "compose.yaml", out=tmp_path / "b").project == "from-shell"
    report = engine_import(folder / "compose.yaml", out=tmp_path / "c", environ={},
                           env_files=(tmp_path / "given.env",))
    assert report.project == "from-env-file" and set(report.skipped) == {"extra"}
