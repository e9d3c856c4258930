"""Outgoing webhook deliveries, each with its attempts and the body as sent."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from syncer.api.routes.common import Paging, Svc

router = APIRouter()


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    """A delivery with its body parsed (under `payload`) and its attempts."""
    out = {k: v for k, v in row.items() if k != "body"}
    try:
        out["payload"] = json.loads(row.get("body") or "null")
    except ValueError:
        out["payload"] = None
    return out


DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]


@router.get("/webhooks/deliveries", tags=["webhooks"], summary="Outgoing webhook deliveries")
def list_deliveries(svc: Svc, page: Paging, status: Annotated[DeliveryStatus | None, Query()] = None) -> Response:
    """Newest first, each with its attempts (time, HTTP status or error, duration)."""
    rows, total = svc.state.deliveries(status=status, limit=page.per_page, offset=page.offset)
    return svc.ok([_delivery(r) for r in rows], page=page, total=total)


@router.get("/webhooks/deliveries/{delivery_id}", tags=["webhooks"], summary="One webhook delivery")
def get_delivery(svc: Svc, delivery_id: str) -> Response:
    """With its attempts and the body as sent."""
    return svc.ok(_delivery(svc.state.delivery(delivery_id)))
