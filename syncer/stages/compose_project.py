"""Which project a Compose application is and which of its services `docker compose up`
starts: the project's name and the active profiles, from the same places and in the same
order as Compose (`docker compose config` shows what it decides). Pure."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from syncer.stages.files import parse_env

NAME, PROFILES = "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"


def chosen(explicit: str | None, profiles: Collection[str], *, environ: Mapping[str, str],
           env_files: Sequence[bytes], doc_name: Any, folder: str) -> tuple[str, list[str], dict[str, str]]:
    """The project's name, the profiles to start and the variables Compose interpolates
    with, as Compose picks them. The variables: those of the env files (`.env` beside the
    Compose file, or the `--env-file`s that replace it; a later file's value wins). The name
    and profiles: `--project` / `--profile`, else the shell's COMPOSE_PROJECT_NAME /
    COMPOSE_PROFILES (`environ`), else those of the env files, else the file's `name:` and
    its folder's name / no profile. A variable set empty in the shell hides the env files',
    and an empty name is none (the next place is read), as Compose reads them."""
    dotenv: dict[str, str] = {}
    for data in env_files:
        dotenv.update(parse_env(data, expand=True))
    env = {**dotenv, **environ}
    given = list(profiles) if profiles else [p.strip() for p in env.get(PROFILES, "").split(",") if p.strip()]
    return project_name(explicit or env.get(NAME) or None, doc_name, folder), given, dotenv


def project_name(explicit: str | None, doc_name: Any, folder: str) -> str:
    """--project (or COMPOSE_PROJECT_NAME: `chosen`), else the Compose file's `name:`, else
    its folder's name, as Compose normalises it (lower case; letters, digits, `_` and `-`)."""
    for candidate in (explicit, doc_name if isinstance(doc_name, str) else None, folder):
        if candidate:
            name = re.sub(r"[^a-z0-9_-]", "", candidate.lower()).lstrip("_-")
            if name:
                return name
    return "imported"


def enabled(name: str, raw: Any, profiles: Collection[str], skipped: dict[str, str]) -> bool:
    """Whether `docker compose --profile P… up` would start the service: one in profiles
    none of which is asked for is left out, and said so in `skipped` (none asked: Compose's
    profile ""; `*`: all of them). One whose profiles are not a list of names is read, for
    compose_shapes to say what Compose refuses in it."""
    listed = raw.get("profiles") if isinstance(raw, dict) else None
    if not isinstance(listed, list) or not listed or not all(isinstance(p, str) for p in listed) or "*" in profiles \
            or (set(profiles) or {""}) & {str(p) for p in listed}:
        return True
    names = ", ".join(str(p) for p in listed)
    skipped[name] = f"in profile {names}: Compose starts it only when asked (--profile {listed[0]})"
    return False
