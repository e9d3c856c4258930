"""Which project a Compose application is and which of its services `docker compose up`
starts: the project's name and the active profiles, from the same places and in the same
order as Compose (`docker compose config` shows what it decides). Pure."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any


def project_name(explicit: str | None, doc_name: Any, folder: str) -> str:
    """--project, else the Compose file's `name:`, else its folder's name, as Compose
    normalises it (lower case; letters, digits, `_` and `-`)."""
    for candidate in (explicit, doc_name if isinstance(doc_name, str) else None, folder):
        if candidate:
            name = re.sub(r"[^a-z0-9_-]", "", candidate.lower()).lstrip("_-")
            if name:
                return name
    return "imported"


def enabled(name: str, raw: Any, profiles: Collection[str], skipped: dict[str, str]) -> bool:
    """Whether `docker compose --profile P… up` would start the service: one in profiles
    none of which is asked for is left out, and said so in `skipped` (none asked: Compose's
    profile "")."""
    listed = raw.get("profiles") if isinstance(raw, dict) else None
    if not isinstance(listed, list) or not listed or (set(profiles) or {""}) & {str(p) for p in listed}:
        return True
    names = ", ".join(str(p) for p in listed)
    skipped[name] = f"in profile {names}: Compose starts it only when asked (--profile {listed[0]})"
    return False
