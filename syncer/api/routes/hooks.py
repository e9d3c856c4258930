"""POST /hooks/git: a push to the tracked branch queues one fetch and sync."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from syncer.api.service import Service, service_from
from syncer.engine import sources
from syncer.engine.requests import Kind

router = APIRouter()


@router.post("/hooks/git", status_code=202, tags=["system"], summary="Git push webhook (GitHub, GitLab, Gitea)")
async def git_hook(request: Request) -> Response:
    """Verified by the provider's signature or token (no API key). A push to the tracked
    branch queues one fetch and sync (202); other pushes are acknowledged and ignored (202);
    a GitHub ping gets 200. Bodies over 1 MiB are refused (413) before they are read whole."""
    svc = service_from(request)
    limit = sources.MAX_HOOK_BODY
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return svc.fail(413, "invalid_request", f"body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return svc.fail(413, "invalid_request", f"body over {limit} bytes")
    return await run_in_threadpool(_git_hook, svc, dict(request.headers), bytes(body))


def _git_hook(svc: Service, headers: dict[str, str], body: bytes) -> Response:
    project = svc.defined()
    branch = sources.tracked_branch(svc.ctx, project, svc.branch)
    event = sources.verify_push(svc.ctx, project, headers, body, branch=branch)
    if event is None:
        return svc.ok({"event": "ping", "accepted": False, "branch": branch}, status=200)
    data = {"event": "push", "provider": event.provider, "ref": event.ref, "branch": event.branch,
            "commit": event.commit, "repository": event.repository, "tracked_branch": branch,
            "accepted": event.tracked, "request_id": None}
    if event.tracked:
        reason = f"git push {event.commit[:12]} to {event.branch} ({event.provider})"
        data["request_id"] = svc.sync.request(reason, kind=Kind.HOOK)
    else:
        data["ignored_because"] = ("the branch was deleted" if event.deleted else
                                   f"{event.ref} is not the tracked branch {branch}")
    return svc.ok(data, status=202)
