"""Git webhook delivery ids seen (GitHub's, Gitea's, GitLab's): a bounded table, pruned on insert."""

from __future__ import annotations

from syncer.adapters.store.db import Db, now


class HookDeliveries(Db):
    """The `hook_deliveries` table."""

    def first_hook_delivery(self, key: str, *, keep: int, before: str) -> bool:
        """True the first time `key` is offered (and remembers it), False after; in the same
        transaction forgets ids seen before `before` and all but the newest `keep`."""
        with self.transaction():
            added = self._exec("INSERT OR IGNORE INTO hook_deliveries (key, seen_at) VALUES (?,?)", (key, now()))
            if added:
                self._exec("DELETE FROM hook_deliveries WHERE seen_at<?", (before,))
                # by position, not id arithmetic: an ignored insert may use up an id
                self._exec("DELETE FROM hook_deliveries WHERE id<(SELECT id FROM hook_deliveries"
                           " ORDER BY id DESC LIMIT 1 OFFSET ?)", (keep - 1,))
        return bool(added)

    def hook_deliveries_kept(self) -> int:
        """How many delivery ids are remembered."""
        return int(self._scalar("SELECT COUNT(*) FROM hook_deliveries"))
