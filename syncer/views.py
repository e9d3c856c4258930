"""Human text and JSON for every result. The plan's text form is pinned by golden files."""

from __future__ import annotations

import json
from typing import Any

from syncer.model import Plan
from syncer.plan import SENSITIVE

SYMBOLS = {"create": "+", "recreate": "~", "start": ">", "remove": "-", "conflict": "!", "noop": "="}


def plan_text(p: Plan, *, show_noop: bool = False) -> str:
    """The readable plan: actions grouped by server, then the closing line."""
    lines: list[str] = []
    head = f"Project {p.project}"
    if p.commit:
        head += f" at commit {p.commit[:12]}" + (" (with uncommitted changes)" if p.dirty else "")
    lines.append(head)
    shown = [a for a in p.actions if show_noop or a.action != "noop"]
    servers = sorted({a.server for a in shown})
    width = max((len(a.container) for a in shown), default=0)
    for server in servers:
        lines.append("")
        lines.append(f"Server {server}:")
        for a in (a for a in shown if a.server == server):
            rev = f"rev {a.revision}" if a.action != "remove" else ""
            lines.append(f"  {SYMBOLS[a.action]} {a.action:<8} {a.container:<{width}}  {rev:<7} {a.cause}".rstrip())
            for r in a.reasons:
                if r.sensitive:
                    lines.append(f"      {r.field}: {SENSITIVE}")
                else:
                    lines.append(f"      {r.field}: {_show(r.before)} -> {_show(r.after)}")
    lines.append("")
    lines.append(closing_line(p))
    return "\n".join(lines) + "\n"


def closing_line(p: Plan) -> str:
    """`Plan: 3 to create, ...` or `No changes.`; conflicts get their own sentence."""
    s = p.summary()
    if not p.has_changes:
        return f"No changes. {s['noop']} container(s) in sync."
    text = (f"Plan: {s['create']} to create, {s['recreate']} to recreate, {s['start']} to start,"
            f" {s['remove']} to remove.")
    if s["conflict"]:
        text += f" {s['conflict']} conflict(s): resolve them by hand; syncer will not touch those containers."
    return text


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def to_json(data: Any) -> str:
    """Stable, indented JSON for machines and files."""
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
