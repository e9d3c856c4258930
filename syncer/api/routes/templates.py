"""Templates (`tpl_` + 12 hex digits of the SHA-256 of `id@version`).

A plain template id names the version `Project.template_for` picks (the newest version
that is not deprecated), the same one a definition naming that id gets.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from syncer.api.routes.common import Paging, Svc, listing
from syncer.engine.catalog import find_template, template_dict, template_id
from syncer.engine.catalog import list_templates as list_templates_of

__all__ = ["find_template", "router", "template_dict", "template_id"]

router = APIRouter()


@router.get("/templates", tags=["templates"], summary="The template catalog")
def list_templates(svc: Svc, page: Paging, kingdom: str | None = None, family: str | None = None,
                   species: str | None = None) -> Response:
    """Templates, filtered on their taxonomy."""
    items = list_templates_of(svc.defined(), kingdom=kingdom, family=family, species=species)
    return listing(svc, items, page)


@router.get("/templates/{template_id}", tags=["templates"], summary="One template with its spec")
def get_template(svc: Svc, template_id: str) -> Response:
    """Spec, inputs (JSON Schema), profiles and spec_hash."""
    return svc.ok(template_dict(find_template(svc.defined(), template_id), detail=True))
