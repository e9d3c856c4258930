"""The corpus of bad repositories: each must fail with exactly its expected diagnostics.

Every directory under tests/cases/bad/ is a small complete repository with deliberate
problems and an `expected.txt` holding the exact stderr lines (FILE:LINE:COLUMN: message)
that `syncer validate` prints. An optional `must-not-appear.txt` lists strings (literal
secret values) that must never show in the output.

`syncer plan` must stop at validation with the same lines, before it observes anything:
it runs against an unreachable Docker engine (DOCKER_HOST=tcp://127.0.0.1:1).

Each case is copied to a temporary directory first (outside this git work tree, so that
nothing asks git about it and nothing is ever written beside the case). The CLI runs in a
fresh interpreter, with the environment a user's shell would give it: the runs needed by
the selected tests go through ONE such interpreter, one after the other (`BATCH` calls the
console script's own `main` with its streams captured), because each interpreter pays
syncer's start-up; two cases also run as processes of their own and must print the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CASES_DIR = REPO_ROOT / "tests" / "cases" / "bad"
CASES = sorted(p.name for p in CASES_DIR.iterdir() if p.is_dir())
NOT_IN_REPO = ("expected.txt", "must-not-appear.txt")
UNREACHABLE_DOCKER = "tcp://127.0.0.1:1"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCER_", "DOCKER_"))}
    env["DOCKER_HOST"] = UNREACHABLE_DOCKER  # validate never needs it; plan must not reach it
    env["NO_COLOR"] = "1"
    env.pop("SYNCER_DEBUG", None)
    return env


BATCH = """
import contextlib, io, json, os, sys, traceback
from syncer.cli.main import main
out = []
for cwd, argv in json.load(sys.stdin):
    os.chdir(cwd)
    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            code, _ = 99, stderr.write(traceback.format_exc())
    out.append([code, stdout.getvalue(), stderr.getvalue()])
json.dump(out, sys.__stdout__)
"""


def _argv(command: str, case: str, workdir: Path) -> list[str]:
    repo = workdir / "repo"
    shutil.copytree(CASES_DIR / case, repo, ignore=shutil.ignore_patterns(*NOT_IN_REPO))
    return ["--repo", str(repo), "--state-dir", str(workdir / "state"), command]


def _run(command: str, case: str, workdir: Path) -> Run:
    proc = subprocess.run([sys.executable, "-m", "syncer", *_argv(command, case, workdir)],
                          capture_output=True, text=True, env=_env(), cwd=workdir, timeout=120, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def _batch(jobs: dict[tuple[str, str], Path]) -> dict[tuple[str, str], Run]:
    keys = sorted(jobs)
    calls = [[str(jobs[k]), _argv(k[0], k[1], jobs[k])] for k in keys]
    proc = subprocess.run([sys.executable, "-c", BATCH], input=json.dumps(calls), capture_output=True, text=True,
                          env=_env(), cwd=REPO_ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {k: Run(*row) for k, row in zip(keys, json.loads(proc.stdout), strict=True)}


@pytest.fixture(scope="session")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Run]:
    """(command, case) → its run, for every case the selected tests of this module need."""
    wanted: set[tuple[str, str]] = set()
    for item in request.session.items:
        module, callspec = getattr(item, "module", None), getattr(item, "callspec", None)
        if module is None or module.__name__ != __name__ or callspec is None:
            continue
        if {"command", "case"} <= set(callspec.params):
            wanted.add((callspec.params["command"], callspec.params["case"]))
    jobs = {key: tmp_path_factory.mktemp(f"{key[0]}-{key[1]}") for key in sorted(wanted)}
    return _batch(jobs) if jobs else {}


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_process_of_its_own_prints_what_the_batch_printed(tmp_path: Path, command: str) -> None:
    """The batch is no softer than the console script: the same case, run both ways."""
    case = "defaults-server-unknown" if "defaults-server-unknown" in CASES else CASES[0]
    alone = _run(command, case, tmp_path / "alone")
    batched = _batch({(command, case): tmp_path / "batched"})[(command, case)]
    assert alone == batched and alone.code == 1 and alone.stderr


def _expected(case: str) -> list[str]:
    return (CASES_DIR / case / "expected.txt").read_text(encoding="utf-8").splitlines()


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 35, CASES


@pytest.mark.parametrize("case", CASES)
def test_case_is_well_formed(case: str) -> None:
    """A case is a repository with a syncer.yaml and at least one expected line."""
    assert (CASES_DIR / case / "syncer.yaml").is_file()
    lines = _expected(case)
    assert lines, f"{case}/expected.txt is empty"
    for line in lines:
        file, _, rest = line.partition(":")
        assert (CASES_DIR / case / file).is_file(), f"{case}: {line!r} names a file that is not in the case"
        assert rest.strip(), line


@pytest.mark.parametrize("command", ["validate", "plan"])
@pytest.mark.parametrize("case", CASES)
def test_bad_case_fails_with_expected_diagnostics(runs: dict[tuple[str, str], Run], case: str, command: str) -> None:
    run = runs[(command, case)]
    assert "Traceback" not in run.stdout + run.stderr
    assert "internal error" not in run.stderr
    assert run.stderr.splitlines() == _expected(case)
    assert run.stdout == ""
    assert run.code == 1
    forbidden = CASES_DIR / case / "must-not-appear.txt"
    if forbidden.exists():
        for secret in forbidden.read_text(encoding="utf-8").splitlines():
            assert secret and secret not in run.stdout + run.stderr


def test_literal_secret_cases_exist() -> None:
    """The corpus keeps its secret-leak checks (a literal password must never be echoed)."""
    guarded = [c for c in CASES if (CASES_DIR / c / "must-not-appear.txt").exists()]
    assert len(guarded) >= 2, guarded
    for case in guarded:
        files = [p for p in (CASES_DIR / case).rglob("*.yaml")]
        values = (CASES_DIR / case / "must-not-appear.txt").read_text(encoding="utf-8").splitlines()
        for value in values:  # the value really is in the case's files, so the check means something
            assert any(value in p.read_text(encoding="utf-8") for p in files), (case, value)
