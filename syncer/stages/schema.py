"""The JSON Schemas of syncer's files, compiled once, and their errors as plain sentences.

The schema files live in syncer/stages/schemas/ (linked as schemas/ at the top of the repo, for
editors' `# yaml-language-server: $schema=...` lines).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

SCHEMA_FILES = ("project", "template", "definition", "spec")

# A stand-in for `{secret: NAME}` while params are checked against a template's inputs:
# a secret's value is unknown until render, so only its type is checked here.
SECRET_PLACEHOLDER = "\x00secret\x00"
EXCERPT = 40  # no diagnostic quotes more of a value than this many characters


@cache
def _registry() -> Registry[Any]:
    resources_: list[tuple[str, Resource[Any]]] = []
    for name in SCHEMA_FILES:
        resources_.append((f"{name}.schema.json", Resource.from_contents(load_schema(name))))
    return Registry().with_resources(resources_)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The parsed JSON Schema `name` (project, template, definition, spec)."""
    text = resources.files("syncer.stages").joinpath("schemas", f"{name}.schema.json").read_text()
    return dict(json.loads(text))


@cache
def validator(name: str, *, exact: bool = False) -> Draft202012Validator:
    """A compiled validator for one of syncer's own schemas; `exact`: an integer is written as
    one (JSON Schema takes 3.0 for 3; in a file syncer writes itself, 3.0 is someone's edit)."""
    kind = _EXACT if exact else Draft202012Validator
    return kind(load_schema(name), registry=_registry())


_EXACT = validators.extend(Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)))


def input_validator(inputs: Mapping[str, Any]) -> Draft202012Validator:
    """A compiled validator for a template's (already checked) input schema."""
    return Draft202012Validator(dict(inputs))


def iter_problems(
    v: Draft202012Validator, instance: Any, *, prefix: tuple[Any, ...] = (),
    sensitive: frozenset[str] = frozenset(), quoted: bool = False,
) -> Iterator[tuple[tuple[Any, ...], bool, str]]:
    """(path, at_key, message) for every violation, most specific first.

    Paths and messages start with `prefix` (where `instance` sits in its document);
    `sensitive` names the instance's top-level properties whose values are never quoted;
    `quoted`: a value of the wrong type is quoted, not only named by its type (`got "false"`:
    for a file syncer wrote, where the value is what an editor typed by hand).
    """
    ctx = _Ctx(prefix, sensitive, quoted)
    for error in v.iter_errors(instance):
        yield from _explain(error, ctx)


@dataclass(frozen=True)
class _Ctx:
    prefix: tuple[Any, ...]
    sensitive: frozenset[str]
    quoted: bool = False

    def path(self, error: ValidationError) -> tuple[Any, ...]:
        return (*self.prefix, *error.absolute_path)

    def hides(self, path: tuple[Any, ...]) -> bool:
        n = len(self.prefix)
        return len(path) > n and path[n] in self.sensitive


def _explain(error: ValidationError, ctx: _Ctx) -> Iterator[tuple[tuple[Any, ...], bool, str]]:
    if error.validator in ("anyOf", "oneOf") and error.context:
        deeper = [e for e in error.context if len(e.absolute_path) > len(error.absolute_path)]
        if deeper:
            yield from _explain(best_match(deeper), ctx)
            return
        fitting = [e for e in error.context if e.validator != "type" and _fits_type(e)]
        if fitting and not isinstance(error.instance, str):
            # a branch took the value's type and refused the value (`host_port: 70000`):
            # its reason is the real one, not "expected string" from another branch
            yield from _explain(best_match(fitting), ctx)
            return
        kinds = sorted({t for e in error.context if e.validator == "type" for t in _as_list(e.validator_value)})
        if kinds and all(e.validator in ("type", "pattern") for e in error.context):
            path = ctx.path(error)
            got = _json_type(error.instance)
            if isinstance(error.instance, str):
                yield path, False, f"{_dotted(path)}: invalid value {_show(error.instance, path, ctx)}"
            else:
                yield path, False, f"{_dotted(path)}: expected {' or '.join(kinds)}, got {got}"
            return
        # the alternatives of the value's own type say what is wrong with it (an unknown key
        # of a long-form port), not those of another type ("expected string")
        same_type = [e for e in error.context if e.validator != "type"]
        yield from _explain(best_match(same_type or error.context), ctx)
        return
    path = ctx.path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        for extra in sorted((k for k in error.instance if k not in known), key=str):
            close = difflib.get_close_matches(str(extra), sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            shown = _dotted((*path, extra if len(str(extra)) <= EXCERPT else str(extra)[: EXCERPT - 1] + "…"))
            yield (*path, extra), True, f"unknown field '{shown}'{hint}"
        return
    if error.validator == "required" and isinstance(error.instance, dict):
        for missing in error.validator_value:
            if missing not in error.instance:
                yield path, False, f"missing required field '{_dotted((*path, missing))}'"
        return
    if error.validator == "not" and "propertyNames" in error.schema_path:  # a key refused by name: at the key
        yield (*path, error.instance), True, _message(error, path, ctx)
        return
    yield path, error.validator in ("propertyNames",), _message(error, path, ctx)


def _message(error: ValidationError, path: tuple[Any, ...], ctx: _Ctx) -> str:
    where = _dotted(path) or "document"
    value = error.instance
    kind = error.validator
    if kind == "type":
        wanted = _as_list(error.validator_value)
        hint = ""
        if wanted == ["string"] and isinstance(value, (int, float)) and not ctx.quoted:  # bool is an int too
            hint = " (put the value in quotes)"  # (YAML's unquoted `1.0`; a quoted value shows itself)
        return f"{where}: expected {' or '.join(wanted)}, got {_found(value, path, ctx)}{hint}"
    if kind == "const":  # (jsonschema's own sentence quotes Python: "True was expected")
        return f"{where}: expected {json.dumps(error.validator_value)}, got {_show(value, path, ctx)}"
    if kind == "pattern" and error.schema.get("description"):  # a sentence beats a regular expression
        return f"{where}: {_show(value, path, ctx)} is not {error.schema['description']}"
    if kind == "pattern":
        return f"{where}: {_show(value, path, ctx)} does not match {error.validator_value}"
    if kind == "oneOf" and error.schema.get("description"):
        return f"{where}: expected {error.schema['description']}"
    if kind == "enum":
        options = ", ".join(json.dumps(o) for o in error.validator_value)
        return f"{where}: {_show(value, path, ctx)} is not one of {options}"
    if kind == "not" and error.schema.get("description"):  # (a key refused by name: `syncer.*` labels)
        return f"{where}: {_show(value, path, ctx)} is {error.schema['description']}"
    if kind == "propertyNames":
        return f"{where}: invalid key ({error.message})"
    if _is_sensitive(path, ctx):
        return f"{where}: the value does not satisfy '{kind}: {error.validator_value}'"
    return f"{where}: {_without_long_values(error.message, value)}"


def _fits_type(error: ValidationError) -> bool:
    """True when `error` comes from a schema whose `type` (if any) the value has."""
    wanted = error.schema.get("type") if isinstance(error.schema, dict) else None
    if wanted is None:
        return False
    return _json_type(error.instance) in _as_list(wanted) or (
        "number" in _as_list(wanted) and _json_type(error.instance) == "integer")


def _without_long_values(message: str, value: Any) -> str:
    """jsonschema's message with any quoted value cut to a short excerpt (a value may be a
    file's whole content, or something that must not be echoed at length)."""
    shown = repr(value)
    if len(shown) > EXCERPT and shown in message:
        message = message.replace(shown, shown[: EXCERPT - 1] + "…")
    return message


def _is_sensitive(path: tuple[Any, ...], ctx: _Ctx) -> bool:
    return ctx.hides(path)


def _show(value: Any, path: tuple[Any, ...], ctx: _Ctx) -> str:
    if _is_sensitive(path, ctx):
        return "the value"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def _found(value: Any, path: tuple[Any, ...], ctx: _Ctx) -> str:
    """A value of the wrong type: its type, or the value itself when `ctx.quoted` and it is
    no list or object."""
    if ctx.quoted and not isinstance(value, (dict, list)):
        return _show(value, path, ctx)
    return _json_type(value)


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out
