"""Paths the machine makes unusable — a state directory that is a file, a device or under a
file, a definition that is a symbolic link loop, a lock file that is a directory — are one
clear line and exit 1, never `internal error` (QA: each was `syncer: internal error:
FileExistsError ...`). Docker is never reached: every case stops before it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_cli, simple_repo

UNREACHABLE = {"DOCKER_HOST": "tcp://127.0.0.1:1"}


@pytest.mark.parametrize("where", ["a file", "/dev/null", "under a file", "/proc"])
def test_a_state_directory_that_cannot_be_one_is_said_in_one_line(tmp_path: Path, where: str) -> None:
    repo = simple_repo(tmp_path / "repo", "upath")
    (tmp_path / "file").write_text("x")
    state = {"a file": tmp_path / "file", "/dev/null": Path("/dev/null"), "under a file": tmp_path / "file/sub",
             "/proc": Path("/proc/syncer-state")}[where]
    for command in (("plan",), ("apply", "--auto-approve")):
        out = run_cli("--repo", str(repo), "--state-dir", str(state), *command, env=UNREACHABLE)
        why = "No such file or directory" if where == "/proc" else "not a directory"
        assert (out.returncode, out.stdout, out.stderr) == (1, "", f"state directory {state}: {why} (--state-dir)\n")


def test_a_definition_that_is_a_symbolic_link_loop_is_located(tmp_path: Path) -> None:
    repo = simple_repo(tmp_path / "repo", "upath")
    (repo / "definitions").mkdir(exist_ok=True)
    (repo / "definitions/loop.yaml").symlink_to("loop.yaml")
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "validate", env=UNREACHABLE)
    assert out.returncode == 1
    assert out.stderr == "definitions/loop.yaml:1:1: cannot be read: Too many levels of symbolic links\n"


def test_an_error_of_the_machine_is_its_own_words_not_an_internal_error(tmp_path: Path) -> None:
    repo = simple_repo(tmp_path / "repo", "upath")
    (tmp_path / "s/apply.lock").mkdir(parents=True)  # where the apply's lock file goes
    out = run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "s"), "apply", "--auto-approve",
                  env=UNREACHABLE)
    assert (out.returncode, out.stderr) == (1, f"syncer: Is a directory: {tmp_path / 's/apply.lock'}\n")
