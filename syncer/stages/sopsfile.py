"""The SOPS file format, read without decrypting anything: which values a file holds (and
under which path each was encrypted), who can open it (age recipients, PGP fingerprints),
its MAC and the rules that say which values are encrypted. Pure: bytes in, data out.

The format is SOPS's own (github.com/getsops/sops, `stores/` and `sops.go`), written anew:
- YAML and JSON files carry a top-level `sops` mapping; dotenv files carry flattened
  `sops_*` lines (`sops_age__list_0__map_recipient=...`).
- A value's additional data for AES-GCM is its mapping keys joined with ':' plus a final
  ':' (list indices are not part of it), e.g. `db:password:`.
- The MAC is SHA-512 over every value in document order (nulls and comments skipped; with
  `mac_only_encrypted`, only the encrypted ones, after a fixed 32-byte prefix).

Names: a nested value is `a.b`, a list item `a.0` (its index), as `{secret: NAME}` uses them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from syncer.core.errors import SecretError

METADATA_KEY = "sops"
# sops.go: MACOnlyEncryptedInitialization, hashed first when `mac_only_encrypted` is set
MAC_ONLY_ENCRYPTED_PREFIX = bytes.fromhex(
    "8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69")
ENCRYPTED = re.compile(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
_DOTENV_META = "sops_"


@dataclass(frozen=True)
class Leaf:
    """One value of the file: `keys` are its mapping keys (the AES-GCM additional data),
    `name` how a definition refers to it, `value` as written (ENC[...] or plain)."""

    keys: tuple[str, ...]
    name: str
    value: Any


@dataclass(frozen=True)
class Stanza:
    """One recipient of the data key: `kind` age or pgp, `recipient` the age public key or
    the PGP fingerprint, `enc` the data key encrypted to it (ASCII armour)."""

    kind: str
    recipient: str
    enc: str


@dataclass(frozen=True)
class Rules:
    """Which values are encrypted (the metadata's suffix and regex settings)."""

    unencrypted_suffix: str = ""
    encrypted_suffix: str = ""
    unencrypted_regex: str = ""
    encrypted_regex: str = ""
    by_comment: bool = False  # *_comment_regex: comments decide; syncer reads ENC[...] instead
    mac_only_encrypted: bool = False

    def encrypts(self, keys: tuple[str, ...], value: Any) -> bool:
        """Whether the value at `keys` was encrypted (SOPS's shouldBeEncrypted, without
        comments: where comment rules apply, an ENC[...] value is taken as encrypted)."""
        if self.by_comment:
            return isinstance(value, str) and bool(ENCRYPTED.match(value))
        encrypted = True
        if self.unencrypted_suffix and any(k.endswith(self.unencrypted_suffix) for k in keys):
            encrypted = False
        if self.encrypted_suffix:
            encrypted = any(k.endswith(self.encrypted_suffix) for k in keys)
        if self.unencrypted_regex and any(re.search(self.unencrypted_regex, k) for k in keys):
            encrypted = False
        if self.encrypted_regex:
            encrypted = any(re.search(self.encrypted_regex, k) for k in keys)
        return encrypted


@dataclass(frozen=True)
class SopsDocument:
    """A parsed SOPS file: its values, recipients, MAC and rules; nothing decrypted."""

    path: str
    leaves: tuple[Leaf, ...]
    stanzas: tuple[Stanza, ...]
    mac: str
    lastmodified: str
    rules: Rules

    def recipients(self) -> str:
        """Who can open the file, as an error message names them."""
        parts = [f"{s.kind} {s.recipient}" for s in self.stanzas]
        return ", ".join(parts) or "no age or PGP recipients"


def file_format(path: str) -> str:
    """yaml, json or dotenv, from the file name (as SOPS decides)."""
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith(".env") or name.startswith(".env"):
        return "dotenv"
    return "yaml"


def parse_sops(path: str, data: bytes) -> SopsDocument:
    """Read a SOPS file (by its name's format); a file that is not one is a SecretError
    naming it (never quoting its content)."""
    fmt = file_format(path)
    tree = _dotenv(path, data) if fmt == "dotenv" else _structured(path, data, fmt)
    meta = tree.pop(METADATA_KEY, None) if fmt != "dotenv" else _dotenv_metadata(tree)
    if not isinstance(meta, Mapping):
        raise SecretError(f"{path}: not a SOPS file (no 'sops' metadata)")
    return SopsDocument(path, tuple(_leaves(tree, (), ())), _stanzas(path, meta),
                        str(meta.get("mac") or ""), _rfc3339(meta.get("lastmodified")), _rules(meta))


def _structured(path: str, data: bytes, fmt: str) -> dict[str, Any]:
    if fmt == "json":
        try:
            doc = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise SecretError(f"{path}: not valid JSON{where}") from None
    else:
        from syncer.stages.load import parse

        source, problems = parse(path, data)
        if problems or source is None:
            raise SecretError(str(problems[0]) if problems else f"{path}: cannot be read") from None
        if len(source.docs) != 1:
            raise SecretError(f"{path}: expected one YAML document, found {len(source.docs)}")
        doc = source.docs[0]
    if not isinstance(doc, dict):
        raise SecretError(f"{path}: a SOPS file must hold a mapping at the top")
    return dict(doc)


def _dotenv(path: str, data: bytes) -> dict[str, Any]:
    """SOPS's dotenv store: `KEY=value` split at the first '=', nothing trimmed, `\\n` in a
    value is a newline, `#` lines are comments (not values)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{path}: file is not valid UTF-8") from None
    out: dict[str, Any] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise SecretError(f"{path}:{number}:1: expected KEY=value")
        out[key] = value.replace("\\n", "\n")
    return out


def _dotenv_metadata(tree: dict[str, Any]) -> dict[str, Any] | None:
    """The `sops_*` lines taken out of `tree` and unflattened (`__map_K`, `__list_N__`)."""
    flat = {k: tree.pop(k) for k in [k for k in tree if k.startswith(_DOTENV_META)]}
    if not flat:
        return None
    meta: dict[str, Any] = {}
    for key, value in flat.items():
        _put(meta, re.split(r"__(?:map|list)_", key[len(_DOTENV_META):]), value)
    unflattened: dict[str, Any] = _lists(meta)
    return unflattened


def _put(node: dict[str, Any], steps: list[str], value: Any) -> None:
    for step in steps[:-1]:
        node = node.setdefault(step, {})
    node[steps[-1]] = value


def _lists(node: Any) -> Any:
    """Mappings whose keys are all indices become lists (the unflattened `__list_N__`)."""
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


def _leaves(node: Any, keys: tuple[str, ...], names: tuple[str, ...]) -> Iterator[Leaf]:
    """Every non-null value in document order (SOPS's walk), with its keys and its name."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _leaves(v, (*keys, str(k)), (*names, str(k).strip()))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, keys, (*names, str(i)))
    elif node is not None:
        yield Leaf(keys, ".".join(names), node)


def _stanzas(path: str, meta: Mapping[str, Any]) -> tuple[Stanza, ...]:
    groups = meta.get("key_groups")
    if isinstance(groups, list) and len(groups) > 1:
        raise SecretError(f"{path}: SOPS key groups (Shamir secret sharing) are not supported")
    source = groups[0] if isinstance(groups, list) and groups else meta
    found = [Stanza("age", str(a.get("recipient", "")), str(a.get("enc", "")))
             for a in source.get("age") or () if isinstance(a, Mapping)]
    found += [Stanza("pgp", str(p.get("fp", "")), str(p.get("enc", "")))
              for p in source.get("pgp") or () if isinstance(p, Mapping)]
    return tuple(found)


def _rules(meta: Mapping[str, Any]) -> Rules:
    def text(key: str) -> str:
        return str(meta.get(key) or "")

    return Rules(text("unencrypted_suffix"), text("encrypted_suffix"), text("unencrypted_regex"),
                 text("encrypted_regex"),
                 bool(meta.get("unencrypted_comment_regex") or meta.get("encrypted_comment_regex")),
                 str(meta.get("mac_only_encrypted", "")).lower() == "true")


def _rfc3339(value: Any) -> str:
    """`lastmodified` as SOPS formats it (Go's time.RFC3339): the MAC's additional data."""
    text = str(value or "")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    if when.tzinfo is None:
        return text
    when = when.replace(microsecond=0)
    if when.utcoffset() == UTC.utcoffset(None):
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return when.isoformat()


def go_text(value: Any) -> bytes:
    """A value's bytes as SOPS hashes them into the MAC (its ToBytes)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, float):
        return float_text(value).encode()
    return str(value).encode("utf-8")


def float_text(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits, never an exponent."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def as_secret(value: Any) -> str:
    """A value as a secret's text: booleans lower-case, numbers as written, bytes as UTF-8."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return float_text(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
