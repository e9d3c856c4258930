"""Templates (`tpl_` + 12 hex digits of the SHA-256 of `id@version`).

A plain template id names the version `Project.template_for` picks (the newest version
that is not deprecated), the same one a definition naming that id gets.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from syncer.api.routes.common import Paging, Svc, listing
from syncer.core.errors import NotFound
from syncer.core.model import Project, Template, version_key

router = APIRouter()


def template_id(t: Template) -> str:
    """`tpl_` + 12 hex digits of the SHA-256 of `id@version`: stable across restarts and hosts."""
    return "tpl_" + hashlib.sha256(t.ref.encode("utf-8")).hexdigest()[:12]


def template_dict(t: Template, *, detail: bool = False) -> dict[str, Any]:
    """A template as the API shows it."""
    out = {"id": template_id(t), "template": t.id, "ref": t.ref, "name": t.name, "version": t.version,
           "description": t.description, "taxonomy": dict(t.taxonomy), "deprecated": t.deprecated,
           "spec_hash": t.spec_hash, "file": t.origin.file}
    if detail:
        out.update(spec=t.spec, inputs=t.inputs, profiles=t.profiles, profile_names=sorted(t.profiles))
    return out


def find_template(project: Project, ident: str) -> Template:
    """By `tpl_` id, `id@version`, or plain id (the version a definition naming it gets)."""
    found = next((t for t in project.templates if ident == template_id(t)), None) or project.template_for(ident)
    if found is None:
        raise NotFound(f"no template '{ident}'")
    return found


@router.get("/templates", tags=["templates"], summary="The template catalog")
def list_templates(svc: Svc, page: Paging, kingdom: str | None = None, family: str | None = None,
                   species: str | None = None) -> Response:
    """Templates, filtered on their taxonomy."""
    wanted = {k: v for k, v in (("kingdom", kingdom), ("family", family), ("species", species)) if v is not None}
    ordered = sorted(svc.defined().templates, key=lambda t: (t.id, version_key(t.version)))
    items = [template_dict(t) for t in ordered if all(t.taxonomy.get(k) == v for k, v in wanted.items())]
    return listing(svc, items, page)


@router.get("/templates/{template_id}", tags=["templates"], summary="One template with its spec")
def get_template(svc: Svc, template_id: str) -> Response:
    """Spec, inputs (JSON Schema), profiles and spec_hash."""
    return svc.ok(template_dict(find_template(svc.defined(), template_id), detail=True))
