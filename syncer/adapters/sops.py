"""Decrypt SOPS files in memory: the data key from an age identity (pyrage) or from GnuPG
(the `gpg` binary), each value with AES-256-GCM (cryptography), and the MAC verified.

Nothing decrypted is written anywhere: no temp file, no cache; `gpg` gets the armoured
data key on stdin and hands the key back on stdout. Errors name the file and its
recipients, never a value or a key. Identities, as SOPS looks for them:
- age: `SOPS_AGE_KEY` (identity lines), `SOPS_AGE_KEY_FILE` (a file of
  `AGE-SECRET-KEY-1...` lines, `#` comments allowed), else `$XDG_CONFIG_HOME/sops/age/keys.txt`
  (`~/.config/sops/age/keys.txt`) when it exists;
- PGP: the user's GnuPG keyring (`GNUPGHOME` or ~/.gnupg).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyrage
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from syncer.core.errors import SecretError
from syncer.stages.sopsfile import (
    ENCRYPTED,
    MAC_ONLY_ENCRYPTED_PREFIX,
    SopsDocument,
    as_secret,
    go_text,
    parse_sops,
)

GPG_TIMEOUT = 30.0
_TAMPERED = "was modified after it was encrypted (or is damaged): its MAC does not match"


def decrypt(path: str, data: bytes, *, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values of the SOPS file `path` (bytes `data`) by name (`a.b`, `a.0`), decrypted
    with the identities `env` (default: the process environment) points at."""
    env = os.environ if env is None else env
    doc = parse_sops(path, data)
    key = data_key(doc, env)
    values = _values(doc, key)
    return {name: as_secret(v) for name, v in values.items()}


def data_key(doc: SopsDocument, env: Mapping[str, str]) -> bytes:
    """The file's 32-byte data key, from the first recipient an identity here opens."""
    problems: list[str] = []
    if any(s.kind == "age" for s in doc.stanzas):
        identities, where = age_identities(env)
        if not identities:
            problems.append("no age identity (set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)")
        for stanza in (s for s in doc.stanzas if s.kind == "age" and identities):
            key = age_open(stanza.enc, identities)
            if key is not None:
                return _checked(doc, key)
        if identities:
            problems.append(f"no identity in {where} matches")
    for stanza in (s for s in doc.stanzas if s.kind == "pgp"):
        key, problem = _gpg_open(stanza.enc, env)
        if key is not None:
            return _checked(doc, key)
        if problem not in problems:
            problems.append(problem)
    why = "; ".join(problems) or "it has no age or PGP recipient syncer can use"
    raise SecretError(f"{doc.path}: cannot decrypt the SOPS data key for its recipients "
                      f"({doc.recipients()}): {why}")


def _checked(doc: SopsDocument, key: bytes) -> bytes:
    if len(key) != 32:
        raise SecretError(f"{doc.path}: the SOPS data key is {len(key)} bytes, expected 32")
    return key


def age_identities(env: Mapping[str, str]) -> tuple[list[Any], str]:
    """Every age identity configured, and where they came from (for messages)."""
    found: list[Any] = []
    where: list[str] = []
    if env.get("SOPS_AGE_KEY"):
        found += _identity_lines(env["SOPS_AGE_KEY"], "SOPS_AGE_KEY")
        where.append("SOPS_AGE_KEY")
    path = env.get("SOPS_AGE_KEY_FILE")
    if not path:
        config = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
        default = Path(config) / "sops" / "age" / "keys.txt"
        path = str(default) if default.is_file() else ""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"cannot read the age key file {path}: {exc.__class__.__name__}") from None
        found += _identity_lines(text, path)
        where.append(path)
    return found, " and ".join(where)


def _identity_lines(text: str, origin: str) -> list[Any]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:  # the line is never quoted: it may be a key
            raise SecretError(f"{origin}:{number}: not an age identity (AGE-SECRET-KEY-1...)") from None
    return out


def age_open(armored: str, identities: list[Any]) -> bytes | None:
    """The data key in one age stanza, or None when no identity opens it."""
    try:
        return bytes(pyrage.decrypt(armored.encode("utf-8"), identities))
    except pyrage.DecryptError:  # no identity matches (or a damaged stanza)
        return None


def _gpg_open(armored: str, env: Mapping[str, str]) -> tuple[bytes | None, str]:
    """The data key of one PGP stanza, via `gpg --batch --decrypt` on stdin."""
    args = [env.get("SOPS_GPG_EXEC") or "gpg", "--batch", "--quiet", "--no-tty", "--decrypt"]
    try:
        done = subprocess.run(args, input=armored.encode("utf-8"), capture_output=True,
                              timeout=GPG_TIMEOUT, env=dict(env), check=False)
    except FileNotFoundError:
        return None, "gpg is not installed (GnuPG is needed for PGP recipients)"
    except subprocess.TimeoutExpired:
        return None, f"gpg did not answer within {GPG_TIMEOUT:.0f}s"
    if done.returncode != 0:
        return None, "no secret key for it in the GnuPG keyring"
    return done.stdout, ""


def _values(doc: SopsDocument, key: bytes) -> dict[str, Any]:
    """Every value decrypted, the MAC computed over them in order and checked."""
    mac = hashlib.sha512()
    if doc.rules.mac_only_encrypted:
        mac.update(MAC_ONLY_ENCRYPTED_PREFIX)
    out: dict[str, Any] = {}
    for leaf in doc.leaves:
        encrypted = doc.rules.encrypts(leaf.keys, leaf.value)
        value = leaf.value
        if encrypted:
            if not isinstance(value, str):
                raise SecretError(f"{doc.path}: value '{leaf.name}' should be encrypted but is not")
            value = decrypt_value(doc.path, leaf.name, value, key, ":".join(leaf.keys) + ":")
        if encrypted or not doc.rules.mac_only_encrypted:
            mac.update(go_text(value))
        out[leaf.name] = value
    _verify_mac(doc, key, mac.hexdigest().upper())
    return out


def decrypt_value(path: str, name: str, text: str, key: bytes, additional: str) -> Any:
    """One `ENC[AES256_GCM,...]` value, typed by its `type:`; "" stays ""."""
    if text == "":
        return ""
    m = ENCRYPTED.match(text)
    if m is None:
        raise SecretError(f"{path}: value '{name}' should be encrypted but is not")
    try:
        data, iv, tag = (base64.b64decode(m.group(i), validate=True) for i in (1, 2, 3))
        plain = AESGCM(key).decrypt(iv, data + tag, additional.encode("utf-8"))
    except (InvalidTag, ValueError, binascii.Error):
        raise SecretError(f"{path}: value '{name}' cannot be decrypted: the file was modified after "
                          "it was encrypted, or is damaged") from None
    return _typed(path, name, plain, m.group(4))


def _typed(path: str, name: str, plain: bytes, kind: str) -> Any:
    text = plain.decode("utf-8", errors="replace")
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            return {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}[text.lower()]
    except (ValueError, KeyError):
        raise SecretError(f"{path}: value '{name}' is not a valid {kind}") from None
    if kind == "bytes":
        return plain
    if kind in ("str", "time", "comment"):
        return text
    raise SecretError(f"{path}: value '{name}' has an unknown SOPS type '{kind}'")


def _verify_mac(doc: SopsDocument, key: bytes, computed: str) -> None:
    if not doc.mac:
        raise SecretError(f"{doc.path}: the SOPS file has no MAC, so it cannot be trusted")
    stored = decrypt_value(doc.path, "sops.mac", doc.mac, key, doc.lastmodified)
    if not isinstance(stored, str) or not hmac.compare_digest(stored.encode(), computed.encode()):
        raise SecretError(f"{doc.path}: the SOPS file {_TAMPERED}")
