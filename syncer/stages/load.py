"""Read a repository's YAML into documents, fast, and locate problems only when asked.

Parsing uses ruamel.yaml's C safe loader (about 0.4 ms a small file). Positions are
recovered by composing the node tree of one file again, which only happens for files
that have a problem: a loader that kept positions for every value could not plan a
thousand definitions in a second.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ruamel.yaml.constructor import DuplicateKeyError, SafeConstructor
from ruamel.yaml.cyaml import CSafeLoader
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError

from syncer.core.errors import Diagnostic
from syncer.stages import guard
from syncer.stages.tree import PROJECT_FILE, YAML_SUFFIXES, DirTree, Tree, find_root

__all__ = ["PROJECT_FILE", "YAML_SUFFIXES", "DirTree", "Override", "OverrideList", "OverrideMap", "RESET",
           "SourceFile", "Tree", "find_root", "locate", "locate_in", "parse"]



class _Loader(CSafeLoader):
    """The C safe loader, with timestamps kept as the strings the user wrote."""


def _float(loader: Any, node: Any) -> float:
    """A YAML 1.2 float (`1e3`, `.5`, `-.inf`), read without the C loader's YAML 1.1 warning,
    which it prints on stderr for an exponent without a dot."""
    text = node.value.replace("_", "").lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


_Loader.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
_Loader.add_constructor("tag:yaml.org,2002:float", _float)


class _Reset:
    """Compose's `!reset`: an override file's way to remove what an earlier file set."""

    def __repr__(self) -> str:
        return "RESET"


RESET = _Reset()


class OverrideMap(dict[Any, Any]):
    """A mapping tagged `!override` in a Compose file: it replaces, it does not merge."""


class OverrideList(list[Any]):
    """A sequence tagged `!override` in a Compose file: it replaces, it is not appended."""


Override = (OverrideMap, OverrideList)


class _ComposeLoader(_Loader):
    """The safe loader, plus the two tags Compose gives override files."""


def _reset(loader: Any, node: Any) -> _Reset:
    return RESET


def _override(loader: Any, node: Any) -> Any:
    if node.id == "mapping":
        return OverrideMap(loader.construct_mapping(node, deep=True))
    if node.id == "sequence":
        return OverrideList(loader.construct_sequence(node, deep=True))
    # a scalar replaces anyway: read it as it would read untagged (a number stays a number)
    untagged = ScalarNode(loader.resolve(ScalarNode, node.value, (True, False)), node.value,
                          node.start_mark, node.end_mark, style=node.style)
    return loader.construct_object(untagged, deep=True)


def _compose_int(loader: Any, node: Any) -> int:
    """An integer as Compose's YAML reader (yaml.v3) reads it: digits after a leading 0 are
    octal where they can be (`0755` is 493, as in `mode: 0440`); else as YAML 1.2 reads it."""
    digits = node.value.replace("_", "").lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and set(digits) <= set("01234567"):
        return (-1 if node.value.startswith("-") else 1) * int(digits, 8)
    return int(SafeConstructor.construct_yaml_int(loader, node))


_ComposeLoader.add_constructor("!reset", _reset)
_ComposeLoader.add_constructor("!override", _override)
_ComposeLoader.add_constructor("tag:yaml.org,2002:int", _compose_int)


class _PureConstructor(SafeConstructor):
    """What ruamel.yaml's pure-Python loader (YAML 1.2) builds, as the C one does; that loader
    reads a file the C one refuses: libyaml keeps YAML 1.1's rule against a `:` in a flow
    list's plain item (`ports: [8080:80]`), which YAML 1.2, Compose's reader and PyYAML accept.
    Only such files pay for the slower parser."""


class _PureComposeConstructor(_PureConstructor):
    """The pure loader's, with the Compose file's tags and integers."""


_PureConstructor.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)
_PureConstructor.add_constructor("tag:yaml.org,2002:float", _float)
_PureComposeConstructor.add_constructor("!reset", _reset)
_PureComposeConstructor.add_constructor("!override", _override)
_PureComposeConstructor.add_constructor("tag:yaml.org,2002:int", _compose_int)


def _pure(compose: bool = False) -> Any:
    """The pure-Python loader, for what the C one refuses."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _PureComposeConstructor if compose else _PureConstructor
    return yaml


@lru_cache(maxsize=8)
def _c_reads(text: str) -> bool:
    """Whether the C loader parses `text` (its events: nothing is constructed); asked once per
    file however many of its problems are located."""
    loader = _Loader(text)
    try:
        while loader.check_event():
            loader.get_event()
        return True
    except YAMLError:
        return False
    finally:
        loader.dispose()


def _stream(text: str, *, nodes: bool = False) -> Iterator[Any]:
    """The parser's events of `text` (with `nodes`: each document's node tree; no tag is
    constructed), to locate a problem, by the loader that reads it."""
    if not _c_reads(text):
        yield from (_pure().compose_all(text) if nodes else _pure().parse(text))
        return
    loader = _Loader(text)
    check, get = (loader.check_node, loader.get_node) if nodes else (loader.check_event, loader.get_event)
    try:
        while check():
            yield get()
    finally:
        loader.dispose()


@dataclass(frozen=True)
class SourceFile:
    """One parsed file: its text (kept to locate problems) and its documents."""

    path: str
    text: str
    docs: tuple[Any, ...]


def parse(path: str, data: bytes, *, compose: bool = False) -> tuple[SourceFile | None, list[Diagnostic]]:
    """Decode and parse one file into its documents, or say precisely why not. `compose`:
    a Compose file, whose `!reset` and `!override` tags are read (RESET, OverrideMap/List)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(data, exc.start)
        return None, [Diagnostic(path, line, col, "file is not valid UTF-8")]
    text = text.removeprefix("\ufeff")
    deep = guard.nesting(text)
    if deep is not None:  # before the parser, which recurses (and crashes) on deep nesting
        return None, [Diagnostic(path, deep[0], deep[1], f"nesting deeper than {guard.MAX_DEPTH} levels: refused")]
    loader = (_ComposeLoader if compose else _Loader)(text)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
    except YAMLError as exc:
        try:  # (what the C loader refuses, the pure one may read: its words when neither does)
            docs = list(_pure(compose).load_all(text))
        except YAMLError:
            return None, [_yaml_diagnostic(path, text, exc)]
        except TypeError:
            return None, [_refusal(path, text, "key", "")]
    except TypeError:  # the parser hashes keys: a list holding a mapping cannot be one
        return None, [_refusal(path, text, "key", "")]
    finally:
        loader.dispose()
    refused = guard.expansion(docs)
    if refused is not None:
        return None, [_refusal(path, text, *refused)]
    return SourceFile(path, text, tuple(d for d in docs if d is not None)), []


def _refusal(path: str, text: str, kind: str, why: str) -> Diagnostic:
    if kind == "key":
        found = _non_string_key(text)
        if found is not None:
            return Diagnostic(path, *found)
        return Diagnostic(path, 1, 1, "a mapping key that is not a string (put keys in quotes)")
    line, col = _first_alias(text)
    return Diagnostic(path, line, col, why)


def _first_alias(text: str) -> tuple[int, int]:
    try:
        for event in _stream(text):
            if type(event).__name__ == "AliasEvent":
                return event.start_mark.line + 1, event.start_mark.column + 1
    except YAMLError:
        pass
    return 1, 1


_KEY_KINDS = {"int": "a number", "float": "a number", "bool": "a boolean", "null": "null"}


def _non_string_key(text: str) -> tuple[int, int, str] | None:
    """Line, column and message for the first mapping key that is not a string."""
    for node in _nodes(text):
        if node.id != "mapping":
            continue
        for key, _ in node.value:
            if key.id == "scalar" and key.tag.rsplit(":", 1)[-1] in ("str", "merge"):
                continue
            if key.id == "scalar":
                kind = _KEY_KINDS.get(key.tag.rsplit(":", 1)[-1], "not a string")
                shown = guard.excerpt(key.value)
                message = f"key {shown} is {kind}, not a string: put it in quotes ('{shown}')"
            else:
                message = f"a {'list' if key.id == 'sequence' else 'mapping'} used as a key: keys must be strings"
            return key.start_mark.line + 1, key.start_mark.column + 1, message
    return None


def _nodes(text: str) -> list[Any]:
    """Every distinct node of every document of `text` (for locating problems only)."""
    found: list[Any] = []
    try:
        stack = [node for node in _stream(text, nodes=True) if node is not None]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            found.append(node)
            if node.id == "mapping":
                stack.extend(v for pair in node.value for v in pair)
            elif node.id == "sequence":
                stack.extend(node.value)
    except YAMLError:
        pass
    found.sort(key=lambda n: (n.start_mark.line, n.start_mark.column))
    return found


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    before = data[:offset]
    line = before.count(b"\n") + 1
    # the column counts characters, like every other position (the bytes before the
    # first invalid one decode)
    start = before.rfind(b"\n") + 1
    col = len(data[start:offset].decode("utf-8", errors="replace")) + 1
    return line, col


def _yaml_diagnostic(path: str, text: str, exc: YAMLError) -> Diagnostic:
    tab = _tab_in_indentation(text)
    if tab is not None:
        return Diagnostic(path, tab[0], tab[1], "tab character in indentation (use spaces)")
    if isinstance(exc, ReaderError) and isinstance(exc.position, int):
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        return Diagnostic(path, line, col, f"character U+{_code(exc.character):04X} is not allowed in YAML ({exc.reason})")
    if isinstance(exc, DuplicateKeyError):
        found = _non_string_key(text)  # `1:` and `true:` are "duplicates" as Python keys
        if found is not None:
            return Diagnostic(path, *found)
        mark = exc.problem_mark
        key, first_line = _duplicate_key(text, mark.line, mark.column)
        if first_line is not None:
            where = f" (first at line {first_line})"
        else:
            start = exc.context_mark
            where = f" (the mapping starts at line {start.line + 1})" if start is not None else ""
        return Diagnostic(path, mark.line + 1, mark.column + 1, f"duplicate key '{guard.excerpt(key)}'{where}")
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        message = f"YAML syntax error: {exc.problem}"
        if exc.context:
            message += f" ({exc.context})"
        return Diagnostic(path, mark.line + 1, mark.column + 1, message)
    return Diagnostic(path, 1, 1, f"YAML error: {exc}")


def _duplicate_key(text: str, line: int, column: int) -> tuple[str, int | None]:
    """The key written at (0-based) line:column and the 1-based line of its first occurrence.

    Composing the node tree does not construct mappings, so it does not stop at the
    duplicate; the error's own text quotes values, so the key is taken from the node.
    """
    for node in _nodes(text):  # the one walk over every node
        if node.id != "mapping":
            continue
        for i, (k, _) in enumerate(node.value):
            if (k.start_mark.line, k.start_mark.column) == (line, column):
                for earlier, _ in node.value[:i]:
                    if earlier.id == "scalar" and (earlier.tag, earlier.value) == (k.tag, k.value):
                        return str(k.value), earlier.start_mark.line + 1
                return str(k.value), None
    return "?", None


def _tab_in_indentation(text: str) -> tuple[int, int] | None:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" \t")
        indent = line[: len(line) - len(stripped)]
        if "\t" in indent and stripped and not stripped.startswith("#"):
            return number, indent.index("\t") + 1
    return None


def locate(source: SourceFile, doc: int, path: Iterable[Any], *, key: bool = False) -> tuple[int, int]:
    """1-based line and column of the value at `path` in document `doc`.

    With `key`, the position of the last path element's key instead of its value.
    Walks as deep as the path exists and stops at the nearest existing ancestor.
    """
    return _locate(source, doc, path, key=key)[:2]


def locate_in(sources: Iterable[SourceFile], doc: int, path: Iterable[Any], *,
              key: bool = False) -> tuple[str, int, int]:
    """The file, line and column of the value at `path` among files merged in order: the
    file that holds the most of the path, the last one of those (it set the value)."""
    steps = list(path)
    best: tuple[int, str, int, int] | None = None
    for source in sources:
        line, col, depth = _locate(source, doc, steps, key=key)
        if best is None or depth >= best[0]:
            best = (depth, source.path, line, col)
    if best is None:
        return "", 1, 1
    return best[1], best[2], best[3]


def _locate(source: SourceFile, doc: int, path: Iterable[Any], *, key: bool) -> tuple[int, int, int]:
    node = _document_node(source.text, doc)
    if node is None:
        return 1, 1, -1
    mark, depth = node.start_mark, 0
    for step in path:
        child, key_node = _child(node, step)
        if child is None:
            break
        mark = key_node.start_mark if (key and key_node is not None) else child.start_mark
        node, depth = child, depth + 1
    return mark.line + 1, mark.column + 1, depth


def _document_node(text: str, doc: int) -> Any:
    index = -1
    try:
        for node in _stream(text, nodes=True):
            if node is None:
                continue
            # a null document (empty, ~, null, Null, NULL) is dropped by parse(): skip it too
            if not (node.id == "scalar" and node.tag.endswith(":null")):
                index += 1
            if index == doc:
                return node
    except YAMLError:
        return None
    return None


def _child(node: Any, step: Any) -> tuple[Any, Any]:
    if node.id == "mapping":
        for key_node, value_node in node.value:
            if key_node.value == str(step):
                return value_node, key_node
    elif node.id == "sequence" and isinstance(step, int) and 0 <= step < len(node.value):
        return node.value[step], None
    return None, None


def _code(character: Any) -> int:
    return ord(character) if isinstance(character, str) else int(character)
