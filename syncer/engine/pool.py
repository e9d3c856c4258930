"""Docker clients kept between calls by a long-running process (the API server).

Making a client costs a version call, so the server keeps them. `EnginePool` is an
EngineFactory: each client serves one caller at a time, from the factory call until the
caller's `close()`, which gives it back.
"""

from __future__ import annotations

import threading

from syncer.adapters.docker import Engine
from syncer.core.model import Server


class _PooledEngine(Engine):
    """An Engine that goes back to its pool when a caller closes it."""

    pool: EnginePool | None = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.give_back(self)
        else:
            super().close()

    def shutdown(self) -> None:
        """Really close it."""
        super().close()


class EnginePool:
    """Docker clients per server, reused; see the module's docstring."""

    def __init__(self) -> None:
        self._free: dict[Server, list[_PooledEngine]] = {}
        self._all: list[_PooledEngine] = []
        self._lock = threading.Lock()

    def __call__(self, server: Server) -> Engine:
        with self._lock:
            free = self._free.get(server)
            if free:
                return free.pop()
        eng = _PooledEngine(server)
        eng.pool = self
        with self._lock:
            self._all.append(eng)
        return eng

    def give_back(self, eng: _PooledEngine) -> None:
        """A caller is done with `eng`."""
        with self._lock:
            self._free.setdefault(eng.server, []).append(eng)

    def close(self) -> None:
        """Close every client made."""
        with self._lock:
            for eng in self._all:
                eng.pool = None
                eng.shutdown()
            self._all.clear()
            self._free.clear()
