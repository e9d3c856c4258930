"""How `syncer watch` and `syncer serve` log: text or JSON lines on stderr."""

from __future__ import annotations

import json
import logging


class TextFormatter(logging.Formatter):
    """`TIME LEVEL message`, one line per event: a message of several lines (an error naming
    several secrets or files) keeps them on one, joined by " | "."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return " | ".join(line for line in super().format(record).splitlines() if line.strip())


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
        handler.setFormatter(TextFormatter())
    root = logging.getLogger("syncer")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
