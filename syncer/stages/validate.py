"""Files × JSON Schemas × cross-references → a Project, or every Diagnostic at once.

Each check appends to one list of diagnostics; nothing raises until the end, so a user
fixing a repository sees every problem in one run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from syncer.stages import schema
from syncer.core.errors import Diagnostic, InvalidProject
from syncer.core.labels import NAME_RE, template_hash
from syncer.stages.expr import names as expressions
from syncer.stages.load import PROJECT_FILE, SourceFile, Tree, locate, parse
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

CONTEXT_NAMES = ("definition.name", "server.name", "server.environment", "profile")
SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass
class _Collector:
    """The diagnostics found so far, and the files they point into."""

    files: dict[str, SourceFile] = field(default_factory=dict)
    found: list[Diagnostic] = field(default_factory=list)

    def at(self, where: Located, path: Iterable[Any], message: str, *, key: bool = False) -> None:
        """Record a problem located at `path` inside document `where`."""
        source = self.files.get(where.file)
        line, col = locate(source, where.doc, path, key=key) if source else (0, 0)
        self.found.append(Diagnostic(where.file, line, col, message))

    def schema(self, v: Draft202012Validator, data: Any, where: Located, **kw: Any) -> bool:
        """Check `data` against a schema; True when it passed."""
        ok = True
        for path, at_key, message in schema.iter_problems(v, data, **kw):
            self.at(where, path, message, key=at_key)
            ok = False
        return ok


def build_project(tree: Tree, root: str, *, commit: str | None = None, dirty: bool = False) -> Project:
    """Load and validate a whole repository state; raise InvalidProject with every problem."""
    out = _Collector()
    config = _config(tree, out)
    if config is None:
        raise InvalidProject(out.found)
    templates, broken = _templates(tree, config, out)
    definitions = _definitions(tree, config, templates, broken, out)
    if out.found:
        raise InvalidProject(out.found)
    return Project(root, config, tuple(templates), tuple(definitions), commit, dirty)


def _documents(tree: Tree, path: str, out: _Collector) -> list[tuple[Located, Any]]:
    data = tree.read(path)
    if data is None:
        out.found.append(Diagnostic(path, 0, 0, "file not found"))
        return []
    source, problems = parse(path, data)
    out.found.extend(problems)
    if source is None:
        return []
    out.files[path] = source
    docs = []
    for i, doc in enumerate(source.docs):
        where = Located(path, i)
        if isinstance(doc, dict):
            docs.append((where, doc))
        else:
            out.at(where, (), f"expected a mapping (key: value), got {_yaml_kind(doc)}")
    return docs


def _yaml_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


# --- syncer.yaml ---------------------------------------------------------------------

def _config(tree: Tree, out: _Collector) -> ProjectConfig | None:
    docs = _documents(tree, PROJECT_FILE, out)
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
        WebhookTarget(h["url"], tuple(h.get("events", [])), h.get("secret"))
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
        name: Server(name, s.get("docker"), s.get("environment", "development"), s.get("description", ""))
        for name, s in raw.items()
    }


# --- templates -----------------------------------------------------------------------

@dataclass
class _Broken:
    """What failed, so that its dependants do not report it again as "unknown"."""

    template_ids: set[str] = field(default_factory=set)
    template_files: list[str] = field(default_factory=list)  # files that could not be parsed
    definitions: set[str] = field(default_factory=set)


def _templates(tree: Tree, config: ProjectConfig, out: _Collector) -> tuple[list[Template], _Broken]:
    found: dict[tuple[str, str], Template] = {}
    broken = _Broken()
    for folder in config.template_dirs:
        for path in tree.yaml_files(folder):
            docs = _documents(tree, path, out)
            if path not in out.files:
                broken.template_files.append(path)
            for where, raw in docs:
                tpl = _template(where, raw, out)
                if tpl is None:
                    if isinstance(raw.get("id"), str):
                        broken.template_ids.add(raw["id"])
                    continue
                first = found.get((tpl.id, tpl.version))
                if first is not None:
                    line, _ = locate(out.files[first.origin.file], first.origin.doc, ("id",))
                    out.at(where, ("id",), f"template '{tpl.ref}' is already defined"
                           f" (first defined at {first.origin.file}:{line})")
                    continue
                found[(tpl.id, tpl.version)] = tpl
    return list(found.values()), broken


def _template(where: Located, raw: dict[str, Any], out: _Collector) -> Template | None:
    if not out.schema(schema.validator("template"), raw, where):
        return None
    written = raw.get("inputs") or {}
    inputs = normalise_inputs(written)
    try:
        Draft202012Validator.check_schema(inputs)
    except SchemaError as exc:
        error = best_match(exc.context) if exc.validator in ("anyOf", "oneOf") and exc.context else exc
        steps = list(error.absolute_path)
        if not _is_json_schema(written) and steps[:1] == ["properties"]:
            steps = steps[1:]  # the short form has no `properties` level
        path = ("inputs", *steps)
        out.at(where, path, f"{schema._dotted(path)}: invalid input schema: {error.message}")
        return None
    unresolved = _unresolved_ref(inputs)
    if unresolved is not None:
        ref_path, ref = unresolved
        steps = list(ref_path)
        if not _is_json_schema(written) and steps[:1] == ["properties"]:
            steps = steps[1:]
        path = ("inputs", *steps)
        out.at(where, path, f"{schema._dotted(path)}: invalid input schema: cannot resolve $ref '{ref}'"
               " (only references inside the inputs, like '#/$defs/NAME', are supported)")
        return None
    ok = _check_expressions(raw, inputs, where, out)
    if not ok:
        return None
    spec, profiles = raw["spec"], raw.get("profiles", {})
    return Template(
        id=raw["id"], name=raw.get("name", raw["id"]), version=raw["version"],
        description=raw.get("description", ""), taxonomy=raw.get("taxonomy", {}),
        deprecated=raw.get("deprecated", False), inputs=inputs, spec=spec, profiles=profiles,
        spec_hash=template_hash(spec, inputs, profiles), origin=where,
    )


def _is_json_schema(inputs: Mapping[str, Any]) -> bool:
    return "type" in inputs or "properties" in inputs or "$schema" in inputs


def _unresolved_ref(inputs: Mapping[str, Any]) -> tuple[tuple[Any, ...], str] | None:
    """The first `$ref` of an input schema that does not resolve (no network: none is fetched)."""
    uri = "urn:syncer:inputs"
    resolver = Registry().with_resource(uri, DRAFT202012.create_resource(dict(inputs))).resolver(uri)
    stack: list[tuple[tuple[Any, ...], Any]] = [((), inputs)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    return (*path, "$ref"), ref
            stack.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
    return None


def normalise_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """JSON Schema as given, or the seeds' short form `{name: {type, required}}` turned into it."""
    if _is_json_schema(inputs):
        schema_ = dict(inputs)
        given = {k: _normalise_prop(v) for k, v in dict(schema_.get("properties", {})).items()}
        return {**schema_, "properties": given} if given else schema_
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, prop in inputs.items():
        prop = dict(prop) if isinstance(prop, dict) else {"type": prop}
        if prop.pop("required", False) is True:
            required.append(name)
        props[name] = _normalise_prop(prop)
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


def _normalise_prop(prop: Any) -> Any:
    if isinstance(prop, dict) and prop.get("type") == "password":
        return {**prop, "type": "string", "format": "password", "writeOnly": True}
    return prop


def _check_expressions(raw: Mapping[str, Any], inputs: Mapping[str, Any], where: Located, out: _Collector) -> bool:
    known = set(inputs.get("properties", {}))
    ok = True
    for path, text in _strings(raw.get("spec", {}), ("spec",)):
        ok &= _check_one(text, path, known, where, out)
    for path, text in _strings(raw.get("profiles", {}), ("profiles",)):
        ok &= _check_one(text, path, known, where, out)
    return ok


def _check_one(text: str, path: tuple[Any, ...], known: set[str], where: Located, out: _Collector) -> bool:
    ok = True
    for expr in expressions(text):
        if expr.startswith("inputs."):
            if expr[7:] not in known:
                out.at(where, path, f"${{{expr}}} names an input that does not exist"
                       f" (inputs: {', '.join(sorted(known)) or 'none'})")
                ok = False
        elif expr not in CONTEXT_NAMES:
            out.at(where, path, f"unknown substitution ${{{expr}}} (allowed: ${{inputs.NAME}}, "
                   + ", ".join(f"${{{c}}}" for c in CONTEXT_NAMES) + ")")
            ok = False
    return ok


def _strings(value: Any, path: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


# --- definitions ---------------------------------------------------------------------

@dataclass
class _Catalog:
    """Templates by id, newest version first, with their compiled input validators."""

    by_id: dict[str, list[Template]]
    validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    broken: _Broken = field(default_factory=_Broken)

    def pick(self, ref: str) -> tuple[Template | None, str]:
        """The template a definition names, or why there is none ("" when that is said elsewhere)."""
        tid, _, version = ref.partition("@")
        versions = self.by_id.get(tid, [])
        if version:
            for t in versions:
                if t.version == version:
                    return t, ""
        elif versions:
            current = [t for t in versions if not t.deprecated] or versions
            return current[0], ""
        if tid in self.broken.template_ids:
            return None, ""  # the template has problems, reported where it is written
        if not versions:
            known = ", ".join(sorted(self.by_id)) or "none"
            unread = "".join(f"; {f} has errors and was skipped" for f in self.broken.template_files)
            return None, f"unknown template '{tid}' (known: {known}{unread})"
        return None, f"template '{tid}' has no version '{version}' (versions: {', '.join(t.version for t in versions)})"

    def validator(self, tpl: Template) -> Draft202012Validator:
        """The template's compiled input validator (compiled once per template)."""
        v = self.validators.get(tpl.ref)
        if v is None:
            v = self.validators[tpl.ref] = schema.input_validator(tpl.inputs)
        return v




def _definitions(tree: Tree, config: ProjectConfig, templates: list[Template], broken: _Broken,
                 out: _Collector) -> list[Definition]:
    by_id: dict[str, list[Template]] = {}
    for t in templates:
        by_id.setdefault(t.id, []).append(t)
    for versions in by_id.values():
        versions[:] = newest_first(versions)
    catalog = _Catalog(by_id, broken=broken)
    seen: dict[str, Definition] = {}
    for folder in config.definition_dirs:
        for path in tree.yaml_files(folder):
            for where, raw in _documents(tree, path, out):
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


def _definition(where: Located, raw: dict[str, Any], config: ProjectConfig, catalog: _Catalog,
                out: _Collector) -> Definition | None:
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
    for path, text in _strings(raw.get("overrides") or {}, ("overrides",)):
        ok &= _check_one(text, path, inputs, where, out)
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
                  catalog: _Catalog, out: _Collector) -> bool:
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


def _check_dependencies(definitions: list[Definition], broken: set[str], out: _Collector) -> None:
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
