"""uvicorn in a thread, for `syncer serve` and `syncer watch --listen`."""

from __future__ import annotations

import threading
import time
from typing import Any

from syncer.core.errors import SyncerError, UsageError


class ServerHandle:
    """A running uvicorn server; `stop()` finishes requests in flight and returns."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def alive(self) -> bool:
        """True while the server thread runs."""
        return self.thread.is_alive()

    def stop(self, timeout: float = 150.0) -> None:
        """Graceful shutdown: stop accepting, finish requests, run the app's shutdown."""
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(app: Any, host: str, port: int, *, access_log: bool = False) -> ServerHandle:
    """Run `app` on uvicorn in a daemon thread (signals stay with the caller's main thread).

    Returns once it listens; raises SyncerError when it cannot (port taken, bad address).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, lifespan="on",
                            log_level="info" if access_log else "warning", server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="syncer-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise SyncerError(f"cannot serve the API on {host}:{port} (is the port taken, or the address wrong?)")
        time.sleep(0.02)
    return ServerHandle(server, thread)


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`, or `:PORT` for 127.0.0.1) → (host, port)."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen wants HOST:PORT, not '{listen}'")
    return host.strip("[]") or "127.0.0.1", int(port)
