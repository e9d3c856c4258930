"""Find the project, load it, render it, observe its servers and diff: the read side.

Everything here only reads: the store is consulted for revisions, rollback pins and
operator holds, but a plan, a status or a `plan --ref OLD` never changes it. What has
lapsed (a pin whose definition git changed since, a hold on a changed definition) is
dropped by the apply that acts on it (engine/revisions.forget_lapsed), under the apply lock.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from syncer.adapters import cache, gitcli
from syncer.adapters.lock import gone
from syncer.adapters.store import Store
from syncer.core import clock
from syncer.core.errors import Diagnostic, InvalidProject, SecretError, UsageError
from syncer.core.model import Desired, Observed, Plan, Project
from syncer.core.record import Record, record
from syncer.core.redact import Redactor
from syncer.engine import repofiles
from syncer.engine import secrets as S
from syncer.engine.revisions import held, pinned
from syncer.stages.networks import pools_of
from syncer.stages.interrupted import gate_again
from syncer.stages.plan import Known, plan
from syncer.stages.render import render
from syncer.stages.secretenv import allowed_env
from syncer.stages.tree import DirTree, Tree, UnsafePath, find_root, read_regular

if TYPE_CHECKING:  # docker is imported only by commands that talk to Docker
    from syncer.engine.observe import EngineFactory
    from syncer.stages.policy import Policy

STATE_DIR = ".syncer"
T = TypeVar("T")


@record
class Context(Record):
    """Where a command finds its project, its store and its secrets."""

    repo: Path | None = None
    state_dir: Path | None = None
    secrets_file: Path | None = None
    ref: str | None = None
    policy_file: Path | None = None  # the operator's policy, outside the repository

    def root(self) -> Path:
        """The project root: --repo, or the nearest directory upwards holding syncer.yaml."""
        return find_root(self.repo or Path.cwd())

    def state(self, root: Path) -> Path:
        """The state directory (created 0700 on first use, with a `.gitignore` of `*` so that
        a repository holding it is never dirty because of it, nor commits its key)."""
        path = self.state_dir or root / STATE_DIR
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            ignore = path / ".gitignore"
            if not ignore.exists():
                try:  # O_EXCL: several processes may start at once; one writes it, whole
                    fd = os.open(ignore, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    pass
                else:
                    with os.fdopen(fd, "w") as f:
                        f.write("# syncer's state: never committed\n*\n")
        except OSError as exc:  # a file where the directory should be, a read-only or full disk...
            why = "not a directory" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror
            raise UsageError(f"state directory {path}: {why or exc} (--state-dir)") from None
        return path


def now_iso() -> str:
    """The current UTC time as plans write it."""
    return clock.iso()


def _in_git(root: Path) -> bool:
    return any((p / ".git").exists() for p in (root, *root.parents))


def operator_policy(ctx: Context) -> tuple[Policy | None, bytes]:
    """The operator's policy (`--policy FILE` / SYNCER_POLICY) and the bytes it was read
    from (they key the cache: a project valid under one policy is not under another)."""
    if ctx.policy_file is None:
        return None, b""
    from syncer.stages.policy import operator_policy as parse_policy

    try:
        real = ctx.policy_file.resolve()  # the operator's own file: it may be a link anywhere
        data = read_regular(real.parent, real.name)
    except (OSError, UnsafePath) as exc:
        raise InvalidProject([Diagnostic(str(ctx.policy_file), 0, 0, f"cannot read the policy file ({exc})")]) from None
    if data is None:
        raise InvalidProject([Diagnostic(str(ctx.policy_file), 0, 0, "the policy file does not exist")])
    policy, problems = parse_policy(str(ctx.policy_file), data)
    if policy is None:
        raise InvalidProject(problems)
    return policy, data


def load(ctx: Context) -> Project:
    """The validated project at the work tree, or at `ctx.ref` when given."""
    root = ctx.root()
    policy, policy_bytes = operator_policy(ctx)
    if ctx.ref is not None:
        from syncer.adapters import git as gitsource  # imported only where git is used

        git_tree = gitsource.tree_at(root, ctx.ref)
        return _with_message(_build(git_tree, root, git_tree.sha, False, policy), root)
    state = ctx.state(root)  # first: its .gitignore keeps the work tree clean
    commit, dirty = None, False
    if _in_git(root):
        commit, dirty = gitcli.head(root)
    key = cache.repo_key(root, extra=policy_bytes)
    cached = cache.get(state, key)
    if cached is not None and cached.root == str(root) and cached.source == key:
        project = _with_message(replace(cached, commit=commit, dirty=dirty), root, cached)
        if project.commit == cached.commit:
            return project
    else:
        project = _with_message(replace(_build(DirTree(root), root, commit, dirty, policy), source=key), root)
    if not project.config.allow_literal_secrets:  # a literal password must not land in the state dir
        cache.put(state, key, project)  # with its commit's message: the next no-op runs no `git log`
    return project


def validated(ctx: Context) -> Project:
    """`load`, and the repository files the specs read: `syncer validate`, without secrets or Docker."""
    project = load(ctx)
    repofiles.read_all(project, ctx.ref)
    repofiles.check_server_files(project)
    return project


def fingerprint(ctx: Context) -> tuple[str, str | None, bool]:
    """What `load` of the work tree depends on (its YAML files, HEAD, dirty): a long-running
    server reloads only when this changed (a load of 10k definitions takes a second)."""
    root = ctx.root()
    commit, dirty = None, False
    if _in_git(root):
        commit, dirty = gitcli.head(root)
    return cache.repo_key(root), commit, dirty


def _build(tree: Tree, root: Path, commit: str | None, dirty: bool, policy: Policy | None) -> Project:
    from syncer.stages.validate import (
        build_project,  # jsonschema and the parser: only on a cache miss
    )

    return build_project(tree, str(root), commit=commit, dirty=dirty, policy=policy)


def _with_message(project: Project, root: Path, known: Project | None = None) -> Project:
    """The project with its commit's message: `known`'s when it was loaded at that commit
    (a commit's message never changes), else git's."""
    if not project.commit:
        return replace(project, commit_message="") if project.commit_message else project
    if known is not None and known.commit == project.commit and known.commit_message:
        return replace(project, commit_message=known.commit_message)
    return replace(project, commit_message=gitcli.commit_message(root, project.commit))


def read_secrets(ctx: Context, project: Project) -> dict[str, str]:
    """Secrets from --secrets-file, overridden by the environment variables the project's
    syncer.yaml allows (`secrets: {env: [...]}`)."""
    return S.read_secrets(ctx.secrets_file, allowed_env(project))


def secrets_for(ctx: Context, project: Project) -> dict[str, str]:
    """Every secret value a render of this project may use."""
    return S.with_literals(S.with_sops(read_secrets(ctx, project), sops_secrets(ctx, project)), project)


def redactor(ctx: Context, project: Project) -> Redactor:
    """Masks exactly the secret values this project references (nothing else)."""
    return S.redactor(S.with_sops(read_secrets(ctx, project), sops_secrets(ctx, project)), project)


def sops_secrets(ctx: Context, project: Project) -> dict[str, dict[str, str]]:
    """The values of the project's SOPS files, by file, from the tree the project was
    loaded from (the commit of `--ref`, else the work tree)."""
    if not S.sops_files(project):
        return {}
    root = Path(project.root)
    if ctx.ref is not None:
        from syncer.adapters import git as gitsource

        return S.sops_secrets(gitsource.tree_at(root, ctx.ref), project)
    return S.sops_secrets(DirTree(root), project)


def open_store(ctx: Context, project: Project) -> Store:
    """The project's store."""
    return Store(ctx.state(Path(project.root)))


def state_store(ctx: Context) -> Store:
    """The store of the project `ctx` finds, without loading (validating) the project."""
    return Store(ctx.state(ctx.root()))


@record
class Planned(Record):
    """A plan with what it was computed from, and the pins and holds that lapsed."""

    plan: Plan
    desired: Desired
    observed: Observed
    lapsed_pins: tuple[str, ...] = ()
    lapsed_holds: tuple[str, ...] = ()
    known: Known = field(default_factory=dict)  # the store's latest revision of each definition


def hash_key(ctx: Context, project: Project, engines: EngineFactory | None = None) -> bytes:
    """The key of the secrets' hashes: the same for every state dir of these servers."""
    from syncer.adapters.docker import Engine
    from syncer.engine.serverkey import project_key

    return project_key(ctx.state(Path(project.root)), project, engines=engines or Engine)


def desired_state(ctx: Context, project: Project, *, store: Store | None = None,
                  secrets: Mapping[str, str] | None = None, engines: EngineFactory | None = None) -> Desired:
    """Render the project with this context's secrets (and the store's rollback pins)."""
    values = secrets if secrets is not None else secrets_for(ctx, project)
    desired = rendered(ctx, project, values, hash_key(ctx, project, engines))
    return pinned(store, desired)[0] if store is not None else desired


_committed: tuple[Desired, str | None, Desired] | None = None  # the last hit with its commit: one object


def _with_commit(desired: Desired, commit: str | None) -> Desired:
    global _committed
    last = _committed
    if last is not None and last[0] is desired and last[1] == commit:
        return last[2]
    out = desired if desired.commit == commit else replace(desired, commit=commit)
    _committed = (desired, commit, out)
    return out


def rendered(ctx: Context, project: Project, secrets: Mapping[str, str], secret_key: bytes) -> Desired:
    """The project rendered, read back from the state dir when nothing it depends on changed
    (the YAML, the repo files the specs read, the secrets, their key): rendering a thousand
    definitions costs a plan more than its observation, and a self-heal re-plans twice."""
    files = repofiles.read_all(project, ctx.ref)
    key = None
    if project.source and not project.config.allow_literal_secrets:
        key = cache.render_key(project.source, secrets, secret_key, files)
        hit = cache.get_render(ctx.state(Path(project.root)), key)
        if hit is not None:
            return _with_commit(hit, project.commit)
    try:
        desired = render(project, secrets=secrets, secret_key=secret_key, files=files)
    except SecretError as exc:
        raise repofiles.located_secrets(project, ctx.ref, exc) from None
    if key is not None:
        cache.put_render(ctx.state(Path(project.root)), key, desired)
    return desired


def compute_plan(ctx: Context, project: Project, *, engines: EngineFactory | None = None,
                 store: Store | None = None, secrets: Mapping[str, str] | None = None,
                 ) -> tuple[Plan, Desired, Observed]:
    """Render, observe every server once, and diff (revisions numbered from the store).
    Reads the store; never writes it."""
    own = store is None
    store = store or open_store(ctx, project)
    try:
        p = planned(ctx, project, store, engines=engines, secrets=secrets)
    finally:
        if own:
            store.close()
    return p.plan, p.desired, p.observed


class Reuse:
    """For reads repeated every second (the API's status): the last plan, given again while
    everything it was computed from is the same — the same Project object; an equal desired
    state (`rendered` hands out the same object while its inputs are the same), observation,
    store revisions and holds. Docker is observed every time. A reused plan keeps its
    `created_at`: never hand one to an apply."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Project, tuple[object, ...], Any]] = {}

    def same(self, kind: str, project: Project, inputs: tuple[object, ...], compute: Callable[[], T]) -> T:
        """`compute()`, or the last `kind` of the same Project object when `inputs` are the
        same (or equal) as its (another project is not compared: that is a new value)."""
        last = self._last.get(kind)
        if last is not None and last[0] is project and all(
                a is b or a == b for a, b in zip(last[1], inputs, strict=True)):
            return last[2]  # type: ignore[no-any-return]
        value = compute()
        self._last[kind] = (project, inputs, value)
        return value


def planned(ctx: Context, project: Project, store: Store, *, engines: EngineFactory | None = None,
            secrets: Mapping[str, str] | None = None, reuse: Reuse | None = None,
            only: str | None = None, ready: Callable[[], object] | None = None,
            versions: bool = False, tags: bool = True,
            hold: Callable[[Desired, Known], Desired] | None = None) -> Planned:
    """`compute_plan`, also naming the pins and holds that lapsed (for the apply to drop).
    With `reuse` (reads only), what did not change since its last call is not computed again.
    With `only`, the plan and the observation are of that definition alone (the desired
    state stays whole: pins, holds and records are the project's). `ready` is waited for
    right before Docker is observed; `versions`: the engines' versions are observed too;
    `tags`: the registries are asked about `pull_policy: always` images (not for a self-heal);
    `hold`: watch's holds (engine/deploy.py), given the desired state and the known revisions."""
    from syncer.adapters.docker import Engine
    from syncer.engine.observe import observe

    values = secrets if secrets is not None else secrets_for(ctx, project)
    desired, lapsed_pins = pinned(store, rendered(ctx, project, values, hash_key(ctx, project, engines)))
    keep, lapsed_holds = held(store, desired)
    if ready is not None:
        ready()
    observed = observe(project.config.name, project.config.servers, desired, engines=engines or Engine,
                       definition=only, versions=versions, tags=tags)
    repofiles.check_external(project, desired, observed, ctx.ref)
    known, finished = store.latest_revisions(), store.finished()
    ran = store.succeeded() if any(c.is_job for c in desired.containers) else {}
    if hold is not None:
        desired = hold(desired, known)

    def compute() -> Plan:
        return plan(desired, observed, prune=project.config.prune, created_at=now_iso(), known=known,
                    dirty=project.dirty, held=keep, declared=project.config.networks, only=only,
                    finished=finished, internal=project.config.internal_networks,
                    ipam=pools_of(project.config.raw.get("networks")), ran=ran)

    result = reuse.same("plan", project, (desired, observed, known, keep, only, ran), compute) if reuse else compute()
    result = gate_again(result, desired, observed, _interrupted(store))  # (before watch's holds mark it)
    return Planned(result, desired, observed, tuple(lapsed_pins), tuple(lapsed_holds), known)


def _interrupted(store: Store) -> dict[str, int]:
    """The definitions whose latest deployment did not end and never will (stages/interrupted.py)
    → its revision: marked interrupted, or left running by an apply whose process is gone (a
    plan or a status before the next apply, which marks it)."""
    return {name: revision for name, (revision, pid) in store.unended().items() if pid is None or gone(pid)}
