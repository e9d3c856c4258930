"""What a webhook delivery is, decided without I/O: the events, the retry policy, which
target wants which event, the body and the signed headers."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from syncer import __version__
from syncer.core import clock
from syncer.core.model import WebhookTarget

log = logging.getLogger("syncer.webhooks")

EVENTS = (
    "deployment.started", "deployment.success", "deployment.failed", "deployment.rolled_back",
    "instance.started", "instance.stopped", "instance.unhealthy",
    "definition.created", "definition.updated", "definition.deleted",
    "drift.detected",
)
PING = "ping"  # sent by `syncer webhooks test` to every target, whatever its `events`

POLICY_ENV = {"backoff": "SYNCER_WEBHOOK_BACKOFF", "backoff_max": "SYNCER_WEBHOOK_BACKOFF_MAX",
              "max_attempts": "SYNCER_WEBHOOK_MAX_ATTEMPTS", "max_age": "SYNCER_WEBHOOK_MAX_AGE",
              "timeout": "SYNCER_WEBHOOK_TIMEOUT"}


@dataclass(frozen=True)
class Policy:
    """Retry schedule: the n-th failure waits backoff·2^(n-1) seconds, at most backoff_max;
    a delivery is given up after max_attempts tries, or when a try fails max_age seconds
    after it was queued."""

    backoff: float = 5.0
    backoff_max: float = 3600.0
    max_attempts: int = 10
    max_age: float = 86400.0
    timeout: float = 10.0  # seconds per request

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Policy:
        """The defaults, overridden by SYNCER_WEBHOOK_BACKOFF, _BACKOFF_MAX, _MAX_ATTEMPTS,
        _MAX_AGE and _TIMEOUT (seconds; unusable values are ignored)."""
        env = os.environ if env is None else env
        changes: dict[str, Any] = {}
        for field, name in POLICY_ENV.items():
            raw = env.get(name)
            if raw is None:
                continue
            try:
                value = int(raw) if field == "max_attempts" else float(raw)
            except ValueError:
                log.warning("ignoring %s=%r: not a number", name, raw)
                continue
            if value > 0:
                changes[field] = value
        return replace(cls(), **changes)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed try."""
        return float(min(self.backoff * 2 ** max(attempts - 1, 0), self.backoff_max))

    def gives_up(self, attempts: int, age: float) -> bool:
        """True when a delivery tried `attempts` times, queued `age` seconds ago, is failed for good."""
        return attempts >= self.max_attempts or age >= self.max_age



def matches(target: WebhookTarget, event: str) -> bool:
    """A target with no `events` (or with "*") gets every event."""
    return not target.events or "*" in target.events or event in target.events


def body_of(event_id: str, event: str, project: str, data: Mapping[str, Any], created_at: float) -> str:
    """The JSON body as it is stored and sent."""
    return json.dumps({"id": event_id, "event": event, "created_at": clock.stamp(created_at), "project": project,
                       "data": data}, separators=(",", ":"), default=str)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256(secret, "<timestamp>." + body), as receivers recompute it."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(delivery: str, event: str, body: bytes, secret: str | None, timestamp: int) -> dict[str, str]:
    """The request headers of one attempt (unsigned when the target has no secret)."""
    out = {"Content-Type": "application/json", "User-Agent": f"syncer/{__version__}", "X-Syncer-Event": event,
           "X-Syncer-Delivery": delivery, "X-Syncer-Timestamp": str(timestamp)}
    if secret is not None:
        out["X-Syncer-Signature"] = signature(secret, timestamp, body)
    return out


# --- chat formats ------------------------------------------------------------------------

FORMATS = ("generic", "slack", "discord", "ntfy")
_ICON = {True: "✅", False: "❌", None: "ℹ️"}
_DISCORD_COLOUR = {True: 0x2EB67D, False: 0xE01E5A, None: 0x5865F2}


def summary(event: str, project: str, data: Mapping[str, Any]) -> tuple[str, str, bool | None]:
    """A person's reading of an event: (title, text, ok) — ok None when it is neither a
    success nor a failure. The first line of an error only; values arrive masked."""
    what = data.get("definition") or data.get("container") or data.get("url") or ""
    where = f" on {data['server']}" if data.get("server") else ""
    rev = f" (revision {data['revision']})" if data.get("revision") else ""
    ok = {"deployment.success": True, "deployment.failed": False, "instance.unhealthy": False,
          "drift.detected": None}.get(event)
    title = f"[{project}] {event} {what}".strip()
    lines = [f"{_ICON[ok]} {event.replace('.', ' ')}: {what}{rev}{where}".rstrip(": ")]
    if data.get("actions"):
        lines.append("changes: " + ", ".join(str(a) for a in data["actions"]))
    if data.get("error"):
        lines.append("error: " + str(data["error"]).strip().splitlines()[0][:300])
    if data.get("rolled_back"):
        lines.append("the previous container was restored (rolled back)")
    if data.get("commit"):
        lines.append(f"commit {str(data['commit'])[:12]}")
    return title, "\n".join(lines), ok


def chat_payload(fmt: str, url: str, event: str, project: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The documented incoming-webhook shape of each chat service."""
    title, text, ok = summary(event, project, data)
    if fmt == "slack":  # Slack incoming webhooks: `text` (also the notification fallback) + blocks
        return {"text": f"{title}\n{text}",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{text}"}}]}
    if fmt == "discord":  # Discord webhooks: content (≤ 2000 chars) and embeds
        return {"username": "syncer", "content": title[:2000],
                "embeds": [{"title": title[:256], "description": text[:4096], "color": _DISCORD_COLOUR[ok]}]}
    # ntfy: JSON published to the server's root URL names the topic
    return {"topic": url.rstrip("/").rsplit("/", 1)[-1], "title": title, "message": text,
            "tags": ["white_check_mark" if ok else "x" if ok is False else "information_source", project],
            "priority": 4 if ok is False else 3}


def post_url(fmt: str, url: str) -> str:
    """Where a delivery is POSTed: ntfy's JSON publishing goes to the server root."""
    if fmt == "ntfy":
        return url.rstrip("/").rsplit("/", 1)[0] + "/"
    return url


def body_for(target: WebhookTarget, event_id: str, event: str, project: str, data: Mapping[str, Any],
             created_at: float) -> str:
    """The body stored and sent to one target: the signed generic JSON, or a chat message."""
    if target.format == "generic":
        return body_of(event_id, event, project, data, created_at)
    return json.dumps(chat_payload(target.format, target.url, event, project, data), ensure_ascii=False,
                      separators=(",", ":"))
