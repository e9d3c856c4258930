"""Which environment variables syncer.yaml allows as secrets (`secrets: {env: [NAME, PREFIX_*]}`).

Pure: the patterns are read from the loaded project, the names are matched against them. The
engine reads the allowed variables' values (engine/secrets.py); render only says, when a secret
is not set, whether setting the variable is enough or syncer.yaml must allow it too.
"""

from __future__ import annotations

from collections.abc import Mapping

from syncer.core.model import Project

OWN_PREFIX = "SYNCER_"  # syncer's own variables: never a secret source


def allowed_env(project: Project) -> tuple[str, ...]:
    """The `secrets.env` patterns of syncer.yaml: exact names, or a prefix ending in `*`."""
    section = project.config.raw.get("secrets")
    names = section.get("env") if isinstance(section, Mapping) else None
    return tuple(str(n) for n in names) if isinstance(names, list) else ()


def env_allowed(name: str, patterns: tuple[str, ...]) -> bool:
    """True when the environment variable `name` may be a secret under `patterns`."""
    if name.startswith(OWN_PREFIX):
        return False
    return any(name.startswith(p[:-1]) if p.endswith("*") else name == p for p in patterns)
