"""Incoming git webhooks: each provider's documented headers and payloads, signed and tampered."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from syncer.stages import hooks
from syncer.stages.hooks import HookRejected, PushEvent, verify

CASES = Path(__file__).resolve().parents[1] / "cases" / "hooks"
SECRET = "It's a Secret to Everybody"


def body(name: str) -> bytes:
    return (CASES / f"{name}.json").read_bytes()


def hexmac(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def github(data: bytes, event: str = "push", secret: str = SECRET) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
            "X-Hub-Signature-256": "sha256=" + hexmac(secret, data), "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/044aadd"}


def gitlab(data: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret, "Content-Type": "application/json",
            "X-Gitlab-Instance": "https://gitlab.example.com"}


def gitea(data: bytes, secret: str = SECRET) -> dict[str, str]:
    # Gitea sends its own headers and GitHub's and Gogs' equivalents (services/webhook/deliver.go)
    sig = hexmac(secret, data)
    return {"X-Gitea-Delivery": "f6266f16-1bf3-46a5-9ea4-602e06ead473", "X-Gitea-Event": "push",
            "X-Gitea-Event-Type": "push", "X-Gitea-Signature": sig, "X-Gogs-Event": "push",
            "X-Gogs-Signature": sig, "X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig,
            "Content-Type": "application/json"}


def verify_and_parse(headers: dict[str, str], data: bytes, secret: str | None, *, branch: str) -> PushEvent | None:
    """The push a verified delivery carries (None for a ping)."""
    return verify(headers, data, secret, branch=branch).push


PROVIDERS: dict[str, tuple[str, Callable[..., dict[str, str]], str]] = {
    "github": ("github-push", github, "master"),
    "gitlab": ("gitlab-push", gitlab, "master"),
    "gitea": ("gitea-push", gitea, "develop"),
}


def test_githubs_documented_test_vector() -> None:
    # docs.github.com, "Validating webhook deliveries": secret, payload and expected signature
    assert hooks.sign(SECRET, b"Hello, World!") == \
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_valid_push_is_accepted(provider: str) -> None:
    name, headers, branch = PROVIDERS[provider]
    data = body(name)
    event = verify_and_parse(headers(data), data, SECRET, branch=branch)
    assert isinstance(event, PushEvent)
    assert event.provider == provider
    assert event.ref == f"refs/heads/{branch}" and event.branch == branch
    assert event.tracked is True and event.deleted is False
    expected = json.loads(data)
    assert event.commit == expected.get("checkout_sha", expected["after"])
    assert event.repository == {"github": "Codertocat/Hello-World", "gitlab": "mike/diaspora",
                                "gitea": "gitea/webhooks"}[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_push_to_another_branch_is_not_tracked(provider: str) -> None:
    name, headers, _ = PROVIDERS[provider]
    data = body(name)
    event = verify_and_parse(headers(data), data, SECRET, branch="production")
    assert event is not None and event.tracked is False


def test_the_tracked_branch_may_be_given_as_a_full_ref() -> None:
    data = body("github-push")
    event = verify_and_parse(github(data), data, SECRET, branch="refs/heads/master")
    assert event is not None and event.tracked


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_flipped_byte_in_the_body_is_rejected(provider: str) -> None:
    name, headers, branch = PROVIDERS[provider]
    data = body(name)
    signed = headers(data)
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0x01
    if provider == "gitlab":  # a token, not a signature: the body is not covered, the token is
        signed["X-Gitlab-Token"] = SECRET[:-1] + chr(ord(SECRET[-1]) ^ 1)
    with pytest.raises(HookRejected) as err:
        verify_and_parse(signed, bytes(tampered), SECRET, branch=branch)
    assert (err.value.status, err.value.code) == (401, "unauthorized")


@pytest.mark.parametrize("header", ["X-Hub-Signature-256", "X-Gitea-Signature"])
def test_a_flipped_character_in_the_signature_is_rejected(header: str) -> None:
    provider = "github" if header.startswith("X-Hub") else "gitea"
    name, headers, branch = PROVIDERS[provider]
    data = body(name)
    signed = headers(data)
    value = signed[header]
    signed[header] = value[:-1] + ("0" if value[-1] != "0" else "1")
    with pytest.raises(HookRejected) as err:
        verify_and_parse(signed, data, SECRET, branch=branch)
    assert err.value.status == 401


@pytest.mark.parametrize("provider,header", [("github", "X-Hub-Signature-256"), ("gitlab", "X-Gitlab-Token"),
                                             ("gitea", "X-Gitea-Signature")])
def test_a_missing_signature_header_is_rejected(provider: str, header: str) -> None:
    name, headers, branch = PROVIDERS[provider]
    data = body(name)
    signed = headers(data)
    del signed[header]
    with pytest.raises(HookRejected) as err:
        verify_and_parse(signed, data, SECRET, branch=branch)
    assert (err.value.status, err.value.code) == (401, "unauthorized")
    assert header in str(err.value)


def test_a_wrong_secret_is_rejected() -> None:
    data = body("github-push")
    with pytest.raises(HookRejected) as err:
        verify_and_parse(github(data, secret="another secret"), data, SECRET, branch="master")
    assert err.value.status == 401


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_configured_secret_nothing_is_accepted(secret: str | None) -> None:
    data = body("github-push")
    with pytest.raises(HookRejected) as err:
        verify_and_parse(github(data, secret=""), data, secret, branch="master")
    assert err.value.status == 401 and "secret" in str(err.value)


def test_headers_are_case_insensitive() -> None:
    data = body("github-push")
    lower = {k.lower(): v for k, v in github(data).items()}
    upper = {k.upper(): v for k, v in github(data).items()}
    assert verify_and_parse(lower, data, SECRET, branch="master") == \
        verify_and_parse(upper, data, SECRET, branch="master")


def test_a_verified_ping_returns_none_and_a_forged_one_is_rejected() -> None:
    data = body("github-ping")
    assert verify(github(data, "ping"), data, SECRET, branch="master").ping
    with pytest.raises(HookRejected):
        verify_and_parse(github(data, "ping", secret="forged"), data, SECRET, branch="master")


def test_a_tag_deletion_is_a_push_but_not_tracked() -> None:
    data = body("github-push-tag-deleted")
    event = verify_and_parse(github(data), data, SECRET, branch="master")
    assert event is not None
    assert (event.branch, event.deleted, event.tracked) == (None, True, False)


def test_a_deleted_tracked_branch_is_not_tracked() -> None:
    payload = json.loads(body("github-push"))
    payload.update(after="0" * 40, deleted=True)
    data = json.dumps(payload).encode()
    event = verify_and_parse(github(data), data, SECRET, branch="master")
    assert event is not None and event.branch == "master" and not event.tracked


def test_a_form_encoded_github_payload_is_read() -> None:
    data = urlencode({"payload": body("github-push").decode()}).encode()
    headers = github(data) | {"Content-Type": "application/x-www-form-urlencoded"}
    event = verify_and_parse(headers, data, SECRET, branch="master")
    assert event is not None and event.tracked


@pytest.mark.parametrize("headers", [{}, {"X-Bitbucket-Event": "repo:push"}])
def test_an_unknown_sender_is_unauthorized(headers: dict[str, str]) -> None:
    """Nobody signed it: 401, as for a wrong signature (400 read as a schema-valid request refused)."""
    with pytest.raises(HookRejected) as err:
        verify(headers, b"{}", SECRET, branch="master")
    assert (err.value.status, err.value.code) == (401, "unauthorized")


@pytest.mark.parametrize("make,event", [(github, "issues"), (gitlab, "Merge Request Hook")])
def test_an_event_other_than_push_is_ignored_once_verified(make: Callable[..., dict[str, str]], event: str) -> None:
    """Issue 11: providers record a 400 as a failed delivery; a verified event is acknowledged."""
    data = b'{"action": "opened"}'
    headers = make(data)
    headers["X-GitHub-Event" if make is github else "X-Gitlab-Event"] = event
    hook = verify(headers, data, SECRET, branch="master")
    assert hook.push is None and hook.ignored is not None and event in hook.ignored


# --- issue 11: every event a provider sends is answered, with the reason -------------------------

def _event(headers: dict[str, str], event: str) -> dict[str, str]:
    for key in ("X-GitHub-Event", "X-Gitlab-Event", "X-Gitea-Event", "X-Gitea-Event-Type", "X-Gogs-Event"):
        if key in headers:
            headers[key] = event
    return headers


@pytest.mark.parametrize("name,make,event,reason", [
    ("github-create-tag", github, "create", "the tag simple-tag was created"),
    ("github-delete-tag", github, "delete", "the tag simple-tag was deleted"),
    ("gitea-delete-branch", gitea, "delete", "the branch feature/old was deleted"),
    ("gitea-create-tag", gitea, "create", "the tag v1.0.0 was created"),
])
def test_branch_and_tag_creation_and_deletion_are_ignored_with_the_reason(
        name: str, make: Callable[..., dict[str, str]], event: str, reason: str) -> None:
    data = body(name)
    hook = verify(_event(make(data), event), data, SECRET, branch="master")
    assert hook.push is None and hook.ignored is not None and hook.ignored.startswith(reason), hook


def test_a_gitlab_tag_push_is_a_tag_not_the_tracked_branch() -> None:
    data = body("gitlab-tag-push")
    hook = verify(_event(gitlab(data), "Tag Push Hook"), data, SECRET, branch="master")
    assert hook.push is not None and hook.push.ref == "refs/tags/v1.0.0" and not hook.push.tracked
    assert hook.ignored == "refs/tags/v1.0.0 is a tag, not the tracked branch master"


def test_a_tag_deletion_is_reported_as_a_tag_deletion() -> None:
    """Regression: a deleted tag was reported as "the branch was deleted"."""
    data = body("github-push-tag-deleted")
    hook = verify(github(data), data, SECRET, branch="master")
    assert hook.ignored is not None and hook.ignored.startswith("the tag ") and "branch" not in hook.ignored


def test_the_delivery_id_of_each_provider_is_read() -> None:
    data = body("gitlab-push")
    lab = verify(gitlab(data) | {"X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"}, data, SECRET,
                 branch="master")
    assert lab.delivery == "13792a34-cac6-4fda-95a8-c58e00a3954e"
    data = body("github-push")
    assert verify(github(data), data, SECRET, branch="master").delivery == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    data = body("gitea-push")
    assert verify(gitea(data), data, SECRET, branch="develop").delivery == "f6266f16-1bf3-46a5-9ea4-602e06ead473"


def test_a_body_that_is_no_push_says_what_it_is_not_in_words_not_exception_names() -> None:
    for data, why in ((b"\xff\xfe", "not UTF-8 text"), (b"{not json", "not JSON")):
        with pytest.raises(hooks.HookRejected) as raised:
            verify_and_parse(github(data), data, SECRET, branch="master")
        assert str(raised.value) == f"the body is not a JSON push payload ({why})"
    payload = json.loads(body("github-push"))
    del payload["after"]  # (was read as a deleted branch)
    data = json.dumps(payload).encode()
    with pytest.raises(hooks.HookRejected) as raised:
        verify_and_parse(github(data), data, SECRET, branch="master")
    assert str(raised.value) == "the push payload has no 'after' (the commit pushed)"
