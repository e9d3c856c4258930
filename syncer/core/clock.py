"""The one clock: how syncer reads the time and writes it down.

Every timestamp syncer stores, prints or serves is UTC ISO 8601 with a `Z`. The store keeps
milliseconds (its rows sort as text); plans, locks and API fields show seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    """Seconds since the epoch (the only wall-clock read outside tests)."""
    return time.time()


def iso(at: float | datetime | None = None, *, ms: bool = False) -> str:
    """`at` (default: now) as UTC ISO 8601 with a Z, to the second or to the millisecond."""
    moment = datetime.fromtimestamp(now() if at is None else at, UTC) if not isinstance(at, datetime) else at
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


def stamp(at: float | datetime | None = None) -> str:
    """As the store writes times: UTC, milliseconds, sortable as text."""
    return iso(at, ms=True)


def epoch(text: str) -> float:
    """An ISO 8601 time (with Z or an offset; naive is UTC) back to seconds since the epoch."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).timestamp()
