"""Incoming git webhooks: verify the sender's signature, then read the push. Pure: no I/O.

The HTTP endpoint (`POST /api/v1/hooks/git`) hands the raw headers and body here; what
comes back says whether to fetch and sync, or why not. Each provider signs differently (as their
documentation describes):

- GitHub: `X-GitHub-Event: push|ping`, `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
- GitLab: `X-Gitlab-Event: Push Hook`, `X-Gitlab-Token: <the secret itself>`.
- Gitea (and Forgejo, which sends the Gitea headers too): `X-Gitea-Event: push`,
  `X-Gitea-Signature: <hex HMAC-SHA256(secret, body)>`, no prefix.

Gitea also sends GitHub's headers, so it is recognised first. Every comparison is
constant-time (`hmac.compare_digest`), and the signature is checked over the exact bytes
received before a byte of them is parsed. Without a configured secret nothing is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from syncer.core.errors import SyncerError

MAX_BODY = 1024 * 1024
"""Bodies larger than this are refused (413) before they are read whole."""

ZERO_SHA = "0" * 40


class HookRejected(SyncerError):
    """A webhook request refused: `status` is the HTTP status, `code` the API error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class PushEvent:
    """A verified push: which ref moved to which commit, and whether it is the tracked branch."""

    provider: str        # github | gitlab | gitea
    ref: str             # refs/heads/main, refs/tags/v1, ...
    branch: str | None   # main; None for a tag or another kind of ref
    commit: str          # the commit the ref points to after the push (zeros when deleted)
    repository: str      # owner/name, or the repository URL when no name is given
    tracked: bool        # a push to the tracked branch that leaves it at a commit
    deleted: bool = False


@dataclass(frozen=True)
class HookEvent:
    """A verified webhook delivery: what the provider said happened, and what to do about it."""

    provider: str                 # github | gitlab | gitea
    event: str                    # the provider's event name (push, Tag Push Hook, create, ...)
    delivery: str | None          # the provider's delivery id (the same on a redelivery)
    push: PushEvent | None = None  # the ref that moved, for push events
    ignored: str | None = None    # why nothing is synced; None for a push to the tracked branch
    ping: bool = False            # GitHub's ping when the webhook is created


def verify(headers: Mapping[str, str], body: bytes, secret: str | None, *, branch: str) -> HookEvent:
    """Verify a git webhook and say what it asks for.

    Every verified event is answered: a push to the tracked branch leaves `ignored` None;
    tag pushes, pushes to other branches, deletions, branch or tag creation and any other
    event carry the reason they are ignored. Raises HookRejected: 401 `unauthorized` for a
    request no provider signed (no provider header, a missing or wrong signature or token,
    no secret configured), 400 `invalid_request` for a signed push whose body is not the
    JSON the provider sends.
    """
    h = {str(k).lower(): str(v) for k, v in headers.items()}
    provider, event = _provider(h)
    if not secret:
        raise HookRejected(401, "unauthorized", "no git webhook secret is configured, so no webhook is accepted"
                           " (set api.git_webhook_secret in syncer.yaml or SYNCER_GIT_WEBHOOK_SECRET)")
    _VERIFY[provider](h, body, secret)
    delivery = next((h[k].strip() for k in _DELIVERY[provider] if h.get(k, "").strip()), None)
    if provider == "github" and event == "ping":
        return HookEvent(provider, event, delivery, ignored="a ping: the webhook works", ping=True)
    if event in _REF_EVENTS[provider]:
        return HookEvent(provider, event, delivery, ignored=_ref_event(event, _payload(h, body)))
    if event not in _PUSH[provider]:
        return HookEvent(provider, event, delivery, ignored=f"{_NAME[provider]} event '{event}' is not a push")
    push = _push(provider, _payload(h, body), branch)
    return HookEvent(provider, event, delivery, push, None if push.tracked else _why_not(push, branch))


def _why_not(push: PushEvent, tracked: str) -> str:
    """Why a verified push triggers no sync."""
    wanted = tracked.removeprefix("refs/heads/")
    if push.ref.startswith("refs/tags/"):
        tag = push.ref.removeprefix("refs/tags/")
        return f"the tag {tag} was deleted" if push.deleted else f"{push.ref} is a tag, not the tracked branch {wanted}"
    if push.deleted:
        return f"the branch {push.branch or push.ref} was deleted"
    return f"{push.ref} is not the tracked branch {wanted}"


def _ref_event(event: str, data: Mapping[str, Any]) -> str:
    """GitHub's and Gitea's `create` and `delete`: a branch or tag made or removed."""
    kind = _text(data.get("ref_type")) or "ref"
    ref = _text(data.get("ref")) or "?"
    done = "created (its pushes are what syncs)" if event == "create" else "deleted"
    return f"the {kind} {ref} was {done}"


def sign(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `body` under `secret` (what GitHub and Gitea send)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# --- providers -------------------------------------------------------------------------

_NAME = {"github": "GitHub", "gitlab": "GitLab", "gitea": "Gitea"}
_PUSH = {"github": {"push"}, "gitlab": {"Push Hook", "Tag Push Hook"}, "gitea": {"push"}}
_REF_EVENTS = {"github": {"create", "delete"}, "gitlab": set(), "gitea": {"create", "delete"}}
_DELIVERY = {"github": ("x-github-delivery",), "gitlab": ("x-gitlab-event-uuid", "x-gitlab-webhook-uuid"),
             "gitea": ("x-gitea-delivery", "x-github-delivery")}


def _provider(h: Mapping[str, str]) -> tuple[str, str]:
    # Gitea sends X-GitHub-Event and X-Hub-Signature-256 as well: recognise it first
    for provider, header in (("gitea", "x-gitea-event"), ("gitlab", "x-gitlab-event"),
                             ("github", "x-github-event")):
        if header in h:
            return provider, h[header].strip()
    raise HookRejected(401, "unauthorized", "not a GitHub, GitLab or Gitea webhook (no X-GitHub-Event,"
                       " X-Gitlab-Event or X-Gitea-Event header)")


def _same(given: str, expected: str) -> bool:
    # bytes, so that a non-ASCII header cannot raise; constant-time whatever the input
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def _verify_github(h: Mapping[str, str], body: bytes, secret: str) -> None:
    given = h.get("x-hub-signature-256")
    if given is None:
        raise HookRejected(401, "unauthorized", "missing X-Hub-Signature-256 header (set the webhook's secret)")
    if not _same(given.strip(), "sha256=" + sign(secret, body)):
        raise HookRejected(401, "unauthorized", "X-Hub-Signature-256 does not match the body and the secret")


def _verify_gitlab(h: Mapping[str, str], body: bytes, secret: str) -> None:
    given = h.get("x-gitlab-token")
    if given is None:
        raise HookRejected(401, "unauthorized", "missing X-Gitlab-Token header (set the webhook's secret token)")
    if not _same(given, secret):
        raise HookRejected(401, "unauthorized", "X-Gitlab-Token does not match the configured secret")


def _verify_gitea(h: Mapping[str, str], body: bytes, secret: str) -> None:
    given = h.get("x-gitea-signature")
    if given is None:
        raise HookRejected(401, "unauthorized", "missing X-Gitea-Signature header (set the webhook's secret)")
    if not _same(given.strip(), sign(secret, body)):
        raise HookRejected(401, "unauthorized", "X-Gitea-Signature does not match the body and the secret")


_VERIFY = {"github": _verify_github, "gitlab": _verify_gitlab, "gitea": _verify_gitea}


# --- the push ----------------------------------------------------------------------------

def _payload(h: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The JSON body, or the `payload` field of a form-encoded one (GitHub and Gitea offer both)."""
    try:
        text = body.decode("utf-8")
        if h.get("content-type", "").split(";")[0].strip() == "application/x-www-form-urlencoded":
            text = parse_qs(text, strict_parsing=True)["payload"][0]
        data = json.loads(text)
    except UnicodeDecodeError:
        raise HookRejected(400, "invalid_request", "the body is not a JSON push payload (not UTF-8 text)") from None
    except KeyError:
        raise HookRejected(400, "invalid_request", "the body is not a JSON push payload (a form without"
                           " its `payload` field)") from None
    except ValueError:
        raise HookRejected(400, "invalid_request", "the body is not a JSON push payload (not JSON)") from None
    if not isinstance(data, dict):
        raise HookRejected(400, "invalid_request", "the body is not a JSON object")
    return data


def _push(provider: str, data: Mapping[str, Any], tracked_branch: str) -> PushEvent:
    ref = data.get("ref")
    if not isinstance(ref, str) or not ref:
        raise HookRejected(400, "invalid_request", "the push payload has no 'ref'")
    commit = _text(data.get("checkout_sha")) if provider == "gitlab" else ""
    commit = commit or _text(data.get("after"))
    if not commit and data.get("deleted") is not True:  # (a deletion says so, or names the zero commit)
        raise HookRejected(400, "invalid_request", "the push payload has no 'after' (the commit pushed)")
    deleted = commit in ("", ZERO_SHA) or data.get("deleted") is True
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    wanted = tracked_branch.removeprefix("refs/heads/")
    return PushEvent(provider, ref, branch, commit or ZERO_SHA, _repository(provider, data),
                     tracked=branch == wanted and not deleted, deleted=deleted)


def _repository(provider: str, data: Mapping[str, Any]) -> str:
    repo: Any = data.get("project") if provider == "gitlab" else data.get("repository")
    if not isinstance(repo, Mapping):
        repo = data.get("repository")
    if not isinstance(repo, Mapping):
        return ""
    for key in ("full_name", "path_with_namespace", "clone_url", "git_http_url", "html_url", "web_url", "url"):
        value = _text(repo.get(key))
        if value:
            return value
    return ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
