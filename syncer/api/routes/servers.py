"""Servers (`srv_` + the name): reachability, engine version, the project's containers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from syncer.api.routes.common import Paging, Svc, listing, server_of
from syncer.engine import queries

router = APIRouter()


@router.get("/servers", tags=["servers"], summary="Docker servers")
def list_servers(svc: Svc, page: Paging) -> Response:
    """Reachability, engine version and the project's containers by state, per server."""
    return listing(svc, queries.servers_info(svc.defined(), engines=svc.engines), page)


@router.get("/servers/{server_id}", tags=["servers"], summary="One Docker server")
def get_server(svc: Svc, server_id: str) -> Response:
    """By `srv_` id or name."""
    project = svc.defined()
    server = project.config.servers[server_of(project, server_id)]
    return svc.ok(queries.server_info(project, server, engines=svc.engines))
