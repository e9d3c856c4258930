"""The pure parts of outgoing webhooks: retry schedule, signature, matching, secrets, redaction.
Sending, queueing and retrying against a real HTTP server: tests/integration/test_webhooks.py."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from syncer.adapters import webhooks as notify
from syncer.core.redact import Redactor
from syncer.core.model import WebhookTarget


def test_backoff_doubles_from_five_seconds_up_to_an_hour() -> None:
    p = notify.Policy()
    assert [p.delay(n) for n in range(1, 12)] == [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]
    assert p.delay(30) == 3600


def test_a_delivery_is_given_up_after_ten_tries_or_a_day() -> None:
    p = notify.Policy()
    assert not p.gives_up(9, 3600)
    assert p.gives_up(10, 60)
    assert p.gives_up(1, 86400)


def test_the_policy_comes_from_the_environment_and_ignores_nonsense() -> None:
    p = notify.Policy.from_env({"SYNCER_WEBHOOK_BACKOFF": "0.5", "SYNCER_WEBHOOK_MAX_ATTEMPTS": "3",
                                "SYNCER_WEBHOOK_MAX_AGE": "soon", "SYNCER_WEBHOOK_TIMEOUT": "-1"})
    assert (p.backoff, p.max_attempts, p.max_age, p.timeout) == (0.5, 3, 86400.0, 10.0)


def test_the_signature_covers_the_timestamp_and_the_body() -> None:
    body = b'{"event":"ping"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert notify.signature("s3cret", 1700000000, body) == "sha256=" + expected
    headers = notify.headers("whd_1", "ping", body, "s3cret", 1700000000)
    assert headers["X-Syncer-Signature"] == "sha256=" + expected
    assert headers["X-Syncer-Timestamp"] == "1700000000" and headers["X-Syncer-Delivery"] == "whd_1"
    assert "X-Syncer-Signature" not in notify.headers("whd_1", "ping", body, None, 1700000000)


@pytest.mark.parametrize("events,event,wanted", [((), "deployment.started", True),
                                                  (("*",), "drift.detected", True),
                                                  (("deployment.success",), "deployment.success", True),
                                                  (("deployment.success",), "deployment.failed", False)])
def test_a_target_without_events_gets_every_event(events: tuple[str, ...], event: str, wanted: bool) -> None:
    assert notify.matches(WebhookTarget("http://x", events), event) is wanted


def test_secrets_resolve_from_the_environment_or_the_projects_secrets() -> None:
    resolve = notify.resolver({"FROM_FILE": "file-value"}, {"FROM_ENV": "env-value"})
    assert resolve(WebhookTarget("http://x", (), {"env": "FROM_ENV"})) == "env-value"
    assert resolve(WebhookTarget("http://x", (), {"secret": "FROM_FILE"})) == "file-value"
    assert resolve(WebhookTarget("http://x", ())) is None
    with pytest.raises(notify.MissingSecret, match="environment variable FROM_FILE is not set"):
        resolve(WebhookTarget("http://x", (), {"env": "FROM_FILE"}))


def test_redaction_reaches_nested_values_and_keys() -> None:
    data = {"error": "token=hunter22 refused", "hunter22": ["a", {"b": "xhunter22x"}], "n": 3}
    assert Redactor.of(["hunter22"]).data(data) == {"error": "token=*** refused", "***": ["a", {"b": "x***x"}],
                                                 "n": 3}


def test_every_designed_event_is_known() -> None:
    assert set(notify.EVENTS) == {
        "deployment.started", "deployment.success", "deployment.failed", "deployment.rolled_back",
        "instance.started", "instance.stopped", "instance.unhealthy",
        "definition.created", "definition.updated", "definition.deleted", "drift.detected"}
