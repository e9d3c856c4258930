"""A cache of validated projects in the state dir, keyed by the bytes of every YAML file.

Parsing and validating a thousand definitions costs more than everything else a no-op
apply does; when not one byte of the repository (nor of syncer's own code and schemas)
changed since the last valid load, the result is the same, so it is read back instead.
Only valid projects are cached: an invalid one is validated afresh every time, so its
diagnostics are always current.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

from syncer.core.model import Project

CACHE_DIR = "cache"
_PACKAGE = Path(__file__).resolve().parents[1]


def _code_fingerprint() -> bytes:
    """Every module and schema of the syncer package: a change to how files are read
    invalidates the cache."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(_PACKAGE):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
        for name in sorted(filenames):
            if name.endswith((".py", ".json")):
                st = os.stat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), _PACKAGE)
                h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.digest()


def repo_key(root: Path) -> str:
    """sha256 of every YAML file under `root` (path and bytes), hidden folders skipped."""
    h = hashlib.sha256(_code_fingerprint())
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml")):
                path = os.path.join(dirpath, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                try:
                    with open(path, "rb") as f:
                        h.update(hashlib.sha256(f.read()).digest())
                except OSError:
                    h.update(b"unreadable")
    return h.hexdigest()


def get(state: Path, key: str) -> Project | None:
    """The cached project for `key`, or None (a damaged entry counts as absent)."""
    try:
        with open(state / CACHE_DIR / f"project-{key[:32]}.pickle", "rb") as f:
            project = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None
    return project if isinstance(project, Project) else None


def put(state: Path, key: str, project: Project) -> None:
    """Remember a valid project; keeps only the latest entry. Failures are ignored."""
    folder = state / CACHE_DIR
    try:
        folder.mkdir(exist_ok=True)
        for old in folder.glob("project-*.pickle"):
            old.unlink(missing_ok=True)
        tmp = folder / f".project-{key[:32]}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(project, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / f"project-{key[:32]}.pickle")
    except OSError:
        pass
