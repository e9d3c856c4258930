"""The template catalog as the shells show it (`syncer templates`, GET /templates).

A template's id is `tpl_` + 12 hex digits of the SHA-256 of `id@version`: stable across
restarts and hosts. A plain template id names the version `Project.template_for` picks (the
newest version that is not deprecated), the same one a definition naming that id gets.
"""

from __future__ import annotations

import hashlib
from typing import Any

from syncer.core.errors import NotFound
from syncer.core.model import Project, Template
from syncer.core.versions import version_key

TAXONOMY_FILTERS = ("kingdom", "family", "species")


def template_id(t: Template) -> str:
    """`tpl_` + 12 hex digits of the SHA-256 of `id@version`."""
    return "tpl_" + hashlib.sha256(t.ref.encode("utf-8")).hexdigest()[:12]


def template_dict(t: Template, *, detail: bool = False) -> dict[str, Any]:
    """A template as the shells show it (with spec, inputs and profiles when `detail`)."""
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
        known = ", ".join(sorted({t.id for t in project.templates})) or "none"
        raise NotFound(f"no template '{ident}' (templates: {known})")
    return found


def list_templates(project: Project, **taxonomy: str | None) -> list[dict[str, Any]]:
    """Templates ordered by id and version, filtered on taxonomy (kingdom, family, species)."""
    wanted = {k: v for k, v in taxonomy.items() if v is not None}
    ordered = sorted(project.templates, key=lambda t: (t.id, version_key(t.version)))
    return [template_dict(t) for t in ordered if all(t.taxonomy.get(k) == v for k, v in wanted.items())]
