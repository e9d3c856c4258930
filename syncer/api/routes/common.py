"""What every route module uses: the Service dependency, the bearer scheme (for OpenAPI),
paging, the list envelope, and a server named by a request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Security
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from syncer.api.service import Page, Service, service_of
from syncer.core.errors import NotFound
from syncer.core.model import Project

Svc = Annotated[Service, Depends(service_of)]
bearer = HTTPBearer(auto_error=False, description="An API key from `syncer keys generate`")
KEYED = [Security(bearer)]  # the gate checks the key; this puts the scheme in the OpenAPI document


async def paging(page: Annotated[int, Query(ge=1, le=1_000_000, description="Page, from 1")] = 1,
                 per_page: Annotated[int, Query(ge=1, le=100, description="Items per page (at most 100)")] = 20
                 ) -> Page:
    """The `page` and `per_page` query parameters."""
    return Page(page, per_page)


Paging = Annotated[Page, Depends(paging)]


def listing(svc: Service, items: list[Any], page: Page) -> Response:
    """One page of `items` in the envelope, with `pagination`."""
    return svc.ok(page.cut(items), page=page, total=len(items))


def server_of(project: Project, server_id: str) -> str:
    """The name of a server of the project by `srv_` id or name; NotFound for another."""
    for name in (server_id.removeprefix("srv_"), server_id):
        if name in project.config.servers:
            return name
    raise NotFound(f"no server '{server_id}'")
