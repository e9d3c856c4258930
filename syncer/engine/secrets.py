"""Where secret values come from, and the one redactor built from exactly those a project uses.

Values come from `--secrets-file`, the SOPS files syncer.yaml lists (`secrets: {files: [...]}`,
decrypted in memory by adapters/sops.py) and the environment variables the operator allowed
in syncer.yaml (`secrets: {env: [NAME, PREFIX_*]}`): whoever can push to the repository must
not be able to copy syncer's own environment (its `SYNCER_*` variables, a cloud credential)
into a container, so nothing else of the environment resolves. A project references some of them
by name (`{secret: NAME}` in params, webhook and git-hook secrets, literal passwords where
allowed). Only those referenced values are masked: masking every environment variable
turned `on local` into `on ***` in deployment logs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syncer.core.errors import SecretError
from syncer.core.model import Project
from syncer.core.redact import Redactor
from syncer.stages.render import literal_secrets, secret_references
from syncer.stages.secretenv import OWN_PREFIX, env_allowed
from syncer.stages.tree import DirTree, Tree, UnsafePath

KEY_FILE = "secret.key"  # this state dir's key: published when the server has none (serverkey.py)
GIT_HOOK_ENV = "SYNCER_GIT_WEBHOOK_SECRET"
_DOTENV = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$")


def secret_key(state: Path) -> bytes:
    """This state directory's key, made once: what serverkey.py publishes when the project's
    server has none yet (the server's key, once there, is the one every state dir uses).

    Several processes may make it at once (the first plan of a CI job's parallel steps):
    each writes its candidate to a private temporary file and links it into place, which
    only one link can do; the others read back the winner's key, always whole."""
    path = state / KEY_FILE
    try:
        key = path.read_bytes()
        if key:
            return key
    except FileNotFoundError:
        pass
    key = os.urandom(32)  # what secrets.token_bytes returns; its `random` import costs every command
    tmp = state / f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            key = path.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    return key


def read_secrets(secrets_file: Path | None, allowed: tuple[str, ...] = ()) -> dict[str, str]:
    """Secrets from the secrets file, overridden by the environment variables `allowed`
    names (never syncer's own `SYNCER_*`)."""
    found: dict[str, str] = {}
    if secrets_file is not None:
        found.update((k, v) for k, v in parse_secrets_file(secrets_file).items() if not k.startswith(OWN_PREFIX))
    found.update((k, v) for k, v in os.environ.items() if env_allowed(k, allowed))
    return found


def parse_secrets_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (dotenv) or a YAML mapping; errors never quote a value."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read secrets file {path}: {exc.__class__.__name__}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not all(_DOTENV.match(ln) for ln in lines):
        return _yaml_secrets(path, text)
    out = {}
    for ln in lines:
        m = _DOTENV.match(ln)
        assert m is not None
        value = m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[m.group(1)] = value
    return out


def _yaml_secrets(path: Path, text: str) -> dict[str, str]:
    from syncer.stages.load import parse

    source, problems = parse(str(path), text.encode("utf-8"))
    if problems or source is None or len(source.docs) != 1 or not isinstance(source.docs[0], dict):
        where = f" at line {problems[0].line}" if problems else ""
        raise SecretError(f"secrets file {path}: expected NAME=value lines or a YAML mapping{where}")
    return {str(k): "" if v is None else str(v) for k, v in source.docs[0].items()}


def with_literals(available: Mapping[str, str], project: Project) -> dict[str, str]:
    """Every secret value a render of this project may use."""
    out = dict(available)
    out.update(literal_secrets(project))
    return out


def named(available: Mapping[str, str], ref: Any) -> str | None:
    """The value of a `{env: NAME}` (environment) or `{secret: NAME}` reference in syncer.yaml."""
    if not isinstance(ref, Mapping) or len(ref) != 1:
        return None
    (kind, name), = ref.items()
    return (os.environ if kind == "env" else available).get(str(name))


def git_hook_secret(available: Mapping[str, str], project: Project) -> str | None:
    """The secret incoming git webhooks are verified with: `api.git_webhook_secret` in
    syncer.yaml, else the SYNCER_GIT_WEBHOOK_SECRET environment variable."""
    api = project.config.raw.get("api")
    ref = api.get("git_webhook_secret") if isinstance(api, Mapping) else None
    configured = named(available, ref) if ref is not None else None
    return configured or os.environ.get(GIT_HOOK_ENV) or None


def sensitive_values(available: Mapping[str, str], project: Project) -> list[str]:
    """Exactly the secret values this project references: its `{secret: NAME}` params,
    literal passwords, webhook signing secrets and the git-hook secret."""
    values = [available.get(name) for name in secret_references(project)]
    values += list(literal_secrets(project).values())
    values += [named(available, t.secret) for t in project.config.webhooks]
    values.append(git_hook_secret(available, project))
    return [v for v in values if v]


def redactor(available: Mapping[str, str], project: Project) -> Redactor:
    """The project's redactor: masks exactly its referenced secret values."""
    return Redactor.of(sensitive_values(available, project))


# --- SOPS files in git (`secrets: {files: [...]}`) -------------------------------------
# Decrypted values live in this process only, keyed by the encrypted bytes' hash, so that
# a plan's secrets and its redactor decrypt (and run gpg) once. Never written anywhere.
_DECRYPTED: dict[str, dict[str, str]] = {}


def sops_files(project: Project) -> list[str]:
    """The SOPS files syncer.yaml lists (repo-relative), in order."""
    raw = project.config.raw.get("secrets")
    files = raw.get("files") if isinstance(raw, Mapping) else None
    return [str(f) for f in files] if isinstance(files, list) else []


def sops_secrets(tree: Tree, project: Project) -> dict[str, dict[str, str]]:
    """Each listed SOPS file's values by name, read through `tree` (the work tree, or the
    commit of `plan --ref`) and decrypted in memory."""
    out: dict[str, dict[str, str]] = {}
    for path in sops_files(project):
        data = _read_inside(tree, path)
        digest = hashlib.sha256(path.encode() + b"\0" + data).hexdigest()
        if digest not in _DECRYPTED:
            # pyrage and cryptography are imported only by projects that use SOPS
            from syncer.adapters import sops

            _DECRYPTED[digest] = sops.decrypt(path, data)
        out[path] = _DECRYPTED[digest]
    return out


def _read_inside(tree: Tree, path: str) -> bytes:
    if path.startswith("/") or ".." in path.split("/"):
        raise SecretError(f"{path}: SOPS files must be inside the repository")
    if isinstance(tree, DirTree):  # a symlink must not lead out of the repository
        root = tree.root.resolve()
        if not (root / path).resolve().is_relative_to(root):
            raise SecretError(f"{path}: the SOPS file leads outside the repository")
    try:
        data = tree.read(path)
    except UnsafePath as exc:  # a link out of the repository, a FIFO, a huge file
        raise SecretError(f"{path}: the SOPS file leads outside the repository" if "outside" in str(exc)
                          else str(exc)) from None
    if data is None:
        raise SecretError(f"{path}: no such SOPS file in the repository")
    return data


def with_sops(available: Mapping[str, str], files: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """SOPS values under `available` (the secrets file and the environment win, so that an
    operator can override a value from git); a later file wins over an earlier one."""
    out: dict[str, str] = {}
    for values in files.values():
        out.update(values)
    out.update(available)
    return out
