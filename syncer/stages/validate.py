"""Files × JSON Schemas × cross-references → a Project, or every Diagnostic at once.

Each check appends to one list of diagnostics; nothing raises until the end, so a user
fixing a repository sees every problem in one run. The template catalog is checked in
`catalog`; diagnostics are collected in `collect`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from referencing.exceptions import Unresolvable

from syncer.core.errors import Diagnostic, InvalidProject
from syncer.core.labels import NAME_RE
from syncer.core.model import (
    Definition,
    Located,
    Project,
    ProjectConfig,
    Server,
    Template,
    WebhookTarget,
    newest_first,
)
from syncer.stages import schema
from syncer.stages.catalog import Broken, Catalog, check_one, normalise_inputs, strings, templates
from syncer.stages.collect import Collector, documents
from syncer.stages.load import PROJECT_FILE, Tree, locate

__all__ = ["build_project", "check_name", "find_cycles", "normalise_inputs"]

SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def build_project(tree: Tree, root: str, *, commit: str | None = None, dirty: bool = False) -> Project:
    """Load and validate a whole repository state; raise InvalidProject with every problem."""
    out = Collector()
    config = _config(tree, out)
    if config is None:
        raise InvalidProject(out.found)
    catalog_, broken = templates(tree, config, out)
    definitions = _definitions(tree, config, catalog_, broken, out)
    if out.found:
        raise InvalidProject(out.found)
    return Project(root, config, tuple(catalog_), tuple(definitions), commit, dirty)


# --- syncer.yaml ---------------------------------------------------------------------

def _config(tree: Tree, out: Collector) -> ProjectConfig | None:
    docs = documents(tree, PROJECT_FILE, out)
    if len(docs) != 1:
        if not out.found:
            if not docs:
                out.found.append(Diagnostic(PROJECT_FILE, 1, 1, "the file is empty: it needs at least 'project: NAME'"))
            else:
                out.at(docs[1][0], (), f"expected one document, found {len(docs)} (remove the '---' separators)")
        return None
    where, raw = docs[0]
    if not out.schema(schema.validator("project"), raw, where):
        return None
    servers = _servers(raw.get("servers"))
    defaults = raw.get("defaults", {})
    default_server = defaults.get("server", next(iter(servers)))
    if default_server not in servers:
        out.at(where, ("defaults", "server"), f"unknown server '{default_server}' (known: {', '.join(servers)})")
    folders: dict[str, tuple[str, ...]] = {}
    for key in ("templates", "definitions"):
        inside = []
        for i, folder in enumerate(raw.get(key, [key])):
            if folder.startswith("/") or ".." in folder.split("/"):
                out.at(where, (key, i), f"{key}[{i}]: folders must be inside the repository")
            else:
                inside.append(folder)  # a folder outside is reported, never read
        folders[key] = tuple(inside)
    hooks = tuple(
        WebhookTarget(h["url"], tuple(h.get("events", [])), h.get("secret"), h.get("format", "generic"))
        for h in raw.get("webhooks", [])
    )
    return ProjectConfig(
        name=raw["project"], servers=servers, default_server=default_server,
        default_profile=defaults.get("profile", "development"),
        template_dirs=folders["templates"], definition_dirs=folders["definitions"],
        prune=raw.get("prune", True), allow_literal_secrets=raw.get("allow_literal_secrets", False),
        webhooks=hooks, raw=raw,
    )


def _servers(raw: Mapping[str, Any] | None) -> dict[str, Server]:
    if not raw:
        return {"local": Server("local")}
    return {
        name: Server(name, s.get("docker"), s.get("environment", "development"), s.get("description", ""),
                     s.get("kind", "docker"))
        for name, s in raw.items()
    }


# --- templates -----------------------------------------------------------------------

def _definitions(tree: Tree, config: ProjectConfig, templates: list[Template], broken: Broken,
                 out: Collector) -> list[Definition]:
    by_id: dict[str, list[Template]] = {}
    for t in templates:
        by_id.setdefault(t.id, []).append(t)
    for versions in by_id.values():
        versions[:] = newest_first(versions)
    catalog = Catalog(by_id, broken=broken)
    seen: dict[str, Definition] = {}
    for folder in config.definition_dirs:
        for path in tree.yaml_files(folder):
            for where, raw in documents(tree, path, out):
                d = _definition(where, raw, config, catalog, out)
                if d is None:
                    if isinstance(raw.get("name"), str):
                        broken.definitions.add(raw["name"])
                    continue
                first = seen.get(d.name)
                if first is not None:
                    line, _ = locate(out.files[first.origin.file], first.origin.doc, ("name",))
                    out.at(where, ("name",), f"duplicate definition name '{d.name}'"
                           f" (first defined at {first.origin.file}:{line})")
                    continue
                seen[d.name] = d
    _check_dependencies(list(seen.values()), broken.definitions, out)
    return list(seen.values())


def _definition(where: Located, raw: dict[str, Any], config: ProjectConfig, catalog: Catalog,
                out: Collector) -> Definition | None:
    if not out.schema(schema.validator("definition"), raw, where):
        return None
    tpl, why = catalog.pick(raw["template"])
    if tpl is None:
        if why:
            out.at(where, ("template",), why)
        return None
    ok = True
    server = raw.get("server", config.default_server)
    # an unknown defaults.server is reported once, in syncer.yaml
    if server not in config.servers and "server" in raw:
        out.at(where, ("server",), f"unknown server '{server}' (known: {', '.join(config.servers)})")
        ok = False
    profile = raw.get("profile", config.default_profile)
    # An explicit profile must exist; the project's default applies only where it exists.
    if "profile" in raw and profile not in tpl.profiles:
        known = ", ".join(tpl.profiles) or "none"
        out.at(where, ("profile",), f"template '{tpl.ref}' has no profile '{profile}' (profiles: {known})")
        ok = False
    params = raw.get("params") or {}
    ok &= _check_params(params, tpl, where, config, catalog, out)
    inputs = set(tpl.inputs.get("properties", {}))
    for path, text in strings(raw.get("overrides") or {}, ("overrides",)):
        ok &= check_one(text, path, inputs, where, out)
    if not ok:
        return None
    tid = raw["template"].partition("@")[0]
    return Definition(
        name=raw["name"], template=tid, template_version=tpl.version, server=server,
        profile=profile, replicas=raw.get("replicas"), params=params,
        depends_on=tuple(raw.get("depends_on", [])), overrides=raw.get("overrides") or {},
        origin=where,
    )


def _check_params(params: Mapping[str, Any], tpl: Template, where: Located, config: ProjectConfig,
                  catalog: Catalog, out: Collector) -> bool:
    secrets = tpl.secret_inputs()
    ok = True
    checked = dict(params)
    for name in secrets & set(params):
        value = params[name]
        if _is_secret_ref(value):
            if not SECRET_NAME_RE.match(value["secret"]):
                out.at(where, ("params", name, "secret"), f"params.{name}.secret: invalid secret name"
                       f" {value['secret']!r} (letters, digits, '_', '.', '-', starting with a letter or '_')")
                ok = False
            checked[name] = schema.SECRET_PLACEHOLDER
        elif not config.allow_literal_secrets:
            prop = tpl.inputs.get("properties", {}).get(name, {})
            kind = "a password" if prop.get("format") == "password" else "a secret (writeOnly)"
            out.at(where, ("params", name), f"params.{name} is {kind} input: give {{secret: NAME}},"
                   " not a literal value (or set allow_literal_secrets: true in syncer.yaml)")
            ok = False
            checked[name] = schema.SECRET_PLACEHOLDER
    try:
        for path, at_key, message in schema.iter_problems(
            catalog.validator(tpl), checked, prefix=("params",), sensitive=secrets,
        ):
            if len(path) > 1 and checked.get(path[1]) == schema.SECRET_PLACEHOLDER and path[1] in secrets:
                continue  # a secret's constraints are checked when its value is known (render)
            out.at(where, path, message, key=at_key)
            ok = False
    except Unresolvable as exc:  # a $ref the template check could not see (a nested $id, say)
        out.at(tpl.origin, ("inputs",), f"inputs: invalid input schema: cannot resolve $ref ({exc})")
        ok = False
    return ok


def _is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secret"} and isinstance(value["secret"], str)


def _check_dependencies(definitions: list[Definition], broken: set[str], out: Collector) -> None:
    names = {d.name for d in definitions}
    graph: dict[str, tuple[str, ...]] = {}
    for d in definitions:
        for i, dep in enumerate(d.depends_on):
            if dep == d.name:
                out.at(d.origin, ("depends_on", i), f"'{d.name}' depends on itself")
            elif dep not in names and dep not in broken:  # a broken one is reported already
                out.at(d.origin, ("depends_on", i), f"depends_on names an unknown definition '{dep}'")
        graph[d.name] = tuple(x for x in d.depends_on if x in names and x != d.name)
    by_name = {d.name: d for d in definitions}
    for cycle in find_cycles(graph):
        first = by_name[cycle[0]]
        out.at(first.origin, ("depends_on",), "dependency cycle: " + " -> ".join([*cycle, cycle[0]]))


def find_cycles(graph: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Each cycle of a dependency graph once, starting from its smallest name."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):]
                start = cycle.index(min(cycle))
                cycles.append(cycle[start:] + cycle[:start])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def check_name(name: str) -> bool:
    """A valid definition / container name."""
    return bool(NAME_RE.match(name))
