"""How template versions order (the catalog lists them so; a definition without a version
takes the newest)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol, TypeVar


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


T = TypeVar("T", bound=_Versioned)


def version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """How template versions order: part by part on `.`, `-`, `+`; numbers by value, and a
    word ("latest", "rc1") after every number."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.\-+]", version))


def newest_first(templates: Iterable[T]) -> list[T]:
    """Templates ordered by `version_key`, newest first."""
    return sorted(templates, key=lambda t: version_key(t.version), reverse=True)


def api_key(version: str) -> tuple[int, ...]:
    """An Engine API version ("1.41") as numbers that order; (0,) when unknown."""
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)
