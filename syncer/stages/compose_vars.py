"""Compose's variable interpolation turned into template inputs, and the small YAML writer
the importer emits its files with. Pure: the importer never reads the environment, so
`${VAR:-default}` becomes an input with that default, never the importing shell's value."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from syncer.stages.files import env_statements, parse_env

# an environment name or Compose variable that "looks like a password"
PASSWORDISH = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL|SALT|(?:^|_)(?:PASS|PWD)(?:$|_)",
                         re.IGNORECASE)
# ... except one that names where it is: the official images' `POSTGRES_PASSWORD_FILE=/run/secrets/db`
_LOCATION = re.compile(r"_(FILE|PATH|DIR)$", re.IGNORECASE)


def passwordish(name: str) -> bool:
    """True when an environment name or Compose variable looks like it holds a password."""
    return bool(PASSWORDISH.search(name)) and not _LOCATION.search(name)


_CREDENTIALED = re.compile(r"://[^/\s:@]*:(?!\$\{)[^/\s@]+@")  # (a password given as ${...} is an input)


def moved_lines(data: bytes) -> dict[str, str]:
    """An env file's lines that hold passwords (by their name, or a URL holding one), and those
    Compose interpolates (`${TEAM:-none}-x`; not in single quotes): name → value, read as
    Compose reads an env file (`files.parse_env`). The import takes them out of the file
    copied into the repository, into the spec's `env` (passwords as secrets)."""
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    literal = {key for key, quote, *_ in env_statements(text) if quote == "'"}
    return {name: value for name, value in parse_env(data).items()
            if passwordish(name) or credentialed(value)
            or (name not in literal and "$" in value)}


def without_moved(data: bytes) -> bytes:
    """An env file without the statements `moved_lines` finds (what the import copies into the
    repository): each with all its lines (a quoted value may span several: none may stay)."""
    secret = moved_lines(data)
    if not secret:
        return data
    text = data.decode("utf-8", "replace")
    bom = 1 if text.startswith("\ufeff") else 0
    out, last = [], 0
    for key, _, _, start, end in env_statements(text[bom:]):
        if key in secret:
            first = text.rfind("\n", 0, start + bom) + 1  # the whole lines it takes, its newline too
            out.append(text[last:first])
            last = min(end + bom + 1, len(text))
    return "".join([*out, text[last:]]).encode("utf-8")


def credentialed(value: object) -> bool:
    """True for a value holding a password whatever its name: a URL with `user:password@`."""
    return isinstance(value, str) and bool(_CREDENTIALED.search(value))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VARIABLE = re.compile(r"\$(\{|[A-Za-z_])")


@dataclass
class Var:
    """One Compose variable: the template input it becomes."""

    name: str
    default: str | None = None
    required: bool = False
    secret: bool = False
    shell: bool = False  # `KEY:` with no value in `environment`: Compose takes the shell's at `up`
    forms: list[tuple[str, bool]] = field(default_factory=list)  # each use's (default, `:-` rather than `-`)

    def values(self, dotenv: str | None) -> set[str]:
        """What Compose reads for each use given `.env`'s value (None: unset): a set value wins,
        an empty one is `-`'s but not `:-`'s, an unset one takes each default."""
        if dotenv:
            return {dotenv} if self.forms else set()
        return {"" if dotenv == "" and not colon else default for default, colon in self.forms}

    @property
    def input(self) -> str:
        """The template input's name."""
        return self.name.lower()


@dataclass
class Vars:
    """Every variable one service interpolates, in the order first met."""

    found: dict[str, Var] = field(default_factory=dict)
    # variables whose value Compose sets itself, not an input's: COMPOSE_PROJECT_NAME, the project's name
    fixed: dict[str, str] = field(default_factory=dict)

    def use(self, name: str, default: str | None = None, *, required: bool = False, colon: bool = True) -> Var:
        """Record a use of `name` (a later default fills an earlier absent one; `forms` keeps each)."""
        var = self.found.setdefault(name, Var(name, secret=passwordish(name)))
        if var.default is None and default is not None:
            var.default = default
        if default is not None:
            var.forms.append((default, colon))
        var.required = var.required or required
        return var


def settle(vars: Vars, dotenv: Mapping[str, str]) -> list[tuple[str, set[str]]]:
    """Each variable's default as `.env` (what Compose interpolates from) and its uses' own
    defaults give it — a password's value never: it becomes a secret —; the variables whose
    uses read differently (`${X-a}` and `${X:-b}`), which one input cannot say."""
    differ: list[tuple[str, set[str]]] = []
    for var in vars.found.values():
        given = dotenv.get(var.name)
        values = var.values(given)
        if given is not None and credentialed(given):
            var.secret = True
        elif var.secret:
            continue
        elif len(values) > 1:
            differ.append((var.name, values))
        elif values:
            var.default, var.required = values.pop(), var.required and given is None
        elif given is not None and (given or var.default is None):
            var.default, var.required = given, False
    return differ


class Unsupported(ValueError):
    """A Compose expression syncer cannot say (the message says which)."""


def interpolate(text: str, vars: Vars) -> str:
    """Compose's `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`, `${VAR?e}` and `$$`,
    as syncer text: each variable becomes `${inputs.var}`, whose default is Compose's value
    for an unset variable (the default given, else ""), and one of `vars.fixed` its value;
    a literal `${` (from `$${`) stays `$${`, syncer's way of writing it. Raises Unsupported
    for `${VAR:+x}` (but for a fixed one: Compose's `x`)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1:i + 2]
        if nxt == "$":
            # `$$` is a `$`; before `{` it stays `$${`, which syncer too reads as a literal `${`
            out.append("$$" if text[i + 2:i + 3] == "{" else "$")
            i += 2
        elif nxt == "{":
            end = _closing(text, i + 2)
            if end < 0:
                raise Unsupported(f"unclosed '${{' in {text!r}")
            out.append(_braced(text[i + 2:end], vars))
            i = end + 1
        else:
            m = _NAME.match(text, i + 1)
            if m is None:
                out.append("$")
                i += 1
                continue
            name = m.group(0)
            out.append(vars.fixed[name] if name in vars.fixed else "${inputs." + vars.use(name, "").input + "}")
            i = m.end()
    return "".join(out)


def fixed_only(value: Any, fixed: Mapping[str, str]) -> Any:
    """A name (`container_name`, a volume's `name:`) with the variables Compose sets itself
    (`fixed`: `${COMPOSE_PROJECT_NAME}-db`) read; `value` as it is when it holds any other
    (a name is no template input: the caller refuses it)."""
    if not isinstance(value, str) or "$" not in value:
        return value
    vars = Vars(fixed=dict(fixed))
    try:
        text = interpolate(value, vars)
    except Unsupported:
        return value
    return value if vars.found or "$" in text else text


ENTRIES = ("environment", "labels", "annotations", "sysctls", "extra_hosts")  # independent entries


def interpolated(value: Any, vars: Vars, *, entries: bool = False
                 ) -> tuple[Any, list[tuple[tuple[Any, ...], Unsupported]]]:
    """`value` with `interpolate` applied to its every string. With `entries` (a mapping or list
    of independent entries, ENTRIES), an entry that cannot be carried is left out alone, and
    listed with its key or index; else the first such raises Unsupported."""
    def each(v: Any) -> Any:
        if isinstance(v, str):
            return interpolate(v, vars)
        if isinstance(v, dict):
            return {k: each(x) for k, x in v.items()}
        return [each(x) for x in v] if isinstance(v, list) else v

    if not entries or not isinstance(value, dict | list):
        return each(value), []
    refused: list[tuple[tuple[Any, ...], Unsupported]] = []
    kept: dict[Any, Any] | list[Any] = {} if isinstance(value, dict) else []
    for at, item in (value.items() if isinstance(value, dict) else enumerate(value)):
        try:
            done = each(item)
        except Unsupported as exc:
            refused.append(((at,), exc))
            continue
        if isinstance(kept, dict):
            kept[at] = done
        else:
            kept.append(done)
    return kept, refused


def _closing(text: str, start: int) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def _braced(body: str, vars: Vars) -> str:
    m = _NAME.match(body)
    if m is None:
        raise Unsupported(f"'${{{body}}}' is not a variable")
    name, rest = m.group(0), body[m.end():]
    if name in vars.fixed:  # set and not empty: its value, whatever the default; `:+x`'s x
        alternative = re.match(r":?\+", rest)
        return interpolate(rest[alternative.end():], vars) if alternative else vars.fixed[name]
    return "${inputs." + _variable(name, rest, vars).input + "}"


def _variable(name: str, rest: str, vars: Vars) -> Var:
    body = name + rest
    if rest == "":
        return vars.use(name, "")
    for op in (":-", "-"):
        if rest.startswith(op):
            default = rest[len(op):]
            if _VARIABLE.search(default.replace("$$", "")):
                raise Unsupported(f"'${{{body}}}': a default made of another variable is not carried"
                                  " (a syncer input's default is a value)")
            return vars.use(name, default, colon=op == ":-")
    for op in (":?", "?"):
        if rest.startswith(op):
            return vars.use(name, required=True)
    raise Unsupported(f"'${{{body}}}': syncer inputs have no '{rest[:2]}' form")


def input_schema(var: Var) -> dict[str, Any]:
    """The JSON Schema of the input a variable becomes (passwords: writeOnly, no default)."""
    if var.secret:
        return {"type": "string", "format": "password", "writeOnly": True}
    if var.default is not None and re.fullmatch(r"[1-9][0-9]{0,8}|0", var.default):
        return {"type": "integer", "default": int(var.default)}
    out: dict[str, Any] = {"type": "string"}
    if var.default is not None:
        out["default"] = var.default
    return out


# --- the YAML writer: block style, flow style for short lists of plain scalars ---------

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+=:-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def scalar(value: Any, *, flow: bool = False) -> str:
    """One YAML scalar, quoted only where a plain one would be misread (inside a flow
    list, a colon is read as a mapping's: quoted there too)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and not text.endswith(":") and text.lower() not in _RESERVED \
            and not (flow and ":" in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def dump(value: dict[str, Any], header: str = "") -> str:
    """`value` as a YAML document."""
    return header + "\n".join(_block(value, 0)) + "\n"


def _block(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            inline = _inline(v)
            if inline is not None:
                lines.append(f"{pad}{scalar(k)}: {inline}")
            else:
                lines.append(f"{pad}{scalar(k)}:")
                lines.extend(_block(v, indent + 2))
        return lines
    for item in value:
        inline = _inline(item)
        if inline is not None:
            lines.append(f"{pad}- {inline}")
        else:
            inner = _block(item, indent + 2)
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines.extend(inner[1:])
    return lines


def _inline(value: Any) -> str | None:
    if isinstance(value, dict):
        return "{}" if not value else None
    if isinstance(value, list):
        if not value:
            return "[]"
        if all(not isinstance(v, (dict, list)) for v in value):
            text = "[" + ", ".join(scalar(v, flow=True) for v in value) + "]"
            if len(text) <= 72:
                return text
        return None
    return scalar(value)


def env_secrets(names: Collection[str]) -> list[str]:
    """The secrets the import made that syncer.yaml lets the environment give: the names that
    are environment variable names (never syncer's own `SYNCER_*`); any other comes from a
    secrets file."""
    return sorted(n for n in names if _ENV_NAME.fullmatch(n) and not n.startswith("SYNCER_"))


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def input_defaults(vars: Vars) -> dict[str, Any]:
    """`${inputs.x}` → the default the import gives input x (none for one without)."""
    schemas = {f"inputs.{v.input}": input_schema(v) for v in vars.found.values()}
    return {name: schema["default"] for name, schema in schemas.items() if "default" in schema}


def merge_env(spec: dict[str, Any], extra: dict[str, str]) -> None:
    """Env-file entries under `env`, where `environment:` does not already set them
    (under Compose it wins over env files)."""
    env = spec.get("env")
    if isinstance(env, list):
        present = {str(item).partition("=")[0] for item in env}
        env.extend(f"{k}={v}" for k, v in extra.items() if k not in present)
    elif extra:
        spec["env"] = {**extra, **(env or {})}


def split_env(item: str) -> tuple[str, str | None]:
    name, eq, value = item.partition("=")
    return name, (value if eq else None)
