"""The state database, the one package that imports sqlite3: one module per table group.

`<state dir>/state.db` holds apply runs, definitions, revisions and pins (`runs`),
deployments and their logs (`deployments`), API keys (`keys`), outgoing webhook
deliveries (`deliveries`), metric samples (`samples`) and the git webhook
delivery ids seen (`hooks`); `db` owns the connection, the
migrations, the lock and transactions. Every write is one transaction, so a process killed
at any moment leaves the file consistent. `Store` is all of them over one connection.
"""

from __future__ import annotations

from syncer.adapters.store.db import DB_FILE, FINAL, MIGRATIONS, Db, StoreError, Transaction, new_id, now
from syncer.adapters.store.deliveries import Deliveries
from syncer.adapters.store.deployments import Deployments
from syncer.adapters.store.hooks import HookDeliveries
from syncer.adapters.store.keys import Keys
from syncer.adapters.store.logs import Logs
from syncer.adapters.store.runs import Revision, Runs
from syncer.adapters.store.samples import Samples

__all__ = ["DB_FILE", "FINAL", "MIGRATIONS", "Revision", "Store", "StoreError", "Transaction", "new_id", "now"]


class Store(Runs, Deployments, Keys, Deliveries, Samples, Logs, HookDeliveries, Db):
    """The state database: every table group over one connection. Thread-safe: one lock.

    `Store(state_dir)` creates the file (and the state dir) when missing and migrates it;
    `busy_timeout` is how long a write waits for another process's before a StoreError.
    """
