"""`syncer secrets check`: which secret names each definition uses and where each one
resolves from (the environment, the secrets file, a SOPS file), or that it is missing.
Names and sources only: no value ever leaves this module."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from syncer.core.model import Definition, Project, Template
from syncer.engine import secrets as S
from syncer.engine.project import Context, load, read_secrets, sops_secrets
from syncer.stages.render import definition_secrets

MISSING = "missing"


def secrets_check(ctx: Context) -> dict[str, Any]:
    """Every definition's secret names with their source; `missing` counts the unresolved."""
    project = load(ctx)
    available = read_secrets(ctx, project)
    in_file = S.parse_secrets_file(ctx.secrets_file) if ctx.secrets_file is not None else {}
    files = sops_secrets(ctx, project)

    def where(name: str) -> dict[str, Any]:
        return {"name": name, **source(name, available, in_file, files)}

    templates = {(t.id, t.version): t for t in project.templates}
    rows: list[dict[str, Any]] = [{"definition": d.name, "secrets": [where(n) for n in sorted(
        definition_secrets(d) | _file_secrets(d, templates.get((d.template, d.template_version or ""))))]}
        for d in project.definitions]
    secrets, variables = _config_references(project)
    config = sorted([where(n) for n in secrets] + [  # a `{env: VAR}` is read from the environment alone
        {"name": v, "source": "env" if os.environ.get(v) else MISSING, "file": None} for v in variables],
        key=lambda s: str(s["name"]))
    missing = sum(s["source"] == MISSING for r in rows for s in r["secrets"])
    missing += sum(s["source"] == MISSING for s in config)
    return {"project": project.config.name, "sops_files": list(files), "definitions": rows,
            "config": config, "missing": missing}


def source(name: str, available: Mapping[str, str], in_file: Mapping[str, str],
           files: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """Where `name` resolves from, by the precedence of `secrets_for`: the environment,
    then the secrets file, then the last SOPS file holding it."""
    if name in available:
        from_env = name in os.environ and os.environ[name] == available[name]
        return {"source": "env" if from_env or name not in in_file else "secrets-file", "file": None}
    holders = [path for path, values in files.items() if name in values]
    if holders:
        return {"source": "sops", "file": holders[-1]}
    return {"source": MISSING, "file": None}


def _file_secrets(d: Definition, tpl: Template | None) -> set[str]:
    """The secrets `files: [{path, secret: NAME}]` writes into the definition's containers: its
    template's spec, the profile it uses, its overrides (a name given by an input is a param's)."""
    specs = [tpl.spec, tpl.profiles.get(d.profile, {})] if tpl is not None else []
    return {str(f["secret"]) for spec in (*specs, d.overrides) for f in spec.get("files") or []
            if isinstance(f, Mapping) and isinstance(f.get("secret"), str) and "${" not in f["secret"]}


def _config_references(project: Project) -> tuple[set[str], set[str]]:
    """The `{secret: NAME}` and the `{env: VAR}` references of syncer.yaml itself (webhook
    and git-hook secrets)."""
    refs: list[Any] = [t.secret for t in project.config.webhooks]
    api = project.config.raw.get("api")
    if isinstance(api, Mapping):
        refs.append(api.get("git_webhook_secret"))
    named = [r for r in refs if isinstance(r, Mapping) and len(r) == 1]
    return {str(r["secret"]) for r in named if "secret" in r}, {str(r["env"]) for r in named if "env" in r}
