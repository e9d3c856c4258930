"""The house of STYLE.md: one folder per floor, imports point down, shells call the engine
only, and each I/O library lives in its one adapter. Every module of the package is checked."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "syncer"

FLOORS = {"core": 0, "stages": 1, "adapters": 2, "engine": 3, "daemon": 4, "api": 4, "cli": 4}
SHELLS = {"daemon", "api", "cli"}
# the third-party (or stdlib) library -> the modules (relative to syncer/) that may import it
OWNERS = {
    "docker": ("adapters/docker.py", "adapters/docker_tls.py", "adapters/swarm.py"),
    "requests": ("adapters/docker.py", "adapters/swarm.py"),
    "paramiko": (),
    "sqlite3": ("adapters/store/",),
    "git": ("adapters/git.py",),
    "httpx": ("adapters/webhooks.py",),
    "fastapi": ("api/",),
    "starlette": ("api/",),
    "uvicorn": ("api/",),
    "pydantic": ("api/",),
    "click": ("cli/",),
    "rich": ("cli/",),
    "watchfiles": ("daemon/",),
    "ruamel": ("stages/load.py",),
    "jsonschema": ("stages/",),
    "prometheus_client": ("api/",),
    "pyrage": ("adapters/sops.py",),
    "cryptography": ("adapters/sops.py",),
}
PURE_FORBIDDEN = {"docker", "sqlite3", "git", "httpx", "subprocess", "socket", "requests", "threading",
                  "fcntl", "urllib.request"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _floor(rel: str) -> str | None:
    head = rel.split("/")[0]
    return head if head in FLOORS else None


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "syncer" or node.module.startswith("syncer.") and node.module.count(".") == 1:
                found.extend(f"{node.module}.{a.name}" for a in node.names)
            else:
                found.append(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append("<relative>")
    return found


def _target_floor(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOORS else None


def test_the_package_holds_only_the_floors() -> None:
    loose = sorted(p.name for p in PACKAGE.iterdir()
                   if p.name not in {"__init__.py", "__main__.py", "__pycache__"} and p.name not in FLOORS)
    assert loose == [], f"syncer/ holds more than the floors of STYLE.md: {loose}"
    for floor in FLOORS:
        assert (PACKAGE / floor / "__init__.py").is_file(), f"syncer/{floor}/ is not a package"


def test_no_module_is_over_400_lines() -> None:
    long = {_rel(p): n for p in _modules() if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_every_import_points_down() -> None:
    problems = []
    for path in _modules():
        me = _rel(path)
        mine = _floor(me)
        for name in _imports(path):
            if name == "<relative>":
                problems.append(f"{me} uses a relative import")
                continue
            if not name.startswith("syncer.") or name == "syncer.__version__":
                continue
            other = _target_floor(name)
            if other is None or mine is None:
                if mine is not None and other is None:
                    problems.append(f"{me} imports {name}, which is on no floor")
                continue
            if FLOORS[other] > FLOORS[mine]:
                problems.append(f"{me} ({mine}) imports {name} ({other}): an arrow pointing up")
    assert problems == []


def test_shells_call_the_engine_only() -> None:
    problems = []
    for path in _modules():
        me = _rel(path)
        if _floor(me) not in SHELLS:
            continue
        for name in _imports(path):
            other = _target_floor(name) if name.startswith("syncer.") else None
            if other in {"adapters", "stages"}:
                problems.append(f"{me} imports {name}: a shell calls the engine (and core), never {other}")
    assert problems == []


def test_each_io_library_stays_in_its_adapter() -> None:
    problems = []
    for path in _modules():
        me = _rel(path)
        for name in _imports(path):
            top = name.split(".")[0]
            owners = OWNERS.get(top)
            if owners is not None and not any(me == o or (o.endswith("/") and me.startswith(o)) for o in owners):
                problems.append(f"{me} imports {top}, which only {', '.join(owners) or 'nobody'} may import")
    assert problems == []


def test_core_and_stages_are_pure() -> None:
    problems = []
    for path in _modules():
        me = _rel(path)
        if _floor(me) not in {"core", "stages"}:
            continue
        for name in _imports(path):
            if name in PURE_FORBIDDEN or name.split(".")[0] in PURE_FORBIDDEN:
                problems.append(f"{me} imports {name}")
            if _floor(me) == "core" and not name.startswith(("syncer.core", "__future__")) \
                    and name.split(".")[0] not in _STDLIB_OK:
                problems.append(f"{me} imports {name}: core is stdlib only")
    assert problems == []


_STDLIB_OK = {"abc", "collections", "dataclasses", "datetime", "enum", "hashlib", "hmac", "json", "math",
              "re", "time", "typing", "os", "pathlib", "functools", "itertools", "string", "difflib",
              "secrets", "threading", "uuid", "__future__", "syncer"}


def test_the_layer_test_sees_a_violation(tmp_path: Path) -> None:
    """The checks above can fail: an adapter imported by a shell is caught."""
    bad = tmp_path / "m.py"
    bad.write_text("from syncer.adapters.store import Store\nimport sqlite3\n")
    assert _target_floor(_imports(bad)[0]) == "adapters" and "sqlite3" in _imports(bad)
