"""How `syncer watch` and `syncer serve` log: text or JSON lines on stderr; SIGUSR1 writes
every thread's stack there (where a daemon that does not stop is waiting)."""

from __future__ import annotations

import faulthandler
import json
import logging
import signal
import sys


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                           "event": getattr(record, "event", "log"), "message": record.getMessage()})


def configure_logging(fmt: str) -> None:
    """Text or JSON lines on stderr."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("syncer")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    # file names, lines and function names only: no value (no secret) is ever in it
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True, chain=False)
