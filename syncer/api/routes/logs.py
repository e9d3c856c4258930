"""syncer's own log records (the VersionTwo seed's logs resource), newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from syncer.api.routes.common import Paging, Svc
from syncer.api.routes.definitions import TIME, bounded
from syncer.core import clock
from syncer.engine import logbook

router = APIRouter()

Level = Literal["debug", "info", "warn", "error"]


@router.get("/logs", tags=["logs"], summary="syncer's own log records")
def list_logs(svc: Svc, page: Paging, level: Annotated[Level | None, Query(description="This level and above")] = None,
              component: Annotated[str | None, Query(max_length=100)] = None,
              start_time: Annotated[datetime | float | None, TIME] = None,
              end_time: Annotated[datetime | float | None, TIME] = None) -> Response:
    """What `syncer watch` and `syncer serve` logged (secrets masked), filtered like the seed's
    GET /logs: level (and the more severe ones), component, start_time <= timestamp < end_time."""
    rows, total = logbook.read_logs(svc.ctx, level=level, component=component,
                                    since=_iso(start_time), until=_iso(end_time),
                                    limit=page.per_page, offset=page.offset)
    return svc.ok(rows, page=page, total=total)


def _iso(at: datetime | float | None) -> str | None:
    """ISO 8601 or unix seconds, clamped to the calendar (as the metrics route reads times)."""
    if at is None:
        return None
    return clock.stamp(bounded(at, datetime.now(UTC)))
