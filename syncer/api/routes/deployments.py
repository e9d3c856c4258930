"""Deployments (`deploy_…`): the history, one with its log, deploying one definition now,
and undoing one."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from syncer.api.routes.common import Paging, Svc
from syncer.api.routes.definitions import resolve_definition
from syncer.api.service import Service
from syncer.core import clock
from syncer.core.errors import NotFound
from syncer.engine import operations
from syncer.engine.requests import Kind

log = logging.getLogger("syncer.api.app")

router = APIRouter()


def _deployment(d: dict[str, Any], ids: dict[str, str]) -> dict[str, Any]:
    return {**d, "definition_id": ids.get(d["definition"]), "server_id": f"srv_{d['server']}"}


Status = Literal["pending", "running", "success", "failed"]


@router.get("/deployments", tags=["deployments"], summary="Deployment history")
def list_deployments(svc: Svc, page: Paging, definition_id: str | None = None,
                     status: Annotated[Status | None, Query()] = None) -> Response:
    """Newest first."""
    name = resolve_definition(svc, definition_id)[0] if definition_id is not None else None
    rows, total = svc.state.deployments(definition=name, status=status, limit=page.per_page, offset=page.offset)
    ids = svc.state.definition_ids()
    return svc.ok([_deployment(r, ids) for r in rows], page=page, total=total)


@router.get("/deployments/{deployment_id}", tags=["deployments"], summary="One deployment with its log")
def get_deployment(svc: Svc, deployment_id: str) -> Response:
    """With its log lines (secret values never recorded)."""
    return svc.ok(_deployment(svc.state.deployment(deployment_id), svc.state.definition_ids()))


class DeploymentBody(BaseModel):
    """POST /deployments."""

    model_config = ConfigDict(extra="forbid")
    definition_id: str = Field(min_length=1, max_length=300, description="A `def_` id or a definition name")


@router.post("/deployments", status_code=202, tags=["deployments"], summary="Deploy one definition now")
def create_deployment(svc: Svc, body: DeploymentBody) -> Response:
    """Queues a sync of that definition alone (202 with the request id). The deployment
    record appears in GET /deployments when the apply starts, if anything needs changing."""
    name, d, row = resolve_definition(svc, body.definition_id)
    if d is None:
        raise NotFound(f"definition '{name}' is no longer in the repository: there is nothing to deploy")
    ident = svc.sync.request(f"api: POST /deployments {name}", definition=name, kind=Kind.API)
    return svc.ok({"request_id": ident, "definition_id": row["id"] if row else None, "definition": name,
                   "server_id": f"srv_{d.server}", "status": "queued", "requested_at": clock.iso()},
                  status=202)


@router.post("/deployments/{deployment_id}/rollback", tags=["deployments"], summary="Undo a deployment")
async def rollback_deployment(svc: Svc, deployment_id: str) -> Response:
    """Deploys again what this deployment replaced: the definition's earlier revision, or the
    digests its followed tags named before it rolled them (same revision, another image), as a
    new revision pinned until git changes the definition. Runs before answering (200 with the deployments
    it made; 409 when another apply holds the lock or there is nothing to roll back to). A
    server told to stop meanwhile finishes it and answers before it exits."""
    svc.applying.hold()  # now, on the loop: the server's stop waits for this answer (not merely the apply)
    job = asyncio.ensure_future(run_in_threadpool(_rollback, svc, deployment_id))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:  # (the server stops, its requests' grace over: an apply is not cut)
        return await job


def _rollback(svc: Service, deployment_id: str) -> Response:
    from syncer.cli.views import apply_dict
    from syncer.engine.options import ApplyOptions

    def progress(definition: str, line: str) -> None:  # the process's log, as a sync's lines are
        log.info("%s: %s (rollback of %s)", definition or "-", line, deployment_id, extra={"event": "action"})

    report = operations.rollback_deployment(svc.ctx, deployment_id, options=ApplyOptions(),
                                            engines=svc.engines, progress=progress)
    return svc.ok(apply_dict(report))
