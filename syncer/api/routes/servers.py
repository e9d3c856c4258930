"""Servers (`srv_` + the name): reachability, engine version, the project's containers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from syncer.api.routes.common import Paging, Svc, listing
from syncer.core.errors import NotFound
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
    server = project.config.servers.get(server_id.removeprefix("srv_")) or project.config.servers.get(server_id)
    if server is None:
        raise NotFound(f"no server '{server_id}'")
    return svc.ok(queries.server_info(project, server, engines=svc.engines))
