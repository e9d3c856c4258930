"""The facade every shell calls: find the project, load it, render, observe, plan.

The CLI, the watcher and the HTTP server all come through here, so that a plan is
computed one way whether it was asked for from a shell, a file change or an API call.
"""

from __future__ import annotations

import os
import re
import secrets as pysecrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from syncer.errors import SecretError
from syncer.load import DirTree, Tree, find_root
from syncer.model import Desired, Observed, Plan, Project
from syncer.observe import EngineFactory, observe
from syncer.plan import Known, plan
from syncer.render import literal_secrets, render
from syncer.validate import build_project

STATE_DIR = ".syncer"
KEY_FILE = "secret.key"


@dataclass(frozen=True)
class Context:
    """Where a command finds its project, its store and its secrets."""

    repo: Path | None = None
    state_dir: Path | None = None
    secrets_file: Path | None = None
    ref: str | None = None

    def root(self) -> Path:
        """The project root: --repo, or the nearest directory upwards holding syncer.yaml."""
        return find_root(self.repo or Path.cwd())

    def state(self, root: Path) -> Path:
        """The state directory (created on first use)."""
        path = self.state_dir or root / STATE_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path


def now_iso() -> str:
    """The current UTC time as the plan and the store write it."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _in_git(root: Path) -> bool:
    return any((p / ".git").exists() for p in (root, *root.parents))


def load(ctx: Context) -> Project:
    """The validated project at the work tree, or at `ctx.ref` when given."""
    root = ctx.root()
    tree: Tree
    if ctx.ref is not None:
        from syncer import gitsource  # imported only where git is used

        git_tree = gitsource.tree_at(root, ctx.ref)
        tree, commit, dirty = git_tree, git_tree.sha, False
    else:
        tree, commit, dirty = DirTree(root), None, False
        if _in_git(root):
            from syncer import gitsource

            commit, dirty = gitsource.head(root)
    return build_project(tree, str(root), commit=commit, dirty=dirty)


def secret_key(state: Path) -> bytes:
    """The key that turns secrets into keyed hashes; made once per state directory."""
    path = state / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = pysecrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key


def read_secrets(ctx: Context) -> dict[str, str]:
    """Secrets from --secrets-file, overridden by the environment."""
    found: dict[str, str] = {}
    if ctx.secrets_file is not None:
        found.update(parse_secrets_file(ctx.secrets_file))
    found.update(os.environ)
    return found


_DOTENV = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*?)\s*$")


def parse_secrets_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (dotenv) or a YAML mapping; errors never quote a value."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"cannot read secrets file {path}: {exc.__class__.__name__}") from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if all(_DOTENV.match(ln) for ln in lines):
        out = {}
        for ln in lines:
            m = _DOTENV.match(ln)
            assert m is not None
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out[m.group(1)] = value
        return out
    return _yaml_secrets(path, text)


def _yaml_secrets(path: Path, text: str) -> dict[str, str]:
    from syncer.load import parse

    source, problems = parse(str(path), text.encode("utf-8"))
    if problems or source is None or len(source.docs) != 1 or not isinstance(source.docs[0], dict):
        where = f" at line {problems[0].line}" if problems else ""
        raise SecretError(f"secrets file {path}: expected NAME=value lines or a YAML mapping{where}")
    return {str(k): "" if v is None else str(v) for k, v in source.docs[0].items()}


def desired_state(ctx: Context, project: Project, *, pins: Mapping[str, Mapping[str, object]] | None = None) -> Desired:
    """Render the project with this context's secrets."""
    secrets = read_secrets(ctx)
    secrets.update(literal_secrets(project))
    key = secret_key(ctx.state(Path(project.root)))
    return render(project, secrets=secrets, secret_key=key, pins=pins)


def compute_plan(ctx: Context, project: Project, *, engines: EngineFactory | None = None,
                 known: Known | None = None) -> tuple[Plan, Desired, Observed]:
    """Render, observe every server once, and diff."""
    desired = desired_state(ctx, project)
    kw = {"engines": engines} if engines is not None else {}
    observed = observe(project.config.name, project.config.servers, desired, **kw)
    result = plan(desired, observed, prune=project.config.prune, created_at=now_iso(),
                  known=known, dirty=project.dirty)
    return result, desired, observed
