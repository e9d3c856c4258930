"""syncer.stages.load: parsing, precise error positions, locate() and the directory tree."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from syncer.core.errors import Diagnostic, ProjectNotFound
from syncer.stages.load import DirTree, SourceFile, find_root, locate, parse


def _parse(text: str, path: str = "f.yaml") -> SourceFile:
    source, problems = parse(path, textwrap.dedent(text).lstrip("\n").encode("utf-8"))
    assert problems == []
    assert source is not None
    return source


def _problems(data: bytes | str, path: str = "f.yaml") -> list[Diagnostic]:
    if isinstance(data, str):
        data = textwrap.dedent(data).lstrip("\n").encode("utf-8")
    source, problems = parse(path, data)
    assert source is None
    return problems


# --- parse ---------------------------------------------------------------------------

def test_parse_keeps_documents_in_order_and_drops_empty_ones() -> None:
    source = _parse("""
        ---
        a: 1
        ---
        ---
        ~
        --- NULL
        ---
        b: [x, y]
        """)
    assert source.docs == ({"a": 1}, {"b": ["x", "y"]})
    assert source.path == "f.yaml"


def test_parse_keeps_timestamps_and_versions_as_written() -> None:
    source = _parse("""
        when: 2024-05-01
        version: "8.4"
        number: 8.4
        """)
    assert source.docs == ({"when": "2024-05-01", "version": "8.4", "number": 8.4},)


def test_parse_strips_a_byte_order_mark() -> None:
    source, problems = parse("f.yaml", "\ufeffa: 1\n".encode("utf-8"))
    assert problems == [] and source is not None
    assert source.docs == ({"a": 1},)


def test_parse_of_an_empty_file_has_no_documents() -> None:
    source, problems = parse("f.yaml", b"")
    assert problems == [] and source is not None and source.docs == ()


def test_invalid_utf8_is_located_at_the_bad_byte_in_characters() -> None:
    # "é" is two bytes; the column counts characters, as every other position does
    data = "a: 1\nb: café \xff\n".encode("latin-1").replace("caf\xe9".encode("latin-1"), "café".encode())
    assert _problems(data) == [Diagnostic("f.yaml", 2, 9, "file is not valid UTF-8")]


def test_tab_in_indentation_is_reported_where_it_is() -> None:
    problems = _problems(b"a:\n  b: 1\nc:\n\td: 2\n")
    assert problems == [Diagnostic("f.yaml", 4, 1, "tab character in indentation (use spaces)")]


def test_duplicate_key_names_the_first_occurrence() -> None:
    problems = _problems("""
        a: 1
        env:
          X: "1"
          Y: "2"
          X: "3"
        """)
    assert problems == [Diagnostic("f.yaml", 5, 3, "duplicate key 'X' (first at line 3)")]


def test_duplicate_key_in_a_later_document() -> None:
    problems = _problems("""
        a: 1
        ---
        b: 1
        c: 2
        b: 3
        """)
    assert problems == [Diagnostic("f.yaml", 5, 1, "duplicate key 'b' (first at line 3)")]


def test_duplicate_key_message_never_quotes_the_values() -> None:
    problems = _problems("""
        password: first-SECRET
        password: second-SECRET
        """)
    assert len(problems) == 1
    assert "SECRET" not in problems[0].message
    assert problems[0].message == "duplicate key 'password' (first at line 1)"


def test_unclosed_flow_sequence_is_a_syntax_error_with_a_position() -> None:
    problems = _problems("""
        a: [1, 2
        b: 3
        """)
    assert len(problems) == 1
    p = problems[0]
    assert (p.file, p.line) == ("f.yaml", 2)
    assert p.message.startswith("YAML syntax error: ")
    assert "flow sequence" in p.message


# --- locate --------------------------------------------------------------------------

NESTED = """
name: web
spec:
  image: busybox
  env:
    A: "1"
    B: two
  ports:
    - container_port: 80
      host_port: 8080
    - {container_port: 443, host_port: 8443}
"""


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        ((), False, (1, 1)),
        (("name",), False, (1, 7)),
        (("name",), True, (1, 1)),
        (("spec",), False, (3, 3)),
        (("spec", "env", "B"), False, (6, 8)),
        (("spec", "env", "B"), True, (6, 5)),
        (("spec", "ports", 0), False, (8, 7)),
        (("spec", "ports", 0, "host_port"), False, (9, 18)),
        (("spec", "ports", 0, "host_port"), True, (9, 7)),
        (("spec", "ports", 1, "host_port"), False, (10, 40)),
        (("spec", "ports", 1, "host_port"), True, (10, 29)),
    ],
)
def test_locate_nested_values_and_keys(path: tuple[object, ...], key: bool, expected: tuple[int, int]) -> None:
    source = _parse(NESTED)
    assert locate(source, 0, path, key=key) == expected


def test_locate_stops_at_the_nearest_existing_ancestor() -> None:
    source = _parse(NESTED)
    assert locate(source, 0, ("spec", "env", "MISSING")) == locate(source, 0, ("spec", "env"))
    assert locate(source, 0, ("spec", "ports", 7, "x")) == locate(source, 0, ("spec", "ports"))
    assert locate(source, 0, ("nothing",)) == (1, 1)


def test_locate_in_multi_document_files() -> None:
    source = _parse("""
        name: one
        replicas: 1
        ---
        # a comment before the second document
        name: two
        replicas: 2
        ---
        name: three
        params:
          port: 80
        """)
    assert locate(source, 0, ("replicas",)) == (2, 11)
    assert locate(source, 1, ("name",)) == (5, 7)
    assert locate(source, 1, ("replicas",), key=True) == (6, 1)
    assert locate(source, 2, ("params", "port")) == (10, 9)
    assert locate(source, 2, ()) == (8, 1)


def test_locate_skips_null_documents_as_parse_does() -> None:
    source = _parse("""
        --- NULL
        --- ~
        ---
        name: first
        ---
        name: second
        """)
    assert [d["name"] for d in source.docs] == ["first", "second"]
    assert locate(source, 0, ("name",)) == (4, 7)
    assert locate(source, 1, ("name",)) == (6, 7)


def test_locate_of_a_missing_document_is_the_start_of_the_file() -> None:
    source = _parse("a: 1\n")
    assert locate(source, 3, ("a",)) == (1, 1)


# --- trees and the project root -----------------------------------------------------

def test_dirtree_lists_yaml_files_at_any_depth_sorted(tmp_path: Path) -> None:
    for rel in ("defs/b.yaml", "defs/a.yml", "defs/x/y/z.yaml", "defs/notes.txt",
                "defs/.hidden.yaml", "defs/.git/c.yaml", "other/o.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a: 1\n")
    tree = DirTree(tmp_path)
    assert tree.yaml_files("defs") == ["defs/a.yml", "defs/b.yaml", "defs/x/y/z.yaml"]
    assert tree.yaml_files("missing") == []
    assert tree.read("defs/b.yaml") == b"a: 1\n"
    assert tree.read("defs/nope.yaml") is None
    assert tree.read("defs") is None


def test_find_root_walks_up_to_syncer_yaml(tmp_path: Path) -> None:
    (tmp_path / "syncer.yaml").write_text("project: p\n")
    deep = tmp_path / "definitions" / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_path.resolve()
    assert find_root(tmp_path) == tmp_path.resolve()


def test_find_root_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFound, match="no syncer.yaml"):
        find_root(tmp_path)


def test_a_colon_in_a_flow_lists_plain_item_reads_as_yaml_1_2_and_compose_read_it() -> None:
    """`ports: [8080:80]` is YAML 1.2 (and Compose's reader, and PyYAML) but not libyaml's YAML
    1.1: the C loader refused it as a syntax error. The pure loader reads such a file, with the
    same values as the C one gives any other (octal in a Compose file, timestamps as text), and
    problems in it are still located."""
    text = b"ports: [8080:80]\nvolumes: [./data:/data]\ncommand: [--addr=:80]\nmode: 0755\nwhen: 2026-12-02\nf: 1e3\n"
    own, problems = parse("t.yaml", text)
    assert not problems and own is not None
    assert own.docs[0] == {"ports": ["8080:80"], "volumes": ["./data:/data"], "command": ["--addr=:80"],
                           "mode": 755, "when": "2026-12-02", "f": 1000.0}
    compose, problems = parse("compose.yaml", text + b"x: !reset null\n", compose=True)
    assert not problems and compose is not None and compose.docs[0]["mode"] == 493
    assert locate(own, 0, ("when",)) == (5, 7)
    # what neither reads is the C loader's located error, as before
    assert parse("t.yaml", b"a: [b\n")[1] == [
        Diagnostic("t.yaml", 2, 1, "YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence)")]
