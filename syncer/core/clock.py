"""The one clock: how syncer reads the time and writes it down.

Every timestamp syncer stores, prints or serves is UTC ISO 8601 with a `Z`. The store keeps
milliseconds (its rows sort as text); plans, locks and API fields show seconds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from syncer.core.errors import SyncerError


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


def parse_duration(text: str) -> float:
    """`30s`, `5m`, `1h`, `1d`, `250ms` or plain seconds → seconds."""
    text = text.strip()
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0))
    for suffix, factor in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    try:
        return float(text)
    except ValueError:
        raise SyncerError(f"invalid duration '{text}' (use e.g. 30s, 5m, 1h, 1d)") from None
