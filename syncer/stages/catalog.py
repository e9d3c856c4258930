"""The template catalog: each template checked (its inputs a valid JSON Schema, its `${...}`
naming inputs that exist), and the choice of template a definition's `template:` names."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from syncer.core.labels import template_hash
from syncer.core.model import Located, ProjectConfig, Template
from syncer.stages import guard, schema, shortforms, swarm_fields
from syncer.stages.collect import Collector, documents, yaml_files
from syncer.stages.expr import names as expressions
from syncer.stages.load import Tree, locate

CONTEXT_NAMES = ("definition.name", "server.name", "server.environment", "profile")


@dataclass
class Broken:
    """What failed, so that its dependants do not report it again as "unknown"."""

    template_ids: set[str] = field(default_factory=set)
    template_files: list[str] = field(default_factory=list)  # files that could not be parsed
    definitions: set[str] = field(default_factory=set)


def templates(tree: Tree, config: ProjectConfig, out: Collector) -> tuple[list[Template], Broken]:
    found: dict[tuple[str, str], Template] = {}
    broken = Broken()
    for folder in config.template_dirs:
        for path in yaml_files(tree, folder, out):
            docs = documents(tree, path, out)
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


def _template(where: Located, raw: dict[str, Any], out: Collector) -> Template | None:
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
    risky = guard.schema_problem(inputs)
    if risky is not None:
        steps = list(risky[0])
        if not _is_json_schema(written) and steps[:1] == ["properties"]:
            steps = steps[1:]
        path = ("inputs", *steps)
        out.at(where, path, f"{schema._dotted(path)}: invalid input schema: {risky[1]}")
        return None
    if not _no_secret_defaults(written, inputs, where, out):
        return None
    ok = _check_expressions(raw, inputs, where, out) & _has_image(raw, where, out)
    ok &= check_forms(raw["spec"], ("spec",), where, out)
    for name, profile in (raw.get("profiles") or {}).items():
        ok &= check_forms(profile, ("profiles", name), where, out)
    if not ok:
        return None
    spec, profiles = raw["spec"], raw.get("profiles", {})
    return Template(
        id=raw["id"], name=raw.get("name", raw["id"]), version=raw["version"],
        description=raw.get("description", ""), taxonomy=raw.get("taxonomy", {}),
        deprecated=raw.get("deprecated", False), inputs=inputs, spec=spec, profiles=profiles,
        spec_hash=template_hash(spec, inputs, profiles), origin=where, kind=raw.get("kind", "service"),
    )


def _no_secret_defaults(written: Mapping[str, Any], inputs: Mapping[str, Any], where: Located,
                        out: Collector) -> bool:
    """A default for a password / writeOnly input would be a secret in plain text in the
    template, the spec label, the store and every plan: refused, whatever the project allows."""
    ok = True
    for name, prop in (inputs.get("properties") or {}).items():
        if isinstance(prop, Mapping) and "default" in prop and (
                prop.get("writeOnly") or prop.get("format") == "password"):
            path = ("inputs", *(("properties",) if _is_json_schema(written) else ()), name, "default")
            out.at(where, path, f"{schema._dotted(path)}: a password (writeOnly) input cannot have a default:"
                   " definitions give it as {secret: NAME}", key=True)
            ok = False
    return ok


def _has_image(raw: Mapping[str, Any], where: Located, out: Collector) -> bool:
    """The spec names an image, or every profile does (a definition picks one of them)."""
    profiles = raw.get("profiles") or {}
    if "image" in raw["spec"]:
        return True
    lacking = [name for name, p in profiles.items() if "image" not in p]
    if profiles and not lacking:
        return True
    which = f"; profile(s) {', '.join(lacking)} set none" if lacking else ""
    out.at(where, ("spec",), f"spec: no image (set spec.image, or image in every profile){which}", key=True)
    return False


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


def _check_expressions(raw: Mapping[str, Any], inputs: Mapping[str, Any], where: Located, out: Collector) -> bool:
    known = set(inputs.get("properties", {}))
    ok = True
    for path, text in strings(raw.get("spec", {}), ("spec",)):
        ok &= check_one(text, path, known, where, out)
    for path, text in strings(raw.get("profiles", {}), ("profiles",)):
        ok &= check_one(text, path, known, where, out)
    return ok


def check_forms(spec: Mapping[str, Any], base: tuple[Any, ...], where: Located, out: Collector) -> bool:
    """What the schema lets through that is still wrong, located: an `expose` entry or a short
    `ports` one that is no set of ports (out of range, a range that runs backwards or is too
    wide), a placement constraint Swarm would refuse, a volume the engine would (a named one's
    propagation); one with `${...}` is checked at render."""
    ok = True
    placement = spec.get("placement")
    constraints = placement.get("constraints") if isinstance(placement, Mapping) else None
    checks: tuple[tuple[str, Any, Callable[[Any], object]], ...] = (
        ("expose", spec.get("expose"), shortforms.exposed_range), ("ports", spec.get("ports"), _short_port),
        ("placement.constraints", constraints, _constraint), ("volumes", spec.get("volumes"), _volume))
    for key, entries, check in checks:
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            if (isinstance(entry, Mapping) and check is not _volume) or "${" in str(entry):
                continue
            try:
                check(entry if isinstance(entry, Mapping) else str(entry))
            except shortforms.SpecError as exc:
                path = (*base, *key.split("."), i)
                out.at(where, path, f"{schema._dotted(path)}: {str(exc).removeprefix(f'{key}: ')}")
                ok = False
    return ok


def _short_port(entry: str) -> None:
    shortforms.ports([entry])


def _volume(entry: str | Mapping[str, Any]) -> None:  # (either form: a named volume's propagation, say)
    shortforms.volumes([entry])


def _constraint(entry: str) -> None:
    problem = swarm_fields.constraint_problem(entry)
    if problem:
        raise shortforms.SpecError(problem)


def check_one(text: str, path: tuple[Any, ...], known: set[str], where: Located, out: Collector) -> bool:
    ok = True
    for written in expressions(text):
        expr = guard.excerpt(written)
        if written.startswith("inputs."):
            if written[7:] not in known:
                out.at(where, path, f"${{{expr}}} names an input that does not exist"
                       f" (inputs: {', '.join(sorted(known)) or 'none'})")
                ok = False
        elif written not in CONTEXT_NAMES:
            out.at(where, path, f"unknown substitution ${{{expr}}} (allowed: ${{inputs.NAME}}, "
                   + ", ".join(f"${{{c}}}" for c in CONTEXT_NAMES) + ")")
            ok = False
    return ok


def strings(value: Any, path: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from strings(v, (*path, i))


# --- definitions ---------------------------------------------------------------------

@dataclass
class Catalog:
    """Templates by id, newest version first, with their compiled input validators."""

    by_id: dict[str, list[Template]]
    validators: dict[str, Draft202012Validator] = field(default_factory=dict)
    broken: Broken = field(default_factory=Broken)

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
