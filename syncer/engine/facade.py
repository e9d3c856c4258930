"""The facade every shell calls: find the project, load it, plan, apply, roll back, report.

The CLI, the watcher and the HTTP server all come through here, so that a plan is
computed one way whether it was asked for from a shell, a file change or an API call.
The work lives in the engine's modules; this one names what shells may use.
"""

from __future__ import annotations

from typing import Any

from syncer.core.model import Desired, Plan

from syncer.engine.deploy import ApplyReport, Progress, apply, check_fresh
from syncer.engine.events import EventSink, emit_event, flush_webhooks, no_events, start_notifier
from syncer.engine.project import (
    STATE_DIR,
    Context,
    Planned,
    Reuse,
    compute_plan,
    desired_state,
    fingerprint,
    load,
    now_iso,
    open_store,
    planned,
    read_secrets,
    redactor,
    secrets_for,
    validated,
)
from syncer.engine.rollback import rollback
from syncer.engine.scaffold import init_repository
from syncer.engine.secrets import KEY_FILE, parse_secrets_file, secret_key
from syncer.engine.status import DefinitionStatus, last_applied, status
from syncer.stages.backoff import Hold  # (an ApplyReport's holds, which watch reads)


def plan_document(result: Plan, desired: Desired | None = None) -> dict[str, Any]:
    """The plan as JSON data (`plan --json`, `--out`), with the hash of the desired state
    that a saved plan is checked against."""
    from syncer.stages.plan import desired_hash
    from syncer.stages.planfile import to_dict

    return to_dict(result, desired_hash=desired_hash(desired) if desired is not None else "")


def is_remote(source: str) -> bool:
    """True when `source` is a git URL to clone (not a local directory)."""
    from syncer.adapters.git import is_remote as remote

    return remote(source)

__all__ = [
    "KEY_FILE", "STATE_DIR", "ApplyReport", "Context", "DefinitionStatus", "EventSink", "Hold", "Planned", "Progress",
    "Reuse",
    "apply", "check_fresh", "is_remote", "plan_document", "compute_plan", "desired_state", "emit_event", "fingerprint", "flush_webhooks", "init_repository", "load",
    "no_events", "now_iso", "open_store", "parse_secrets_file", "planned", "read_secrets", "redactor",
    "rollback", "secret_key", "secrets_for", "start_notifier", "status", "validated", "last_applied",
]
