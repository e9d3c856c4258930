"""POST /hooks/git: a push to the tracked branch queues one fetch and sync."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from syncer.api.service import PushTarget, Service, service_from
from syncer.core.errors import Conflict
from syncer.engine import sources
from syncer.engine.requests import Kind

router = APIRouter()

_HEADERS = [
    ("X-GitHub-Event", "GitHub (and Gitea): the event, e.g. push, ping, create, delete"),
    ("X-Hub-Signature-256", "GitHub: sha256=<hex HMAC-SHA256(secret, body)>"),
    ("X-GitHub-Delivery", "GitHub: the delivery id (a redelivery repeats it)"),
    ("X-Gitlab-Event", "GitLab: Push Hook, Tag Push Hook, ..."),
    ("X-Gitlab-Token", "GitLab: the secret token itself"),
    ("X-Gitlab-Event-UUID", "GitLab: the delivery id"),
    ("X-Gitea-Event", "Gitea and Forgejo: push, create, delete, ..."),
    ("X-Gitea-Signature", "Gitea: <hex HMAC-SHA256(secret, body)>"),
    ("X-Gitea-Delivery", "Gitea: the delivery id"),
]
_ANSWER = {"content": {"application/json": {"schema": {"type": "object"}}}}
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
_OPENAPI: dict[str, Any] = {
    "parameters": [{"name": n, "in": "header", "required": False, "description": d, "schema": {"type": "string"}}
                   for n, d in _HEADERS],
    "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}},
                                                   "application/x-www-form-urlencoded": {"schema": {
                                                       "type": "object",
                                                       "properties": {"payload": {"type": "string"}}}}}},
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "a GitHub ping, verified", **_ANSWER},
    202: {"description": "accepted (a push to the tracked branch: a fetch and sync queued), ignored (with"
                         " the reason) or duplicate (a delivery id seen before: nothing done)", **_ANSWER},
    400: {"description": "invalid_request: a signed push whose body is not the provider's JSON", **_ERROR},
    401: {"description": "unauthorized: not signed by a provider (no provider header, a missing or wrong"
                         " signature or token, no secret configured)", **_ERROR},
    409: {"description": "conflict: a push to the tracked branch, but this server has no git remote to fetch"
                         " it from", **_ERROR},
    413: {"description": "invalid_request: a body over 1 MiB", **_ERROR},
}


@router.post("/hooks/git", status_code=202, tags=["system"], summary="Git push webhook (GitHub, GitLab, Gitea)",
             openapi_extra=_OPENAPI, responses=_RESPONSES)
async def git_hook(request: Request) -> Response:
    """Verified by the provider's signature or token (no API key). A push to the tracked
    branch queues one fetch and sync (202 `accepted`); tag pushes, other branches, branch or
    tag creation and deletion, and other events are acknowledged with the reason (202
    `ignored`); a delivery id seen before does nothing (202 `duplicate`); a GitHub ping gets
    200. When this server cannot fetch the pushed commit (its work tree is no git clone
    with a remote) a push to the tracked branch is refused (409), never reported done.
    Bodies over 1 MiB are refused (413) before they are read whole."""
    svc = service_from(request)
    body = await request.body()  # (the gate, api/auth.py, refuses one over the limit: 413)
    return await run_in_threadpool(_git_hook, svc, dict(request.headers), body)


def _git_hook(svc: Service, headers: dict[str, str], body: bytes) -> Response:
    project = svc.defined()
    branch = sources.tracked_branch(svc.ctx, project, svc.branch)
    hook = sources.verify_push(svc.ctx, project, headers, body, branch=branch)
    data: dict[str, Any] = {"event": hook.event, "provider": hook.provider, "delivery": hook.delivery,
                            "tracked_branch": branch, "accepted": False, "outcome": "ignored", "request_id": None}
    push = hook.push
    if push is not None:
        data.update(ref=push.ref, branch=push.branch, commit=push.commit, repository=push.repository)
    if hook.ignored is None and push is not None:
        problem = svc.sync.push_problem() if isinstance(svc.sync, PushTarget) else None
        if problem is not None:
            raise Conflict(f"this server cannot apply a push: {problem}. Serve a git clone of the repository"
                           " (`git clone URL DIR; syncer --repo DIR serve`), or follow the remote with"
                           " `syncer watch --repo URL --listen HOST:PORT`")
    if hook.ping:
        return svc.ok({**data, "ignored_because": hook.ignored}, status=200)
    if hook.delivery is not None and not svc.state.first_delivery(f"{hook.provider}:{hook.delivery}"):
        data.update(outcome="duplicate", ignored_because=f"delivery {hook.delivery} was seen before")
        return svc.ok(data, status=202)
    if hook.ignored is not None or push is None:
        data["ignored_because"] = hook.ignored
        return svc.ok(data, status=202)
    reason = f"git push {push.commit[:12]} to {push.branch} ({push.provider})"
    if isinstance(svc.sync, PushTarget):
        data["request_id"] = svc.sync.push(reason, branch=push.branch or branch, commit=push.commit)
    else:
        data["request_id"] = svc.sync.request(reason, kind=Kind.HOOK)
    data.update(accepted=True, outcome="accepted")
    return svc.ok(data, status=202)
