"""Imports point down only, and each I/O library lives in its one module (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "syncer"

LAYERS = {
    0: {"model", "errors", "labels", "__init__"},
    1: {"load", "schema", "validate", "render", "plan", "health", "views", "hooks"},
    2: {"docker_api", "store", "gitsource", "notify", "lock", "cache"},
    3: {"observe", "apply", "engine", "operations"},
    4: {"watch", "api", "api_core", "api_resources", "api_metrics", "cli", "__main__"},
}
OWNERS = {"docker": "docker_api", "requests": "docker_api", "sqlite3": "store", "git": "gitsource",
          "httpx": "notify"}


def _level(module: str) -> int:
    for level, names in LAYERS.items():
        if module in names:
            return level
    raise AssertionError(f"syncer/{module}.py is in no layer: add it to LAYERS in {__file__}")


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "syncer":
                found.extend(f"syncer.{a.name}" for a in node.names)
            else:
                found.append(node.module)
    return found


def test_every_import_points_down_and_io_stays_in_its_module() -> None:
    problems = []
    modules = sorted(PACKAGE.glob("*.py"))
    assert modules, "no modules found"
    for path in modules:
        me = path.stem
        mine = _level(me)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "syncer" and "." in name:
                other = name.split(".")[1]
                if other != "__version__" and _level(other) > mine:
                    problems.append(f"{me} (layer {mine}) imports {other} (layer {_level(other)})")
            owner = OWNERS.get(top)
            if owner is not None and owner != me:
                problems.append(f"{me} imports {top}, which only {owner} may import")
    assert problems == []


def test_pure_stages_touch_no_io_library() -> None:
    forbidden = {"docker", "sqlite3", "git", "httpx", "subprocess", "socket", "requests"}
    for stage in ("model", "labels", "validate", "render", "plan", "schema", "hooks"):
        tops = {n.split(".")[0] for n in _imports(PACKAGE / f"{stage}.py")}
        assert not tops & forbidden, f"{stage} imports {tops & forbidden}"
