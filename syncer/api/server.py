"""uvicorn in a thread, for `syncer serve` and `syncer watch --listen`."""

from __future__ import annotations

import threading
import time
from typing import Any

from syncer.core.errors import SyncerError, UsageError

# seconds the requests in flight get to finish once the server is told to stop; then they are
# cut (their connections closed). A request may wait minutes for what it asked of Docker — a
# stop or restart with `?timeout=600` of a container that ignores TERM — and uvicorn's own
# graceful shutdown waits without bound. An apply in flight is not cut: the app's shutdown
# waits for it (BackgroundSync.stop, Service.applying).
REQUEST_GRACE = 10


class ServerHandle:
    """A running uvicorn server; `stop()` gives requests in flight REQUEST_GRACE seconds,
    runs the app's shutdown and returns."""

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
        """Graceful shutdown: stop accepting, let requests finish (REQUEST_GRACE seconds at
        most), run the app's shutdown (which finishes an apply in flight)."""
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_thread(app: Any, host: str, port: int, *, access_log: bool = False,
                    grace: int = REQUEST_GRACE) -> ServerHandle:
    """Run `app` on uvicorn in a daemon thread (signals stay with the caller's main thread);
    once stopped, requests in flight get `grace` seconds.

    Returns once it listens; raises SyncerError when it cannot (port taken, bad address).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, lifespan="on",
                            log_level="info" if access_log else "warning", server_header=False,
                            timeout_graceful_shutdown=grace)
    server = uvicorn.Server(config)
    _quiet_cancel()
    thread = threading.Thread(target=server.run, name="syncer-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise SyncerError(f"cannot serve the API on {host}:{port} (is the port taken, or the address wrong?)")
        time.sleep(0.02)
    return ServerHandle(server, thread)


def _uvicorns_cancel_line(record: Any) -> bool:
    """False for uvicorn's ERROR line when the grace ran out ("Cancel N running task(s), timeout
    graceful shutdown exceeded"): it reads as a failure, though a rollback in flight is finished
    and answered, and each request cut says so in a line of its own (api/auth.Gate)."""
    return not str(getattr(record, "msg", "")).startswith("Cancel %s running task(s), timeout graceful shutdown")


def _quiet_cancel() -> None:
    import logging

    errors = logging.getLogger("uvicorn.error")
    if _uvicorns_cancel_line not in errors.filters:
        errors.addFilter(_uvicorns_cancel_line)


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`, or `:PORT` for 127.0.0.1) → (host, port)."""
    host, sep, port = listen.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen wants HOST:PORT, not '{listen}'")
    return host.strip("[]") or "127.0.0.1", int(port)
