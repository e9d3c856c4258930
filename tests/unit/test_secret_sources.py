"""Issue 12, point 4: a secret resolves only from a source the operator allowed.

Whoever can push to the repository chooses `{secret: NAME}`; without an allow-list any
environment variable of syncer's process (its own SYNCER_* included) would reach a container.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.engine.secrets import env_allowed, read_secrets


def test_only_allowed_names_and_prefixes_resolve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "pw-1")
    monkeypatch.setenv("APP_TOKEN", "tok-2")
    monkeypatch.setenv("CLOUD_SECRET_ACCESS_KEY", "cloud-3")
    found = read_secrets(None, ("DB_PASSWORD", "APP_*"))
    assert found["DB_PASSWORD"] == "pw-1" and found["APP_TOKEN"] == "tok-2"
    assert "CLOUD_SECRET_ACCESS_KEY" not in found
    assert read_secrets(None, ()) == {}


def test_syncers_own_variables_never_resolve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYNCER_GIT_WEBHOOK_SECRET", "hook-4")
    secrets = tmp_path / "secrets.env"
    secrets.write_text("SYNCER_SECRET_KEY=k\nFROM_FILE=f-5\n")
    found = read_secrets(secrets, ("SYNCER_GIT_WEBHOOK_SECRET", "SYNCER_*"))
    assert found == {"FROM_FILE": "f-5"}
    assert not env_allowed("SYNCER_GIT_WEBHOOK_SECRET", ("SYNCER_GIT_WEBHOOK_SECRET",))
