"""Bounds on what one YAML file may cost, checked around the parser.

A repository is input from whoever can push to it. Three shapes of YAML cost far more than
their size: nesting thousands deep (the C parser recurses, and crashes the process at
100,000 levels; everything after it recurses too), aliases that multiply (a 372-byte
"billion laughs" expands to 10^8 values), and keys that are not strings (`1:`, `~:`,
`true:`; JSON Schema, the cache and the labels want strings). `nesting` runs on the text
BEFORE the parser and `expansion` on the parsed data, so that both cost time in
proportion to the file, never to what it expands to.
"""

from __future__ import annotations

import re
from typing import Any

MAX_DEPTH = 64  # real files nest < 15 levels
MAX_VALUES = 200_000  # values a file may expand to through aliases

_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\n]|\'\')*\'')
_DASHES = re.compile(r"(?:-(?: +|$))+")
_BRACKET = re.compile(r"[\[\]{}]")
_BLOCK_SCALAR = re.compile(r"(?:^|[\s:-])[|>][0-9+-]*$")


def nesting(text: str, limit: int = MAX_DEPTH) -> tuple[int, int] | None:
    """The 1-based line and column where `text` nests deeper than `limit`, or None.

    A cheap over-estimate, never an under-estimate: block indentation levels, plus `- `
    markers at the start of a line, plus open flow brackets (outside quotes, comments and
    block scalars).
    """
    indents: list[int] = []
    flow = 0
    block_scalar: int | None = None  # lines indented deeper than this are a scalar's text
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if not stripped.strip() or stripped.startswith("#"):
            continue
        if block_scalar is not None:
            if indent > block_scalar:
                continue
            block_scalar = None
        if flow == 0:
            while indents and indents[-1] >= indent:
                indents.pop()
            indents.append(indent)
        body = _QUOTED.sub(lambda m: " " * len(m.group()), stripped)
        comment = body.find(" #")
        body = body[:comment] if comment >= 0 else body
        dashes = _DASHES.match(body)
        depth = len(indents) + (dashes.group().count("-") if dashes else 0)
        if depth + flow > limit:
            return number, indent + 1
        for bracket in _BRACKET.finditer(body):
            flow = flow + 1 if bracket.group() in "[{" else max(0, flow - 1)
            if depth + flow > limit:
                return number, indent + bracket.start() + 1
        if flow == 0 and _BLOCK_SCALAR.search(body.rstrip()):
            block_scalar = indent
    return None


def expansion(docs: list[Any], *, max_values: int = MAX_VALUES,
              max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """Why parsed `docs` are refused, or None: ("alias", why) for aliases that expand
    beyond `max_values` values or `max_depth` levels or contain themselves; ("key", "")
    for a mapping key that is not a string (the caller locates and names it).

    Each distinct container is visited once (an alias shares its target), and its expanded
    size and depth are summed from its children's, so a bomb costs what its text costs.
    """
    size: dict[int, tuple[int, int]] = {}  # id -> (values, depth) once finished
    for doc in docs:
        stack: list[tuple[Any, bool]] = [(doc, False)]
        open_: set[int] = set()
        while stack:
            node, done = stack.pop()
            if not isinstance(node, (dict, list)):
                continue
            key = id(node)
            children = list(node.values()) if isinstance(node, dict) else node
            if done:
                open_.discard(key)
                inner = [size.get(id(c), (1, 0)) for c in children]
                values = 1 + sum(v for v, _ in inner) + (len(node) if isinstance(node, dict) else 0)
                depth = 1 + max((d for _, d in inner), default=0)
                if values > max_values:
                    return "alias", f"aliases expand this file to more than {max_values:,} values: refused"
                if depth > max_depth:
                    return "alias", f"aliases nest this file deeper than {max_depth} levels: refused"
                size[key] = (values, depth)
                continue
            if key in size:
                continue
            if key in open_:
                return "alias", "a recursive alias (a value that contains itself): refused"
            if isinstance(node, dict):
                for k in node:
                    if not isinstance(k, str):
                        return "key", ""
            open_.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children)
    return None


# --- input schemas: patterns that backtrack, $refs that loop -----------------------------

def schema_problem(inputs: Any) -> tuple[tuple[Any, ...], str] | None:
    """(path, why) of the first part of an input schema that could make checking a value
    cost without bound: a `pattern` with nested quantifiers (`^(a+)+$` takes 29 s on 30
    characters), or a `$ref` that comes back to itself without going deeper into the
    value (an endless recursion)."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), inputs)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if isinstance(pattern, str) and (why := risky_pattern(pattern)):
                return (*path, "pattern"), why
            named = node.get("patternProperties")
            for key in named if isinstance(named, dict) else ():
                if isinstance(key, str) and (why := risky_pattern(key)):
                    return (*path, "patternProperties", key), why
            stack.extend(((*path, k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
    loop = ref_loop(inputs)
    if loop is not None:
        return loop, f"$ref '{excerpt(str(_at(inputs, loop)))}' comes back to itself (an endless loop)"
    return None


def excerpt(value: str, limit: int = 40) -> str:
    """`value` cut to `limit` characters: diagnostics never quote more."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def risky_pattern(pattern: str) -> str | None:
    """Why `pattern` may backtrack exponentially (a repeat inside a repeat), or None.
    An invalid pattern is reported too: the check would otherwise fail on every value."""
    import re._parser as sre  # the stdlib's own pattern parser: the structure, not a guess

    try:
        tree = sre.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"invalid regular expression ({excerpt(str(exc))})"
    if _nested_repeat(list(tree), inside=False):
        return ("a repeat inside a repeat (like '(a+)+') can take exponential time: "
                "rewrite it without nested quantifiers")
    return None


_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _nested_repeat(items: list[Any], *, inside: bool) -> bool:
    for op, arg in items:
        name = str(op)
        if name in _REPEATS:
            _, high, body = arg
            unbounded = high > 1
            if unbounded and inside:
                return True
            # a repeated body with a character it must match between its own repeats
            # (`([a-z]+\.)*`) splits the text one way only: not a nested repeat
            nested = inside or (unbounded and not _has_separator(list(body)))
            if _nested_repeat(list(body), inside=nested):
                return True
            continue
        if name == "SUBPATTERN":
            bodies = [arg[-1]]
        elif name == "BRANCH":
            bodies = list(arg[1])
        else:
            bodies = [arg[1]] if name in ("ASSERT", "ASSERT_NOT") else []
        if any(_nested_repeat(list(b), inside=inside) for b in bodies):
            return True
    return False


def _has_separator(items: list[Any]) -> bool:
    for op, arg in items:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
            return True
        if name == "SUBPATTERN" and _has_separator(list(arg[-1])):
            return True
    return False


# keywords whose subschemas apply to the same value (no step deeper into it)
_SAME_VALUE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref", "dependentSchemas")


def ref_loop(inputs: Any) -> tuple[Any, ...] | None:
    """The path of a `$ref` that reaches itself again while staying on the same value."""
    def edges(path: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        node = _at(inputs, path)
        out: list[tuple[Any, ...]] = []
        if not isinstance(node, dict):
            return out
        ref = node.get("$ref")
        if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
            out.append(_pointer(ref))
        for k in ("allOf", "anyOf", "oneOf"):
            if isinstance(node.get(k), list):
                out.extend((*path, k, i) for i in range(len(node[k])))
        for k in ("not", "if", "then", "else"):
            if isinstance(node.get(k), dict):
                out.append((*path, k))
        if isinstance(node.get("dependentSchemas"), dict):
            out.extend((*path, "dependentSchemas", k) for k in node["dependentSchemas"])
        return out

    for start in _ref_sites(inputs):
        seen: set[tuple[Any, ...]] = set()
        todo = list(edges(start))
        while todo:
            here = todo.pop()
            if here == start:
                return (*start, "$ref")
            if here in seen or len(seen) > 10_000:
                continue
            seen.add(here)
            todo.extend(edges(here))
    return None


def _ref_sites(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [(path, node)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("$ref"), str):
                out.append(here)
            stack.extend(((*here, k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*here, i), v) for i, v in enumerate(value))
    return out


def _pointer(ref: str) -> tuple[Any, ...]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")] if ref != "#" else []
    return tuple(int(p) if p.isdigit() else p for p in parts)


def _at(root: Any, path: tuple[Any, ...]) -> Any:
    node = root
    for step in path:
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, dict) and str(step) in node:
            node = node[str(step)]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return None
    return node
