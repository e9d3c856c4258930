"""API keys: only the hash of a key is ever stored, and it is never read back out."""

from __future__ import annotations

from typing import Any

from syncer.adapters.store.db import Db, new_id, now
from syncer.core.errors import NotFound

_COLUMNS = "id, name, permission, rate_limit, created_at, last_used_at, revoked_at"


class Keys(Db):
    """The `api_keys` table."""

    def add_api_key(self, name: str, key_hash: str, permission: str, rate_limit: int | None) -> dict[str, Any]:
        """A new API key; only its hash is kept. Returns its record (never the hash)."""
        ident = new_id("key")
        self._exec("INSERT INTO api_keys (id, name, key_hash, permission, rate_limit, created_at)"
                   " VALUES (?,?,?,?,?,?)", (ident, name, key_hash, permission, rate_limit, now()))
        return self.api_key(ident)

    def api_keys(self) -> list[dict[str, Any]]:
        """Every key, revoked ones included, oldest first."""
        return self._rows(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")

    def api_key(self, ident: str) -> dict[str, Any]:
        """One key by id, or NotFound."""
        row = self._one(f"SELECT {_COLUMNS} FROM api_keys WHERE id=?", (ident,))
        if row is None:
            raise NotFound(f"no API key '{ident}'")
        return row

    def api_key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        """The key with this hash (revoked or not), read afresh on every call."""
        return self._one(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash=?", (key_hash,))

    def touch_api_key(self, ident: str) -> None:
        """Record that the key was just used."""
        self._exec("UPDATE api_keys SET last_used_at=? WHERE id=?", (now(), ident))

    def revoke_api_key(self, ident: str) -> dict[str, Any]:
        """Revoke a key (at once; revoking twice keeps the first time)."""
        self._exec("UPDATE api_keys SET revoked_at=COALESCE(revoked_at, ?) WHERE id=?", (now(), ident))
        return self.api_key(ident)
