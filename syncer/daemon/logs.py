"""How `syncer watch` and `syncer serve` log: text or JSON lines on stderr."""

from __future__ import annotations

import json
import logging
from typing import Any

watch_log = logging.getLogger("syncer.daemon.watch")  # (log_report's lines are watch's)


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


def log_report(report: Any) -> None:
    """The plan line, each unreachable server and each deployment's end, for an apply of watch."""
    s = report.plan.summary()
    more = "".join(f", {s[k]} {k}" for k in ("update", "restart", "run", "network create", "network remove")
                   if s.get(k))  # (each only when the plan has one)
    kinds = {"held": sum(h.revision is not None for h in report.held.values())}
    kinds["deferred"] = len(report.held) - kinds["held"]
    more += f" ({', '.join(f'{n} {k}' for k, n in kinds.items() if n)})" if report.held else ""
    watch_log.info("plan: %d create, %d recreate, %d start, %d remove, %d conflict, %d in sync%s",
             s["create"], s["recreate"], s["start"], s["remove"], s["conflict"], s["noop"], more,
             extra={"event": "plan"})
    for server, why in sorted(report.plan.unreachable.items()):  # (its actions wait for it)
        watch_log.warning("server %s unreachable: %s", server, str(why).replace("\n", "; ")[:300],
                    extra={"event": "server.unreachable"})
    for r in report.results:
        level = logging.INFO if r.ok else logging.ERROR
        watch_log.log(level, "deployment %s %s: %s%s", r.deployment, r.definition, "success" if r.ok else "failed",
                "" if r.ok else f" ({r.error})", extra={"event": "deployment"})
