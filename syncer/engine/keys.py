"""API keys: generated once, kept hashed, checked on every request.

`KeyRing` is what a server checks presented keys with. It reads each key afresh (a key
revoked by another process fails at once) on a connection of its own, so that the server's
other store work never queues in front of a key check, and it records "last used" from a
thread of its own, at most once a second per key: a request never waits for a write (another
process may hold the database's write lock for seconds).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets as pysecrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncer.adapters.store import Store
from syncer.core.errors import SyncerError, UsageError

log = logging.getLogger("syncer.engine.keys")

API_KEY_PREFIX = "syncer_"
PERMISSIONS = ("read", "write")


@dataclass(frozen=True)
class NewApiKey:
    """A key just generated: the only moment its secret part exists outside the caller."""

    id: str
    name: str
    key: str
    permissions: list[str]
    rate_limit: int | None


def hash_api_key(key: str) -> str:
    """What the store keeps of a key. A key is 256 random bits, so a plain SHA-256 is enough
    (no salt or slow hash), and a presented key is found by its hash without a scan."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_permissions(permission: str) -> list[str]:
    """A key's permission as the API lists it: write implies read."""
    return ["read", "write"] if permission == "write" else ["read"]


def create_api_key(store: Store, *, name: str, permission: str, rate_limit: int | None = None) -> NewApiKey:
    """Generate a key with `read` or `write` permission; the store keeps only its hash."""
    if permission not in PERMISSIONS:
        raise UsageError(f"permission must be one of {', '.join(PERMISSIONS)}, not '{permission}'")
    if not name.strip():
        raise UsageError("a key needs a name")
    if rate_limit is not None and rate_limit < 1:
        raise UsageError("the rate limit must be at least 1 request a minute")
    key = API_KEY_PREFIX + pysecrets.token_urlsafe(32)
    row = store.add_api_key(name.strip(), hash_api_key(key), permission, rate_limit)
    return NewApiKey(str(row["id"]), str(row["name"]), key, key_permissions(permission), rate_limit)


def authenticate(store: Store, key: str) -> dict[str, Any] | None:
    """The key record for a presented key, read afresh; None when unknown or revoked."""
    row = store.api_key_by_hash(hash_api_key(key))
    return row if row is not None and row["revoked_at"] is None else None


class KeyRing:
    """Checks presented keys for a long-running server (see the module's docstring)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._reader = Store(state_dir)
        self._writer = Store(state_dir)  # opened now, not in the middle of serving
        self._cond = threading.Condition()
        self._due: set[str] = set()
        self._touched: dict[str, float] = {}
        self._closed = False
        self._thread = threading.Thread(target=self._record_uses, name="syncer-key-uses", daemon=True)
        self._thread.start()

    def check(self, key: str) -> dict[str, Any] | None:
        """The key's record (id, permission, rate_limit, ...) when it is known and not
        revoked, else None. Blocking: call it from a worker thread, never an event loop."""
        found = authenticate(self._reader, key)
        if found is not None:
            self._touch(str(found["id"]))
        return found

    def close(self) -> None:
        """Record the uses still due, then close."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(10)
        self._reader.close()

    def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        with self._cond:
            if now - self._touched.get(key_id, -math.inf) >= 1.0:
                self._touched[key_id] = now
                self._due.add(key_id)
                self._cond.notify_all()

    def _record_uses(self) -> None:
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._due or self._closed)
                    due, self._due = sorted(self._due), set()
                    closed = self._closed
                for key_id in due:
                    try:
                        self._writer.touch_api_key(key_id)
                    except SyncerError as exc:  # "last used" is a courtesy: never worth a failure
                        log.warning("last use of API key %s not recorded: %s", key_id, exc)
                if closed:
                    return
        finally:
            self._writer.close()
