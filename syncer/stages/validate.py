"""Files × JSON Schemas × cross-references → a Project, or every Diagnostic at once.

Each check appends to one list of diagnostics; nothing raises until the end, so a user
fixing a repository sees every problem in one run. The template catalog is checked in
`catalog`; diagnostics are collected in `collect`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from referencing.exceptions import Unresolvable

from syncer.core.errors import Diagnostic, InvalidProject
from syncer.core.labels import NAME_RE, name_problem
from syncer.core.model import (
    TLS,
    Definition,
    FileRef,
    Located,
    Project,
    ProjectConfig,
    Server,
    Template,
    WebhookTarget,
)
from syncer.core.versions import newest_first
from syncer.stages import networks, schema
from syncer.stages import policy as policies
from syncer.stages.catalog import (
    Broken,
    Catalog,
    check_forms,
    check_one,
    normalise_inputs,
    strings,
    templates,
)
from syncer.stages.collect import Collector, documents, yaml_files
from syncer.stages.load import PROJECT_FILE, Tree, locate
from syncer.stages.policy import Policy
from syncer.stages.relations import (
    check_dependencies,
    check_global_replicas,
    check_network_modes,
    check_ports,
    find_cycles,
)
from syncer.stages.tree import UnsafePath

__all__ = ["build_project", "check_name", "find_cycles", "normalise_inputs"]

SECRET_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def build_project(tree: Tree, root: str, *, commit: str | None = None, dirty: bool = False,
                  policy: Policy | None = None) -> Project:
    """Load and validate a whole repository state; raise InvalidProject with every problem.
    `policy` is the operator's (from outside the repository): syncer.yaml may only tighten it."""
    out = Collector()
    config = _config(tree, out, root)
    if config is None:
        raise InvalidProject(out.found)
    in_force = _policy(config, policy, out)
    catalog_, broken = templates(tree, config, out)
    _check_networks(catalog_, config, out)
    definitions = _definitions(tree, config, catalog_, broken, out, in_force)
    if out.found:
        raise InvalidProject(out.found)
    return Project(root, config, tuple(catalog_), tuple(definitions), commit, dirty)


# --- syncer.yaml ---------------------------------------------------------------------

def _config(tree: Tree, out: Collector, root: str = "") -> ProjectConfig | None:
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
    servers = _servers(raw.get("servers"), root, lambda path, msg: out.at(where, path, msg))
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
    for i, path in enumerate((raw.get("secrets") or {}).get("files", [])):
        if path.startswith("/") or ".." in path.split("/"):
            out.at(where, ("secrets", "files", i), f"secrets.files[{i}]: SOPS files must be inside the repository")
        else:
            try:
                missing = tree.read(path) is None
            except UnsafePath:  # a link out of the repository: named, never followed
                out.at(where, ("secrets", "files", i), f"secrets.files[{i}]: {path}: the SOPS file leads"
                       " outside the repository")
                continue
            if missing:
                out.at(where, ("secrets", "files", i), f"secrets.files[{i}]: no file '{path}' in the repository")
    declared, internal = _declared_networks(raw.get("networks"), where, out)
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
        networks=declared, internal_networks=internal,
    )


def _declared_networks(raw: Mapping[str, Any] | None, where: Located,
                       out: Collector) -> tuple[dict[str, bool], tuple[str, ...]]:
    """syncer.yaml's `networks:`: name → external, and the names made `internal: true`.
    syncer never creates or changes an external network: `internal` on one is an error."""
    declared, internal = {}, []
    for name, opts in (raw or {}).items():
        declared[str(name)] = external = bool((opts or {}).get("external"))
        for key in ("internal", "ipam"):
            if external and key in (opts or {}):
                out.at(where, ("networks", name, key), f"networks.{name}: `{key}` is for a network syncer"
                       " makes; an external one is never created or changed by syncer (drop"
                       f" `{key}`, or `external: true`)", key=True)
        if not external and (opts or {}).get("internal"):
            internal.append(str(name))
    return declared, tuple(sorted(internal))


def _policy(config: ProjectConfig, outer: Policy | None, out: Collector) -> Policy:
    raw = config.raw.get("policy")
    raw = raw if isinstance(raw, Mapping) else None
    if outer is not None:
        for path, message in policies.loosening(outer, raw):
            out.at(Located(PROJECT_FILE, 0), ("policy", *path), message)
    return policies.combine(outer, raw)


def _servers(raw: Mapping[str, Any] | None, root: str,
             report: Callable[[tuple[Any, ...], str], None]) -> dict[str, Server]:
    if not raw:
        return {"local": Server("local")}
    out = {}
    for name, s in raw.items():
        def at(key: str, msg: str, n: str = name) -> None:
            report(("servers", n, "tls", key), msg)

        out[name] = Server(name, s.get("docker"), s.get("environment", "development"), s.get("description", ""),
                           _tls(s.get("tls"), root, at), s.get("kind", "docker"))
    return out


def _tls(raw: Mapping[str, Any] | None, root: str,
         report: Callable[[str, str], None]) -> TLS | None:
    """`tls: {ca, cert, key, verify}`: each file inside the repository or `{env: VAR}`."""
    if raw is None:
        return None
    files: dict[str, FileRef | None] = {}
    for key in ("ca", "cert", "key"):
        value = raw.get(key)
        if isinstance(value, Mapping):
            files[key] = FileRef(env=str(value["env"]))
        elif value is None:
            files[key] = None
        elif value.startswith("/") or ".." in value.split("/"):
            # the key's path is not repeated: only that it points outside
            report(key, f"tls.{key}: the file must be inside the repository (or use {{env: VAR}})")
            files[key] = None
        else:
            files[key] = FileRef(rel=value, root=root)
    if ("cert" in raw) != ("key" in raw):
        report("cert" if "cert" in raw else "key", "tls: a client certificate needs its key (cert and key go together)"
               if "cert" in raw else "tls: a client key needs its certificate (cert and key go together)")
    return TLS(files["ca"], files["cert"], files["key"], bool(raw.get("verify", True)))


# --- templates -----------------------------------------------------------------------

def _check_networks(found: list[Template], config: ProjectConfig, out: Collector) -> None:
    """A network a template (or profile) joins must be declared in syncer.yaml."""
    for t in found:
        parts = [(("spec",), t.spec), *((("profiles", n), p) for n, p in t.profiles.items())]
        for base, spec in parts:
            _unknown_networks(spec, base, t.origin, config, out)


def _unknown_networks(spec: Mapping[str, Any], base: tuple[Any, ...], where: Located, config: ProjectConfig,
                      out: Collector) -> bool:
    ok = True
    for path, name in networks.unknown(spec, config.networks):
        hint = f"; for Docker's own, write `network_mode: {name}`" if name in ("host", "none", "bridge") else ""
        out.at(where, (*base, *path), f"network '{name}' is not declared under `networks:` in {PROJECT_FILE}"
               f" (declared: {', '.join(sorted(config.networks)) or 'none'}; the project network is joined unless"
               f" `project_network: false`{hint})")
        ok = False
    return ok


def _definitions(tree: Tree, config: ProjectConfig, templates: list[Template], broken: Broken,
                 out: Collector, policy: Policy) -> list[Definition]:
    by_id: dict[str, list[Template]] = {}
    for t in templates:
        by_id.setdefault(t.id, []).append(t)
    for versions in by_id.values():
        versions[:] = newest_first(versions)
    catalog = Catalog(by_id, broken=broken)
    seen: dict[str, Definition] = {}
    for folder in config.definition_dirs:
        for path in yaml_files(tree, folder, out):
            for where, raw in documents(tree, path, out):
                d = _definition(where, raw, config, catalog, out, policy)
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
    kinds = {d.name: t.kind for d in seen.values() for t in templates
             if (t.id, t.version) == (d.template, d.template_version)}
    check_dependencies(list(seen.values()), broken.definitions, out, kinds)
    check_network_modes(list(seen.values()), templates, broken.definitions, out)
    check_ports(list(seen.values()), catalog, config, out)
    check_global_replicas(list(seen.values()), catalog, out)
    return list(seen.values())


def _definition(where: Located, raw: dict[str, Any], config: ProjectConfig, catalog: Catalog,
                out: Collector, policy: Policy) -> Definition | None:
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
    if ok:  # an unknown profile is reported above, and says enough
        ok &= _check_image(raw, tpl, profile, where, out)
    params = raw.get("params") or {}
    ok &= _check_params(params, tpl, where, config, catalog, out)
    inputs = set(tpl.inputs.get("properties", {}))
    for path, text in strings(raw.get("overrides") or {}, ("overrides",)):
        ok &= check_one(text, path, inputs, where, out)
    ok &= _unknown_networks(raw.get("overrides") or {}, ("overrides",), where, config, out)
    ok &= check_forms(raw.get("overrides") or {}, ("overrides",), where, out)
    if not ok:
        return None
    tid = raw["template"].partition("@")[0]
    deps = raw.get("depends_on", [])
    conditions = {str(k): str((v or {}).get("condition", "started")) for k, v in deps.items()} \
        if isinstance(deps, dict) else {}
    restarts = tuple(str(k) for k, v in deps.items() if (v or {}).get("restart") is True) \
        if isinstance(deps, dict) else ()
    d = Definition(
        name=raw["name"], template=tid, template_version=tpl.version, server=server,
        profile=profile, replicas=raw.get("replicas"), params=params,
        depends_on=tuple(deps), overrides=raw.get("overrides") or {},
        origin=where, conditions=conditions, self_heal=raw.get("self_heal") or {}, restarts_with=restarts,
    )
    # an unknown server is reported already (here, or as syncer.yaml's defaults.server)
    on = config.servers.get(server, Server(server))
    if NAME_RE.match(d.name) and (problem := name_problem(d.name, on.kind)):  # (else the schema said so)
        out.at(where, ("name",), f"definition name {problem}")
        ok = False
    for origin, path, message in policies.check_definition(tpl, d, on, policy):
        out.at(origin, path, f"definition '{d.name}': {message}")
        ok = False
    return d if ok else None


def _check_params(params: Mapping[str, Any], tpl: Template, where: Located, config: ProjectConfig,
                  catalog: Catalog, out: Collector) -> bool:
    secrets = tpl.secret_inputs()
    unknown = _undeclared(params, tpl, where, out)
    ok = not unknown
    checked = {k: v for k, v in params.items() if k not in unknown}  # reported once, above
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
    except RecursionError:  # a schema loop guard.schema_problem did not foresee
        out.at(tpl.origin, ("inputs",), "inputs: invalid input schema: it refers to itself without end")
        ok = False
    except Unresolvable as exc:  # a $ref the template check could not see (a nested $id, say)
        out.at(tpl.origin, ("inputs",), f"inputs: invalid input schema: cannot resolve $ref ({exc})")
        ok = False
    return ok


def _undeclared(params: Mapping[str, Any], tpl: Template, where: Located, out: Collector) -> set[str]:
    """Params naming no input the template declares, each reported (none when its inputs
    schema admits more, with an explicit `additionalProperties` or `patternProperties`)."""
    inputs = tpl.inputs
    if inputs.get("additionalProperties", False) is not False or "patternProperties" in inputs:
        return set()
    known = sorted(inputs.get("properties", {}))
    unknown = set()
    for name in params:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (inputs: {', '.join(known) or 'none'})"
            out.at(where, ("params", name), f"unknown param '{name}'{hint}", key=True)
            unknown.add(name)
    return unknown


def _check_image(raw: Mapping[str, Any], tpl: Template, profile: str, where: Located, out: Collector) -> bool:
    """The spec the definition gets (the template's, its profile merged over, then the
    overrides) names an image."""
    if "image" in tpl.spec or "image" in tpl.profiles.get(profile, {}):
        return True
    if "image" in (raw.get("overrides") or {}):
        return True
    out.at(where, ("template",), f"template '{tpl.ref}' gives no image with profile '{profile}'"
           " (set spec.image in the template, image in the profile, or overrides.image)")
    return False


def _is_secret_ref(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secret"} and isinstance(value["secret"], str)


def check_name(name: str) -> bool:
    """A valid definition / container name."""
    return bool(NAME_RE.match(name))
