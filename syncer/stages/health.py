"""Health is Docker's verdict, read from an inspected container: whether Docker runs a
healthcheck for it (the spec's or the image's), and what the last probe said."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syncer.core.redact import Redactor


def probes(test: Any) -> bool:
    """Whether a healthcheck's `Test` is one Docker runs: given, and not NONE."""
    return bool(test) and test[0] != "NONE"


def has_healthcheck(info: Mapping[str, Any]) -> bool:
    """Docker runs a healthcheck: the merged config (spec over image) has a test not NONE."""
    if (info.get("State") or {}).get("Health"):
        return True
    return probes(((info.get("Config") or {}).get("Healthcheck") or {}).get("Test"))


def probe_output(state: Mapping[str, Any], redact: Redactor) -> str:
    """The last probe's exit code and output, masked, then cut short (for a failed
    deployment's error)."""
    log = (state.get("Health") or {}).get("Log") or []
    if not log:
        return "no probe output"
    last = log[-1]
    output = redact.text(str(last.get("Output", "")).strip())[:200]
    return f"probe exited {last.get('ExitCode')}" + (f": {output}" if output else " (no output)")
