"""The one `${...}` scanner, shared by validate (which names may stand) and render (what
they become). Linear in the length of the text: a template full of `${` with no `}` costs
one pass, not one pass per `${`."""

from __future__ import annotations


from syncer.core.record import Record, record


@record
class Expr(Record):
    """One `${ name }` in a string, its name stripped of surrounding spaces."""

    name: str


def split(text: str) -> list[str | Expr]:
    """`text` as literal pieces and expressions, in order. A `${` with no closing `}` is literal,
    and `$${` is a literal `${` (as under Compose: a shell's `$${HOME}` in a healthcheck)."""
    out: list[str | Expr] = []
    literal = ""  # the literal piece being gathered (escapes resolved)
    at = 0
    while True:
        start = text.find("${", at)
        if start < 0:
            break
        if start > 0 and text[start - 1] == "$":
            literal += text[at:start - 1] + "${"
            at = start + 2
            continue
        end = text.find("}", start + 2)
        if end < 0:
            break  # no `}` after this `${`, so none after any later one either
        literal += text[at:start]
        if literal:
            out.append(literal)
            literal = ""
        out.append(Expr(text[start + 2:end].strip()))
        at = end + 1
    literal += text[at:]
    if literal:
        out.append(literal)
    return out


def names(text: str) -> list[str]:
    """The names of every expression in `text`."""
    if "${" not in text:
        return []
    return [p.name for p in split(text) if isinstance(p, Expr)]


def whole(text: str) -> str | None:
    """The name when `text` is exactly one expression (so its value keeps its type), else None."""
    if not (text.startswith("${") and text.endswith("}")):
        return None
    pieces = split(text)
    return pieces[0].name if len(pieces) == 1 and isinstance(pieces[0], Expr) else None
