"""Definitions (the store's `def_…` id once first applied; until then addressed by name,
which every `{id}` also accepts), their revisions, and their CPU and memory series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from syncer.api.routes.common import Paging, Svc, listing, server_of
from syncer.api.routes.templates import template_id
from syncer.api.service import Page, Service
from syncer.core import clock
from syncer.core.errors import NotFound, UsageError
from syncer.core.labels import container_name
from syncer.core.model import Definition, Project

router = APIRouter()


DefinitionStatus = Literal["pending", "deploying", "active", "failed", "removed"]


def resolve_definition(svc: Service, ident: str) -> tuple[str, Definition | None, dict[str, Any] | None]:
    """(name, the project's definition, the store's row) for a `def_` id or a name."""
    row = svc.state.definition_row(ident)
    name = str(row["name"]) if row is not None else ident
    d = svc.defined().definition(name)
    if d is None and row is None:
        raise NotFound(f"no definition '{ident}'")
    return name, d, row


def _params(d: Definition, project: Project) -> dict[str, Any]:
    """Params as written, a literal value of a secret input shown as ***."""
    tpl = project.template_for(f"{d.template}@{d.template_version}" if d.template_version else d.template)
    secret = tpl.secret_inputs() if tpl is not None else frozenset()
    return {k: ("***" if k in secret and not (isinstance(v, dict) and set(v) == {"secret"}) else v)
            for k, v in d.params.items()}


def _template(project: Project, d: Definition) -> Any:
    """The definition's template (one choice per ref of the current project: a page asks for 100)."""
    ref = f"{d.template}@{d.template_version}" if d.template_version else d.template
    if _TEMPLATES.get("") is not project:  # another project (a reload): forget the old one's choices
        _TEMPLATES.clear()
        _TEMPLATES[""] = project
    if ref not in _TEMPLATES:
        _TEMPLATES[ref] = project.template_for(ref)
    return _TEMPLATES[ref]


_TEMPLATES: dict[str, Any] = {}


def _definition(project: Project, name: str, d: Definition | None, row: dict[str, Any] | None,
                pins: set[str], *, detail: bool = False) -> dict[str, Any]:
    tpl = _template(project, d) if d is not None else None
    server = d.server if d is not None else (row or {}).get("server")
    out: dict[str, Any] = {
        "id": row["id"] if row else None, "name": name,
        "template_id": template_id(tpl) if tpl else None,
        "template": tpl.ref if tpl else (row or {}).get("template"),
        "server_id": f"srv_{server}" if server else None, "server": server,
        "profile": d.profile if d else None, "replicas": (d.replicas or 1) if d else None,
        "status": row["status"] if row else "pending", "current_revision": row["current_revision"] if row else None,
        "container_name": name, "pinned": name in pins, "in_repository": d is not None,
        "file": d.origin.file if d else None,
        "created_at": row["created_at"] if row else None, "updated_at": row["updated_at"] if row else None}
    if detail and d is not None:
        out.update(params=_params(d, project), depends_on=list(d.depends_on), overrides=d.overrides,
                   containers=[container_name(name, i) for i in range(1, (d.replicas or 1) + 1)])
    return out


@router.get("/definitions", tags=["definitions"], summary="Definitions in git and in the store")
def list_definitions(svc: Svc, page: Paging, server_id: str | None = None,
                     status: Annotated[DefinitionStatus | None, Query()] = None) -> Response:
    """Every definition of the repository, and those the store remembers (removed ones too)."""
    project = svc.defined()
    if server_id is not None:
        server_of(project, server_id)  # (404 for a server the project has not: not an empty page)
    rows, names, pins = _names(svc, project)
    # a page's bytes stand while the project, the store and the secrets do (`_names` makes a
    # new list whenever the project or the store changed): a dashboard asks again and again
    key = (page.page, page.per_page, server_id, status)
    redactor = svc.project.redactor()
    pages = svc.listed.get("definition pages")
    if pages is None or pages[0] is not names or pages[1] != redactor:
        pages = svc.listed["definition pages"] = (names, redactor, {})
    if key in pages[2]:
        return Response(pages[2][key], media_type="application/json")
    response = _page(svc, project, page, server_id, status, rows, names, pins)
    if len(pages[2]) < PAGES_KEPT:
        pages[2][key] = bytes(response.body)
    return response


PAGES_KEPT = 64  # distinct pages and filters kept per project and store state (at most ~2 MB)


def _page(svc: Service, project: Project, page: Page, server_id: str | None, status: str | None,
          rows: dict[str, dict[str, Any]], names: list[str], pins: set[str]) -> Response:
    if server_id is not None:
        names = [n for n in names if server_id in (f"srv_{_server(project, n, rows)}", _server(project, n, rows))]
    if status is not None:
        names = [n for n in names if (rows[n]["status"] if n in rows else "pending") == status]
    # only this page's items are built: the filters above read two fields, not the whole item
    items = [_definition(project, n, project.definition(n), rows.get(n), pins) for n in page.cut(names)]
    return svc.ok(items, page=page, total=len(names))


def _names(svc: Service, project: Project) -> tuple[dict[str, dict[str, Any]], list[str], set[str]]:
    """The store's rows, every name sorted, the pins: read again only when the project or the
    store changed (sorting 100k names per request was most of the answer's time)."""
    version = svc.state.version()
    cached = svc.listed.get("definitions")
    if cached is not None and cached[0] is project and cached[1] == version:
        return cached[2], cached[3], cached[4]
    rows, pins = svc.state.definitions(), svc.state.pinned()
    names = sorted({d.name for d in project.definitions} | set(rows))
    svc.listed["definitions"] = (project, version, rows, names, pins)
    return rows, names, pins


def _server(project: Project, name: str, rows: dict[str, dict[str, Any]]) -> str | None:
    d = project.definition(name)
    return d.server if d is not None else (rows.get(name) or {}).get("server")


@router.get("/definitions/{definition_id}", tags=["definitions"], summary="One definition")
def get_definition(svc: Svc, definition_id: str) -> Response:
    """With params (secret values never shown), depends_on, overrides and container names."""
    name, d, row = resolve_definition(svc, definition_id)
    return svc.ok(_definition(svc.defined(), name, d, row, svc.state.pinned(), detail=True))


@router.get("/definitions/{definition_id}/revisions", tags=["definitions"], summary="A definition's revisions")
def definition_revisions(svc: Svc, definition_id: str, page: Paging) -> Response:
    """Newest first; specs hold secrets as keyed references only."""
    from syncer.cli.views import revision_dict

    name, _, _ = resolve_definition(svc, definition_id)
    return listing(svc, [revision_dict(r) for r in svc.state.revisions(name)], page)


INTERVALS = {"1m": 60, "5m": 300, "1h": 3600}


def utc(at: datetime) -> datetime:
    """A time as UTC (naive times are taken as UTC); out of range is the client's error."""
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except (OverflowError, ValueError):
        raise UsageError(f"time {at.isoformat()} is out of range") from None


MAX_POINTS = 2000
TIME = Query(description="ISO 8601, or unix seconds")


def _window(start_time: datetime | float | None, end_time: datetime | float | None, step: int) -> tuple[datetime, datetime]:
    """The window asked for, as UTC; any schema-valid times make one (an empty window, start
    at or after end, simply holds no samples), at most MAX_POINTS intervals long (a longer
    one keeps its newest part: the answer says where it begins)."""
    end = bounded(end_time, datetime.now(UTC))
    try:
        start = bounded(start_time, end - timedelta(hours=1))
    except OverflowError:
        start = end
    try:
        start = max(start, end - timedelta(seconds=step * MAX_POINTS))
    except OverflowError:
        pass
    return min(start, end), end


def bounded(at: datetime | float | None, default: datetime) -> datetime:
    """A time as UTC: unix seconds too; past the calendar's ends, its first or last moment."""
    if at is None:
        return default
    if not isinstance(at, datetime):
        try:
            return datetime.fromtimestamp(at, UTC)
        except (OverflowError, ValueError, OSError):
            return datetime.min.replace(tzinfo=UTC) if at < 0 else datetime.max.replace(tzinfo=UTC)
    try:
        return utc(at)
    except UsageError:
        return datetime.min.replace(tzinfo=UTC) if at.year == 1 else datetime.max.replace(tzinfo=UTC)


@router.get("/definitions/{definition_id}/metrics", tags=["definitions"], summary="CPU % and memory over time")
def definition_metrics(svc: Svc, definition_id: str, start_time: Annotated[datetime | float | None, TIME] = None,
                       end_time: Annotated[datetime | float | None, TIME] = None,
                       interval: Literal["1m", "5m", "1h"] = "1m") -> Response:
    """Series of the definition's containers (summed over replicas), averaged per interval.

    ISO 8601 times (or unix seconds); default the last hour. A window of more than 2000 intervals is cut to its
    newest 2000 (`start_time` in the answer says where it begins). Sampled by the serving
    process (`--sample-interval`).
    """
    name, _, row = resolve_definition(svc, definition_id)
    step = INTERVALS[interval]
    start, end = _window(start_time, end_time, step)
    buckets: dict[int, dict[str, list[tuple[float | None, int | None]]]] = {}
    for s in svc.state.samples(name, clock.stamp(start), clock.stamp(end)):
        slot = buckets.setdefault(int(clock.epoch(s["at"]) // step * step), {})
        slot.setdefault(s["container"], []).append((s["cpu_percent"], s["memory_bytes"]))
    cpu, memory = [], []
    for slot_at in sorted(buckets):
        per_container = buckets[slot_at].values()
        stamp = clock.iso(slot_at)
        cpus = [_mean([c for c, _ in v]) for v in per_container]
        mems = [_mean([m for _, m in v]) for v in per_container]
        if any(c is not None for c in cpus):
            cpu.append({"timestamp": stamp, "value": round(sum(c for c in cpus if c is not None), 3)})
        if any(m is not None for m in mems):
            memory.append({"timestamp": stamp, "value": int(sum(m for m in mems if m is not None))})
    return svc.ok({"definition_id": row["id"] if row else None, "definition": name, "interval": interval,
                   "start_time": clock.iso(start), "end_time": clock.iso(end),
                   "metrics": {"cpu": {"unit": "percent", "values": cpu},
                               "memory": {"unit": "bytes", "values": memory}}})


def _mean(values: list[Any]) -> float | None:
    known = [float(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None
