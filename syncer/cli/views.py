"""Human text and JSON for every result. The plan's text form is pinned by golden files."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from syncer.core.model import SERVICE_SHORT, Action, Plan
from syncer.core.labels import SENSITIVE

SYMBOLS = {"create": "+", "recreate": "~", "start": ">", "remove": "-", "conflict": "!", "unreachable": "?",
           "noop": "=", "run": "*", "network create": "+", "network remove": "-", "update": "^", "restart": "@"}


def plan_text(p: Plan, *, show_noop: bool = False) -> str:
    """The readable plan: actions grouped by server, then the closing line."""
    lines: list[str] = []
    head = f"Project {p.project}"
    if p.commit:
        head += f" at commit {p.commit[:12]}" + (" (with uncommitted changes)" if p.dirty else "")
    lines.append(head)
    # a noop that needs attention (a Swarm service short of tasks) is shown: "in sync" alone would hide it
    shown = [a for a in p.actions if show_noop or a.action != "noop" or a.attention]
    servers = sorted({a.server for a in shown} | set(p.unreachable))
    width = max((len(a.container) for a in shown if not _of_network(a)), default=0)
    for server in servers:
        lines.append("")
        lines.append(f"Server {server}:" + (f" UNREACHABLE: {p.unreachable[server]}" if server in p.unreachable else ""))
        for a in (a for a in shown if a.server == server):
            if _of_network(a):
                kind = a.action if a.action.startswith("network ") else f"network {a.action}"
                lines.append(f"  {SYMBOLS[a.action]} {kind} {a.container}  {a.cause}")
                continue
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
    """`Plan: 3 to create, ...` or `No changes.`; conflicts and unreachable servers get their
    own sentence; over more than one server, a line of counts per server follows."""
    s = p.summary()
    if not p.has_changes:
        text = f"No changes. {_things(p, 'noop')} in sync."
    else:
        text = (f"Plan: {s['create']} to create, {s['recreate']} to recreate, {s['start']} to start,"
                f" {s['remove']} to remove.")
        extra = [f"{s['update']} to update (Swarm)"] if s.get("update") else []  # services rolled in place
        extra += [f"{s['run']} job(s) to run"] if s["run"] else []
        extra += [f"{s['restart']} to restart after a dependency"] if s.get("restart") else []
        extra += [f"{s[k]} network(s) to {k[8:]}" for k in ("network create", "network remove") if s[k]]
        if extra:
            text = text[:-1] + ", " + ", ".join(extra) + "."
    if s["conflict"]:
        nets = [_of_network(a) for a in p.actions if a.action == "conflict"]
        what = "networks" if all(nets) else "containers and networks" if any(nets) else "containers"
        text += f" {s['conflict']} conflict(s): resolve them by hand; syncer will not touch those {what}."
    short = [a.definition for a in p.actions if a.attention]
    if short:
        text += f" Not all tasks running: {', '.join(short)} (see above)."
    if p.unreachable:
        names = ", ".join(f"'{n}'" for n in p.unreachable)
        text += f" {len(p.unreachable)} server(s) unreachable ({names}): {_things(p, 'unreachable')} not planned."
    per = p.by_server()
    if len(per) > 1:
        text += "\nBy server: " + "; ".join(f"{name}: {_server_counts(counts, name in p.unreachable)}"
                                 for name, counts in per.items()) + "."
    return text


def _things(p: Plan, action: str) -> str:
    """How many actions of a kind, in words: `3 container(s)`, `20 service(s)` (on Swarm
    servers), or both."""
    services = sum(1 for a in p.actions if a.action == action and a.server in p.swarm)
    containers = sum(1 for a in p.actions if a.action == action) - services
    parts = [f"{containers} container(s)"] if containers or not services else []
    parts += [f"{services} service(s)"] if services else []
    return " and ".join(parts)


def _of_network(a: Action) -> bool:
    """A network's action (`network create` / `network remove`, or a conflict about a
    network: one of no definition), shown on a line of its own without a revision."""
    return a.action.startswith("network ") or (a.action == "conflict" and not a.definition)


def _server_counts(c: dict[str, int], down: bool) -> str:
    if down:
        return f"unreachable, {c['unreachable']} not planned"
    parts = [f"{c[k]} to {k}" for k in ("create", "recreate", "start", "remove", "update", "restart") if c.get(k)]
    parts += [f"{c['run']} job(s) to run"] if c.get("run") else []
    parts += [f"{c[k]} network(s) to {k[8:]}" for k in ("network create", "network remove") if c.get(k)]
    parts += [f"{c['conflict']} conflict(s)"] if c["conflict"] else []
    if c["noop"] or not parts:
        parts.append(f"{c['noop']} in sync")
    return ", ".join(parts)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."


def to_json(data: Any) -> str:
    """Stable, indented JSON for machines and files."""
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain, aligned text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells) + "\n"


def apply_text(report: Any) -> str:
    """The closing summary of an apply."""
    if not report.applied:
        return ""
    lines = []
    servers = report.project.config.servers if report.project is not None else {}
    for r in report.results:
        back = "Swarm rolled it back" if getattr(servers.get(r.server), "kind", "") == "swarm" \
            else "old container restored"
        mark = "ok" if r.ok else (f"FAILED, {back}" if r.rolled_back else "FAILED")
        lines.append(f"  {r.definition}: {mark} ({r.deployment})" + ("" if r.ok else f": {r.error}"))
    good = sum(1 for r in report.results if r.ok)
    bad = len(report.results) - good
    s = report.plan.summary()
    # what the plan blocked did not run either: the exit code is 1, and the line says why
    left = [f"{s['unreachable']} not applied ({len(report.plan.unreachable)} server(s) unreachable)"] \
        if s["unreachable"] else []
    left += [f"{s['conflict']} conflict(s) left to resolve by hand"] if s["conflict"] else []
    head = "Apply complete" if bad == 0 and not left else "Apply finished with failures"
    tail = "".join(f"; {x}" for x in left)
    return "\n".join([*lines, f"{head}: {good} deployment(s) succeeded, {bad} failed{tail}."]) + "\n"


def apply_dict(report: Any) -> dict[str, Any]:
    """The JSON result of an apply."""
    from syncer.engine.facade import plan_document

    return {"applied": report.applied, "ok": report.ok, "run_id": report.run_id, "plan": plan_document(report.plan, report.desired),
            "deployments": [{"id": r.deployment, "definition": r.definition, "server": r.server,
                             "status": "success" if r.ok else "failed", "rolled_back": r.rolled_back,
                             "error": r.error or None, "actions": r.actions} for r in report.results]}


def status_text(rows: list[Any]) -> str:
    """`syncer status` as a table."""
    out = []
    for s in rows:
        # with Docker's words where the state alone hides why: an exited container's exit, a
        # service short of tasks (`degraded (1/3 task(s) running: ...)`)
        states = ", ".join(f"{c['name']}={c['state']}" + (f"/{c['health']}" if c["health"] else "")
                           + (f" ({c['status']})" if c.get("exit_code") is not None or c["state"] in SERVICE_SHORT
                              else "")
                           for c in s.containers) or "(none)"
        sync = "in sync" if s.in_sync else "drifted: " + "; ".join(s.actions)
        out.append([s.definition, s.server, s.revision or "-", s.status + (" (pinned)" if s.pinned else "")
                    + (f" (held until {s.held_until})" if s.held_until else ""),
                    states, sync])
    return table(["DEFINITION", "SERVER", "REV", "STATUS", "CONTAINERS", "SYNC"], out)


def status_dict(rows: list[Any], servers: list[dict[str, Any]]) -> dict[str, Any]:
    """`syncer status --json`: definitions and servers."""
    return {"definitions": [{"definition": s.definition, "server": s.server, "revision": s.revision,
                             "status": s.status, "pinned": s.pinned, "held_until": s.held_until,
                             "in_sync": s.in_sync, "drift": s.actions,
                             "containers": s.containers} for s in rows],
            "servers": servers}


def servers_text(servers: list[dict[str, Any]]) -> str:
    """The servers part of `syncer status`."""
    rows = [[s["name"], "yes" if s["reachable"] else "NO", s["engine_version"] or "-", s["error"] or ""]
            for s in servers]
    return table(["SERVER", "REACHABLE", "ENGINE", "ERROR"], rows)


def revision_dict(r: Any) -> dict[str, Any]:
    """A revision for JSON output (specs carry secret references only)."""
    return {"definition": r.definition, "revision": r.number, "created_at": r.created_at, "commit": r.commit,
            "rollback_of": r.rollback_of, "def_hash": r.def_hash, "specs": r.specs}


def history_text(revisions: list[Any]) -> str:
    """`syncer history` as a table."""
    rows = [[r.definition, r.number, r.created_at, (r.commit or "-")[:12],
             f"rollback of {r.rollback_of}" if r.rollback_of else "", r.def_hash[7:19]] for r in revisions]
    return table(["DEFINITION", "REV", "CREATED", "COMMIT", "NOTE", "HASH"], rows)


def deployments_text(deps: list[dict[str, Any]]) -> str:
    """`syncer deployments list` as a table."""
    rows = [[d["id"], d["definition"], d["revision"], d["status"] + (" (rolled back)" if d["rolled_back"] else ""),
             d["trigger"], d["created_at"], "; ".join(d["actions"])] for d in deps]
    return table(["ID", "DEFINITION", "REV", "STATUS", "TRIGGER", "CREATED", "ACTIONS"], rows)


def deployment_text(d: dict[str, Any]) -> str:
    """`syncer deployments show ID`."""
    lines = [f"Deployment {d['id']}", f"  definition: {d['definition']} (revision {d['revision']}) on {d['server']}",
             f"  status:     {d['status']}" + (" (rolled back)" if d["rolled_back"] else ""),
             f"  trigger:    {d['trigger']}", f"  commit:     {d['commit'] or '-'}",
             f"  created:    {d['created_at']}  started: {d['started_at'] or '-'}  finished: {d['finished_at'] or '-'}"]
    if d.get("error"):
        lines.append(f"  error:      {d['error']}")
    lines.extend(f"  image:      {ref} = {digest}" for ref, digest in (d.get("images") or {}).items())
    lines.append("  log:")
    lines.extend(f"    {row['at']}  {row['line']}" for row in d.get("logs", []))
    return "\n".join(lines) + "\n"


class PlainProgress:
    """Progress as plain lines (no terminal, or a log). The deployments of a wave report from
    threads of their own: each line is one write under a lock (print writes the text and the
    newline apart, so two threads' lines could share one line of the output)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, definition: str, line: str) -> None:
        text = f"  {definition}: {line}\n" if definition else f"  {line}\n"
        with self._lock:
            sys.stdout.write(text)
            sys.stdout.flush()

    def close(self) -> None:
        """Nothing to tear down."""


class LiveProgress:
    """Progress on a terminal: one live row per definition (rich)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self.rows: dict[str, tuple[str, str]] = {}
        self.console = Console()
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False)
        self.live.start()

    def _render(self) -> Any:
        from rich.table import Table

        t = Table(show_header=True, header_style="bold", box=None)
        t.add_column("definition")
        t.add_column("state")
        t.add_column("last step", overflow="ellipsis", no_wrap=True)
        colour = {"running": "yellow", "ok": "green", "failed": "red"}
        for name, (state, line) in self.rows.items():
            t.add_row(name, f"[{colour.get(state, 'white')}]{state}[/]", line)
        return t

    def __call__(self, definition: str, line: str) -> None:
        if not definition:
            self.console.print(line)
            return
        state = {"done: ok": "ok", "done: failed": "failed"}.get(line, "running")
        previous = self.rows.get(definition, ("running", ""))[1]
        self.rows[definition] = (state, previous if line.startswith("done:") else line)
        self.live.update(self._render())

    def close(self) -> None:
        """Stop redrawing; the last table stays on screen."""
        self.live.stop()


def counts(by_state: dict[str, int]) -> str:
    """`3 (2 running, 1 exited)` from {"total": 3, "running": 2, "exited": 1}."""
    rest = ", ".join(f"{n} {state}" for state, n in by_state.items() if state != "total" and n)
    return f"{by_state.get('total', 0)}" + (f" ({rest})" if rest else "")


def swarm_nodes(swarm: dict[str, Any] | None) -> str:
    """`3 (2 ready; b: down, active)` from a Swarm server's `swarm`; `-` for a container server."""
    if not swarm:
        return "-"
    if "error" in swarm:
        return f"? ({swarm['error']})"
    rest = "; ".join([f"{swarm['ready']} ready", *swarm["not_ready"]])
    return f"{swarm['nodes']} ({rest})"


def template_text(t: dict[str, Any]) -> str:
    """`syncer templates show` for a person: the header, inputs, profiles, then the spec."""
    taxonomy = "/".join(str(v) for v in t["taxonomy"].values()) or "-"
    lines = [f"{t['ref']}  {t['name']}  ({t['id']}, {t['file']})", f"taxonomy: {taxonomy}"]
    if t["description"]:
        lines.append(t["description"])
    if t["deprecated"]:
        lines.append("DEPRECATED")
    required = set(t["inputs"].get("required", []))
    lines.append("inputs:")
    for name, schema in (t["inputs"].get("properties") or {}).items():
        kind = schema.get("format") or schema.get("type") or "any"
        extra = " (required)" if name in required else (f" (default {schema['default']!r})" if "default" in schema
                                                        else "")
        lines.append(f"  {name}: {kind}{extra}")
    lines.append(f"profiles: {', '.join(t['profile_names']) or 'none'}")
    lines.append("spec:")
    lines.extend(f"  {line}" for line in to_json(t["spec"]).splitlines())
    return "\n".join(lines) + "\n"
