"""The bytes of the repository files a project's specs read (`files[].source`, `env_file`),
through the same Tree the project was loaded from (the work tree, or the commit of
`--ref`), and the located errors of syncer.yaml's networks and of a spec's external volumes
(and of jobs a Swarm manager cannot run). Render stays pure: it gets
the bytes from here.

Checked on every read, not only at validation: a cached project is not validated again,
and a file may have gone or turned into a symlink leading out since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from syncer.core.errors import Diagnostic, InvalidProject, SecretError
from syncer.core.model import Desired, Located, Observed, Project
from syncer.stages import networks, volumes
from syncer.stages.files import sources, unsafe
from syncer.stages.swarm_fields import fields_unsupported, jobs_unsupported, start_interval_unsupported
from syncer.stages.tree import PROJECT_FILE, DirTree, Tree


def tree_of(root: Path, ref: str | None) -> Tree:
    """The files of the work tree, or of the commit `ref` names."""
    if ref is None:
        return DirTree(root)
    from syncer.adapters import git as gitsource  # imported only where git is used

    return gitsource.tree_at(root, ref)


def read_all(project: Project, ref: str | None) -> dict[str, bytes]:
    """Repo path → bytes of every file the specs read; InvalidProject (located) when one is
    missing, outside the repository, or a symlink leading out."""
    used = sources(project)
    if not used:
        return {}
    tree = tree_of(Path(project.root), ref)
    found: dict[str, bytes] = {}
    problems: list[Diagnostic] = []
    for path, uses in sorted(used.items()):
        why = unsafe(path)
        data = None
        if why is None and not tree.inside(path):
            why = "leads outside the repository (a symlink); files must stay inside it"
        if why is None:
            data = tree.read(path)
            why = "file not found in the repository" if data is None else None
        if why is not None or data is None:
            problems.extend(_located(tree, uses, f"'{path}' {why}"))
        else:
            found[path] = data
    if problems:
        raise InvalidProject(problems)
    return found


def _located(tree: Tree, uses: Iterable[tuple[Located, tuple[object, ...]]], message: str) -> list[Diagnostic]:
    out = []
    for where, path in uses:
        line, col = _position(tree, where, path)
        out.append(Diagnostic(where.file, line, col, message))
    return out


def check_server_files(project: Project) -> None:
    """The `tls:` files server entries name, in the work tree (where a connection reads them):
    a missing one was found only when the server was reached, as if it were away."""
    tree, problems = DirTree(Path(project.root)), []
    for name, server in sorted(project.config.servers.items()):
        for key in ("ca", "cert", "key"):
            ref = getattr(server.tls, key, None)
            if ref is not None and ref.rel and (not tree.inside(ref.rel) or tree.read(ref.rel) is None):
                problems.extend(_located(tree, [(Located(PROJECT_FILE), ("servers", name, "tls", key))],
                                         f"tls.{key}: no such file in the repository (a path inside it,"
                                         " or {env: VAR})"))
    if problems:
        raise InvalidProject(problems)


def located_secrets(project: Project, ref: str | None, exc: SecretError) -> SecretError:
    """The error with each line's `file:line:column` (render knows the path, not the position)."""
    if not exc.located:
        return exc
    tree = tree_of(Path(project.root), ref)
    lines = [str(Diagnostic(where.file, *_position(tree, where, path), message)) for where, path, message in exc.located]
    return SecretError("\n".join(lines), exc.located)


def _position(tree: Tree, where: Located, path: tuple[object, ...]) -> tuple[int, int]:
    data = tree.read(where.file)
    from syncer.stages.load import locate, parse  # the YAML parser: only to place an error

    source = parse(where.file, data)[0] if data is not None else None
    return locate(source, where.doc, path) if source is not None else (0, 0)


def check_external(project: Project, desired: Desired, observed: Observed, ref: str | None) -> None:
    """A plan against a missing external network is a located error in syncer.yaml, not a
    failed create; one against a missing external volume is located at its volumes entry
    (Docker would make it empty on create: it is refused before any); so are a job, or a
    field no Swarm service has, on a Swarm server, and a healthcheck's start_interval on an
    engine that would drop it."""
    missing = networks.missing_external(desired, observed, project.config.networks)
    absent = volumes.missing(desired, observed)
    jobs = jobs_unsupported(desired, observed) if any(c.is_job for c in desired.containers) else []
    unsupported = fields_unsupported(desired, observed)
    old = start_interval_unsupported(desired, observed)
    if not missing and not absent and not jobs and not unsupported and not old:
        return
    tree = tree_of(Path(project.root), ref)
    problems = []
    for server, name in missing:
        line, col = _position(tree, Located(PROJECT_FILE), ("networks", name))
        problems.append(Diagnostic(PROJECT_FILE, line, col, f"network '{name}' is external and does not exist"
                                   f" on server '{server}' (create it, or drop `external: true`)"))
    def at_template(definition: str, message: str) -> Diagnostic:
        d = project.definition(definition)
        where = d.origin if d is not None else Located(PROJECT_FILE)
        return Diagnostic(where.file, *_position(tree, where, ("template",)), message)

    for server, definition, name in absent:
        where, path = _volume_entry(project, definition, name)
        problems.append(Diagnostic(where.file, *_position(tree, where, path), f"volume '{name}' is external and"
                                   f" does not exist on server '{server}' (create it, or drop `external: true`)"))
    for server, definition, api in jobs:  # a Swarm job is a ReplicatedJob service
        problems.append(at_template(definition, f"definition '{definition}' is a job, and server '{server}' is a"
                                    f" Swarm manager whose engine (API {api}) has no jobs: Swarm runs jobs from"
                                    " Docker 20.10 (API 1.41) on"))
    for server, definition, fields in unsupported:
        problems.append(at_template(definition, f"definition '{definition}' runs on Swarm server '{server}',"
                                    f" whose services have no {', '.join(fields)}: take them out of its spec"
                                    " (a profile may), or run it on a Docker server"))
    for server, definition, api in old:
        problems.append(at_template(definition, f"definition '{definition}' has a healthcheck with start_interval,"
                                    f" which server '{server}' (API {api}) would drop: it needs Docker 25"
                                    " (API 1.44) or later; take it out (a profile may) or upgrade the engine"))
    raise InvalidProject(problems)


def _volume_entry(project: Project, definition: str, name: str) -> tuple[Located, tuple[object, ...]]:
    """Where the `volumes` entry saying `name` is external is written: the definition's
    overrides, its profile in the template, or the template's spec (that order wins in
    render). Else its `template:` line."""
    d = project.definition(definition)
    if d is None:
        return Located(PROJECT_FILE), ()
    tpl = next((t for t in project.templates if (t.id, t.version) == (d.template, d.template_version or "")), None)
    places: list[tuple[Located, tuple[object, ...], object]] = [(d.origin, ("overrides",), d.overrides)]
    if tpl is not None:
        places += [(tpl.origin, ("profiles", d.profile), tpl.profiles.get(d.profile)),
                   (tpl.origin, ("spec",), tpl.spec)]
    for where, path, spec in places:
        entries = spec.get("volumes") if isinstance(spec, Mapping) else None
        for i, v in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(v, Mapping) and v.get("external") not in (None, False, "false") and v.get("name") == name:
                return where, (*path, "volumes", i)
    return d.origin, ("template",)
