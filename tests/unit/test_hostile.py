"""A repository that cannot hurt the host that syncs it (issue 12, points 7 and 8).

Paths that resolve outside the repository, FIFOs, devices and huge files are refused with
an error naming the path, never quoting what it points at; hostile YAML costs bounded time
and memory and ends in a located error. The golden cases in tests/cases/bad/ pin the exact
messages; these tests cover what a case directory cannot hold (links, FIFOs) and fuzz.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncer.adapters import cache
from syncer.core.errors import InvalidProject
from syncer.stages.load import DirTree, parse
from syncer.stages.tree import MAX_FILE_BYTES, UnsafePath, resolve_in_repo
from syncer.stages.validate import build_project

SECRET = "TOPSECRET-from-host-file value!"
TEMPLATE = """\
id: web
version: "1"
inputs:
  type: object
  properties:
    name: {type: string, pattern: "^[a-z]+$"}
    items: {type: array}
spec:
  image: busybox
  env: {NAME: "${inputs.name}"}
"""


def _repo(root: Path) -> Path:
    (root / "templates").mkdir(parents=True)
    (root / "definitions").mkdir()
    (root / "syncer.yaml").write_text("project: demo\n")
    (root / "templates/web.yaml").write_text(TEMPLATE)
    return root


def _problems(root: Path) -> list[str]:
    with pytest.raises(InvalidProject) as info:
        build_project(DirTree(root), str(root))
    return [str(d) for d in info.value.diagnostics]


def test_symlink_to_a_file_outside_is_refused_and_never_quoted(tmp_path: Path) -> None:
    outside = tmp_path / "host-secret.yaml"
    outside.write_text(f"name: web\ntemplate: web\nparams: {{name: '{SECRET}'}}\n")
    root = _repo(tmp_path / "repo")
    (root / "definitions/leak.yaml").symlink_to(outside)
    problems = _problems(root)
    assert problems == [("definitions/leak.yaml:1:1: the path leads outside the repository"
                         " (through a symbolic link): refused")]
    assert all(SECRET not in p for p in problems)


@pytest.mark.parametrize("link", ["syncer.yaml", "templates", "definitions"])
def test_syncer_yaml_and_folders_that_lead_outside_are_refused(tmp_path: Path, link: str) -> None:
    root = _repo(tmp_path / "repo")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "syncer.yaml").write_text(f"project: {SECRET}\n")
    (elsewhere / "x.yaml").write_text(f"name: {SECRET}\n")
    target = root / link
    if target.is_dir():
        for child in target.iterdir():
            child.unlink()
        target.rmdir()
    else:
        target.unlink()
    target.symlink_to(elsewhere / "syncer.yaml" if link == "syncer.yaml" else elsewhere)
    problems = _problems(root)
    assert problems == [f"{link}:1:1: the path leads outside the repository (through a symbolic link): refused"]


def test_a_link_inside_the_repository_is_followed(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    (root / "shared").mkdir()
    (root / "shared/web.yaml").write_text("name: web\ntemplate: web\nparams: {name: ok}\n")
    (root / "definitions/web.yaml").symlink_to(root / "shared/web.yaml")
    assert [d.name for d in build_project(DirTree(root), str(root)).definitions] == ["web"]


def test_resolve_in_repo_is_the_one_path_check(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    assert resolve_in_repo(root, "templates/web.yaml") == (root / "templates/web.yaml").resolve()
    for bad in ("/etc/passwd", "../x", "files/../../x"):
        with pytest.raises(UnsafePath):
            resolve_in_repo(root, bad)


def test_fifo_and_dev_zero_are_refused_without_blocking(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    os.mkfifo(root / "definitions/pipe.yaml")
    (root / "definitions/zero.yaml").symlink_to("/dev/zero")
    (root / "definitions/inner").mkdir()
    os.symlink("/dev/zero", root / "definitions/inner/z.yaml")
    started = time.monotonic()
    problems = _problems(root)
    key = cache.repo_key(root)  # hashing the repo for the cache must not block on them either
    assert time.monotonic() - started < 5 and key
    assert problems == [
        "definitions/inner/z.yaml:1:1: the path leads outside the repository (through a symbolic link): refused",
        "definitions/pipe.yaml:1:1: not a regular file (a FIFO, socket or device): refused",
        "definitions/zero.yaml:1:1: the path leads outside the repository (through a symbolic link): refused",
    ]


def test_a_file_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    (root / "definitions/big.yaml").write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    assert _problems(root) == ["definitions/big.yaml:1:1: the file is larger than 1024 KiB: refused"]


def test_policy_option_and_env_reach_validation(tmp_path: Path) -> None:
    root = _repo(tmp_path / "repo")
    (root / "syncer.yaml").write_text("project: demo\npolicy: {privileged: true}\n")
    (tmp_path / "policy.yaml").write_text("bind_mounts: [/srv]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCER_")}
    base = [sys.executable, "-m", "syncer", "--repo", str(root), "--state-dir", str(tmp_path / "s")]
    for extra, more_env in (([], {}), (["--policy", str(tmp_path / "policy.yaml")], {}),
                            ([], {"SYNCER_POLICY": str(tmp_path / "policy.yaml")})):
        proc = subprocess.run([*base, *extra, "validate"], capture_output=True, text=True,
                              env={**env, **more_env}, timeout=60, check=False)
        if not extra and not more_env:
            assert proc.returncode == 0, proc.stderr  # no operator policy: the repository's own
        else:
            assert proc.returncode == 1
            assert proc.stderr == ("syncer.yaml:2:22: policy.privileged: the operator's policy forbids it;"
                                   " the repository cannot allow it\n")


# --- fuzz: generated hostile YAML costs bounded time and memory, and ends located ----------

_PIECES = st.sampled_from([
    "a", "b: ", "- ", "  ", "\n", "[", "]", "{", "}", ",", ": ", "&x ", "*x", "&y ", "*y", "<<: *x\n",
    "1: ", "~: ", "true: ", "? ", "|\n", ">-\n", "'", '"', "#", "---\n", "\t", "\x00", "\\", "!!binary ",
    "!!python/object ", "%YAML 1.1\n", "${", "}", "$ref: '#'\n", "pattern: '^(a+)+$'\n",
])


@settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=60), st.integers(min_value=0, max_value=3))
def test_fuzzed_yaml_parses_or_fails_located_within_budget(pieces: list[str], repeat: int) -> None:
    text = "".join(pieces) * (1 + repeat)
    # a bomb shape mixed in sometimes: anchors multiplied level by level
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    source, problems = parse("f.yaml", text.encode("utf-8"))
    assert time.monotonic() - started < 1.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    if source is None:
        assert len(problems) == 1 and problems[0].file == "f.yaml"
        assert problems[0].line >= 1 and problems[0].column >= 1, problems[0]
    else:  # what parses is safe for everything after: string keys, bounded once expanded
        assert _expanded(list(source.docs), budget=[200_000]) >= 0


def _expanded(value: object, budget: list[int], depth: int = 0) -> int:
    budget[0] -= 1
    assert budget[0] >= 0 and depth <= 64, "expands beyond the budget"
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value), "a key that is not a string"
        return 1 + sum(_expanded(v, budget, depth + 1) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_expanded(v, budget, depth + 1) for v in value)
    return 1


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(_PIECES, max_size=40), st.integers(min_value=2, max_value=9))
def test_fuzzed_definition_validates_or_fails_located(tmp_path: Path, pieces: list[str], levels: int) -> None:
    root = tmp_path / f"r{time.monotonic_ns()}"
    _repo(root)
    # a "billion laughs": each level ten aliases of the one before, valid for the schema
    bomb = '    - &l0 ["x","x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"    - &l{i} [" + ",".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, levels))
    (root / "definitions/d.yaml").write_text("name: web\ntemplate: web\nparams:\n  name: " + "".join(pieces) + "\n")
    (root / "definitions/bomb.yaml").write_text("name: bomb\ntemplate: web\nparams:\n  name: x\n  items:\n" + bomb)
    started = time.monotonic()
    try:
        project = build_project(DirTree(root), str(root))
        assert len(json.dumps(cache.project_to_json(project))) < 5_000_000  # what the cache writes
    except InvalidProject as exc:
        for d in exc.diagnostics:
            assert d.file.startswith("definitions/") and d.line >= 1 and d.column >= 1, d
    assert time.monotonic() - started < 3
