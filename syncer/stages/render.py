"""Project + secrets → Desired: one rendered ContainerSpec per replica, per server.

Pure: no Docker, no clock, no files. Secrets arrive as a mapping and leave as keyed
references (labels.secret_ref), so that specs, plans and the store never hold a value.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from syncer.core.errors import SecretError
from syncer.core.labels import SECRET_REF_RE, canonical_json, container_name, secret_ref, shared_with, spec_hash
from syncer.core.model import ContainerSpec, Definition, Desired, Project, Server, Template
from syncer.stages import expr, networks, shortforms
from syncer.stages import files as repo_files
from syncer.stages.secretenv import OWN_PREFIX, allowed_env, env_allowed
from syncer.stages.swarm_fields import constraint_problem



class _Drop:
    """Marks a value that named an optional input given no value: its entry goes away."""


DROP = _Drop()


def render(project: Project, *, secrets: Mapping[str, str], secret_key: bytes,
           pins: Mapping[str, Mapping[str, Any]] | None = None, files: Mapping[str, bytes] | None = None) -> Desired:
    """Every container the project wants. `pins` maps a definition to a spec to use instead;
    `files` holds the bytes of the repo files the specs read (see stages.files.sources)."""
    templates = {(t.id, t.version): t for t in project.templates}
    containers: list[ContainerSpec] = []
    missing: list[SecretError] = []
    env = allowed_env(project)  # (a secret not set: its message says whether syncer.yaml allows the variable)
    for d in project.definitions:
        tpl = templates[(d.template, d.template_version or "")]
        server = project.config.servers[d.server]
        try:
            pinned = (pins or {}).get(d.name)
            specs = [dict(pinned)] if pinned is not None else None
            containers.extend(render_definition(project.config.name, d, tpl, server, secrets, secret_key, specs,
                                                read=files or {}, declared=project.config.networks,
                                                internal=project.config.internal_networks, env=env))
        except SecretError as exc:
            missing.append(exc)
    if missing:
        raise SecretError("\n".join(str(e) for e in missing), tuple(at for e in missing for at in e.located))
    return Desired(project.config.name, tuple(containers), tuple(d.name for d in project.definitions), project.commit)


def render_definition(project: str, d: Definition, tpl: Template, server: Server, secrets: Mapping[str, str],
                      secret_key: bytes, pinned: list[dict[str, Any]] | None = None, *,
                      read: Mapping[str, bytes] | None = None,
                      declared: networks.Declared | None = None, internal: Iterable[str] = (),
                      env: tuple[str, ...] = ()) -> list[ContainerSpec]:
    """The containers of one definition (one per replica); `env`: the environment variables
    syncer.yaml allows as secrets (`secrets: {env: [...]}`), for the message of one not set."""
    payload: dict[str, bytes] = {}
    profile = dict(tpl.profiles.get(d.profile, {}))
    from_profile = "replicas" in profile or d.replicas is not None
    replicas = d.replicas if d.replicas is not None else int(profile.pop("replicas", 1))
    profile.pop("replicas", None)
    if pinned is not None:
        base = pinned[0]
    else:
        values = _inputs(d, tpl, secrets, secret_key, env)
        ctx = {"definition.name": d.name, "server.name": server.name,
               "server.environment": server.environment, "profile": d.profile}
        ctx.update({f"inputs.{k}": v for k, v in values.items()})
        merged = deep_merge(_mappings(tpl.spec), _mappings(profile))
        base = _subst(merged, ctx)
        if d.overrides:
            base = deep_merge(base, _subst(_mappings(d.overrides), ctx))
        try:
            base = normalise(base)
            for constraint in (base.get("placement") or {}).get("constraints") or []:  # (as substituted)
                if problem := constraint_problem(str(constraint)):
                    raise shortforms.SpecError(f"placement.constraints: {problem}")
            for field in ("labels", "service_labels"):  # (never revealed: syncer and everyone read them back)
                for name, value in (base.get(field) or {}).items():
                    if SECRET_REF_RE.search(str(value)):
                        raise shortforms.SpecError(f"{field}.{name}: a secret cannot be a label: labels are shown"
                                                   " to whoever lists containers (put it in env or a file)")
        except shortforms.SpecError as exc:
            raise shortforms.SpecError(f"{d.origin.file}: definition '{d.name}': {exc}") from None
        try:
            base, payload = repo_files.attach(base, read=read or {}, secrets=secrets, key=secret_key,
                                              where=f"{d.origin.file}: definition '{d.name}'")
        except SecretError as exc:  # a `files: [{secret: NAME}]` secret not set: where the entry is written
            raise _file_secret_located(d, tpl, base, secrets, str(exc)) from None
        if base.get("project_network") is False and not base.get("networks") and not base.get("network_mode"):
            raise shortforms.SpecError(f"{d.origin.file}: definition '{d.name}': project_network: false leaves it"
                                       " on no network: list its `networks` (or set `network_mode`)")
        base = networks.normalise(base, project=project, definition=d.name, declared=declared or {},
                                  internal=internal)
        if tpl.kind == "job":
            base["kind"] = "job"  # services carry no key: their spec hashes stay what they were
    # `replicas` may also come from the spec: the definition's, then the profile's win
    in_spec = base.pop("replicas", None)
    if in_spec is not None and (pinned is not None or not from_profile):
        replicas = int(in_spec)
    if base.get("mode") == "global":  # one task per node on Swarm; one container elsewhere, as under Compose
        if pinned is None and (from_profile or in_spec is not None):  # (a rollback: as it ran)
            raise shortforms.SpecError(f"{d.origin.file}: definition '{d.name}': mode: global runs one task on each"
                                       " node: replicas cannot go with it (as `docker stack deploy` refuses)")
        replicas = 1
    depends = d.depends_on
    owner = shared_with(base.get("network_mode"))
    if owner and owner not in depends:
        depends = (*depends, owner)  # the container whose network it shares must exist first
    if server.kind == "swarm":
        # one Swarm service per definition: Swarm makes the replicas, so their count is a
        # field of the service's spec (a change of it is an update, not new containers)
        spec = base if base.get("mode") == "global" else {**base, "replicas": replicas}
        return [ContainerSpec(project, d.server, d.name, 1, d.name, tpl.ref, spec, spec_hash(spec), depends, payload,
                              d.restarts_with)]
    out = []
    for replica in range(1, replicas + 1):
        name = container_name(d.name, replica)
        spec = _per_container(base, name)
        out.append(ContainerSpec(project, d.server, d.name, replica, name, tpl.ref, spec,
                                 spec_hash(spec), depends, payload, d.restarts_with))
    return out


_KEY_VALUE_FIELDS = ("env", "labels", "service_labels", "sysctls")


def _mappings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Compose's `["K=V"]` lists as mappings before merging, so that a profile's or an
    override's entries merge key by key with the template's whatever form each uses."""
    out = dict(spec)
    for key in _KEY_VALUE_FIELDS:
        if isinstance(out.get(key), list):
            out[key] = shortforms.key_values(out[key], key, drop_bare=key == "env")
    return out


def _inputs(d: Definition, tpl: Template, secrets: Mapping[str, str], key: bytes,
            env: tuple[str, ...] = ()) -> dict[str, Any]:
    props = tpl.inputs.get("properties", {})
    values = {k: p["default"] for k, p in props.items() if isinstance(p, dict) and "default" in p}
    problems: list[tuple[Any, tuple[Any, ...], str]] = []  # (where, path in it, message)
    for name, value in d.params.items():
        if isinstance(value, dict) and set(value) == {"secret"}:
            secret_name = value["secret"]
            at = ("params", name, "secret")
            if secret_name not in secrets:
                problems.append((d.origin, at, f"definition '{d.name}': {_unset(secret_name, env)}"))
                continue
            if not _validator(canonical_json(props.get(name, {}))).is_valid(secrets[secret_name]):
                problems.append((d.origin, at, f"definition '{d.name}': secret {secret_name} does not"
                                               f" satisfy the schema of input '{name}'"))
                continue
            values[name] = secret_ref(secret_name, secrets[secret_name], key)
        elif name in tpl.secret_inputs():
            # an allowed literal password: still never leaves as a value
            values[name] = secret_ref(f"literal.{d.name}.{name}", str(value), key)
        else:
            values[name] = value
    if problems:
        raise SecretError("\n".join(f"{where.file}: {message}" for where, _, message in problems), tuple(problems))
    return values


def _file_secret_located(d: Definition, tpl: Template, spec: Mapping[str, Any], secrets: Mapping[str, str],
                         message: str) -> SecretError:
    """The error of a files entry whose secret is not set, located at that entry: the
    definition's overrides, else its profile, else the template's spec (the first that
    writes it; a name made by substitution is found at none: the definition's top)."""
    unset = next((str(e["secret"]) for e in spec.get("files") or []
                  if isinstance(e, dict) and "secret" in e and str(e["secret"]) not in secrets), "")
    places = ((d.origin, ("overrides",), d.overrides), (tpl.origin, ("profiles", d.profile), tpl.profiles.get(d.profile)),
              (tpl.origin, ("spec",), tpl.spec))
    where, path = d.origin, ()
    for origin, prefix, written in places:
        entries = (written or {}).get("files") if isinstance(written, Mapping) else None
        i = next((i for i, e in enumerate(entries or []) if isinstance(e, dict) and e.get("secret") == unset), None)
        if i is not None:
            where, path = origin, (*prefix, "files", i, "secret")
            break
    return SecretError(message, ((where, path, message.removeprefix(f"{d.origin.file}: ")),))


def _unset(name: str, env: tuple[str, ...]) -> str:
    """Why secret `name` has no value and what to do, true to syncer.yaml's `secrets.env`
    (names only: a value never reaches a message)."""
    if name.startswith(OWN_PREFIX):
        return (f"secret {name} is not set: syncer's own SYNCER_* variables are never secrets"
                " (name the secret otherwise)")
    if env_allowed(name, env):
        return (f"secret {name} is not set: set the environment variable {name} (syncer.yaml allows it)"
                " or put it in --secrets-file")
    return (f"secret {name} is not set: put it in --secrets-file, or set the environment variable and"
            f" allow it in syncer.yaml (secrets: {{env: [{name}]}})")


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    """One compiled validator per distinct input schema (compiling costs 40x a check)."""
    from jsonschema import Draft202012Validator  # only where a secret is checked

    return Draft202012Validator(json.loads(schema_json))


# The last Project object's answers: a server asks these of the same (frozen) project every
# second, and a walk of 10k definitions takes a tenth of a second.
_LAST: dict[str, tuple[Project, Any]] = {}


def _of_last(kind: str, project: Project, compute: Callable[[Project], Any]) -> Any:
    last = _LAST.get(kind)
    if last is None or last[0] is not project:
        last = _LAST[kind] = (project, compute(project))
    return last[1]


def literal_secrets(project: Project) -> dict[str, str]:
    """Values of literal password params (allowed by `allow_literal_secrets`), by reference name."""
    return dict(_of_last("literal", project, _literal_secrets))


def _literal_secrets(project: Project) -> dict[str, str]:
    templates = {(t.id, t.version): t for t in project.templates}
    found = {}
    for d in project.definitions:
        tpl = templates[(d.template, d.template_version or "")]
        for name in tpl.secret_inputs() & set(d.params):
            value = d.params[name]
            if not (isinstance(value, dict) and set(value) == {"secret"}):
                found[f"literal.{d.name}.{name}"] = str(value)
    return found


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merged key by key, recursively; anything else in `over` replaces."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def substitute(value: Any, ctx: Mapping[str, Any]) -> Any:
    """Every `${...}` in `value` (strings, nested) from `ctx`, as render substitutes: DROP for
    a whole value naming what `ctx` lacks; an entry or item naming it goes."""
    return _subst(value, ctx)


def _subst(value: Any, ctx: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return _subst_str(value, ctx)
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            new = _subst(v, ctx)
            if new is not DROP:
                out[k] = new
        return out
    if isinstance(value, list):
        items = []
        for item in value:
            # an item (a port, say) that names a missing optional input goes as a whole
            if isinstance(item, dict) and any(_subst(v, ctx) is DROP for v in item.values()):
                continue
            new = _subst(item, ctx)
            if new is not DROP:
                items.append(new)
        return items
    return value


def _subst_str(text: str, ctx: Mapping[str, Any]) -> Any:
    if "${" not in text:
        return text
    name = expr.whole(text)
    if name is not None:
        return ctx.get(name, DROP)
    out = []
    for piece in expr.split(text):
        if isinstance(piece, str):
            out.append(piece)
        elif piece.name not in ctx:
            return DROP  # names an optional input given no value: the entry goes
        else:
            out.append(_as_text(ctx[piece.name]))
    return "".join(out)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def normalise(spec: Mapping[str, Any]) -> dict[str, Any]:
    """One canonical shape per meaning, so that equal containers hash equal. An empty value
    means nothing and goes, but `entrypoint: []` (or `""`): it clears the image's ENTRYPOINT,
    as Compose's does (Docker keeps an empty one, and fills in the image's for none)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        fix = _NORMALISERS.get(key)
        value = fix(value) if fix else value
        if value in (None, {}, []) and not (key == "entrypoint" and value == []):  # (see below)
            continue
        out[key] = value
    return out


def _image(value: Any) -> str:
    if isinstance(value, dict):
        tag = value.get("tag", "latest")
        return f"{value['repository']}:{tag}"
    text = str(value)
    return text if ":" in text.rsplit("/", 1)[-1] or "@" in text else f"{text}:latest"


def _argv(value: Any) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    return [_as_text(v) for v in value]


def _env(value: Any) -> dict[str, str]:
    pairs = shortforms.key_values(value, "env", drop_bare=True)
    return {k: _as_text(v) for k, v in pairs.items() if v is not None}


_NORMALISERS: dict[str, Any] = {
    **shortforms.NORMALISERS, "image": _image, "command": _argv, "entrypoint": _argv, "env": _env,
}


def _per_container(base: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Replica-specific parts: named volumes default to `<container>_<n>`."""
    spec = dict(base)
    if "volumes" in spec:
        vols = []
        for i, v in enumerate(spec["volumes"], start=1):
            v = dict(v)
            if not v.get("host_path") and not v.get("name"):
                v["name"] = f"{name}_{i}"
            vols.append(v)
        spec["volumes"] = vols
    return spec


def secret_references(project: Project) -> set[str]:
    """Names of the secrets a project's definitions reference as `{secret: NAME}`, at any
    depth of their params and overrides."""
    return set(_of_last("references", project, lambda p: {
        name for d in p.definitions for name in definition_secrets(d)} | repo_files.secret_names(p)))


def definition_secrets(d: Definition) -> set[str]:
    """Names of the secrets one definition references as `{secret: NAME}`."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            if set(value) == {"secret"} and isinstance(value["secret"], str):
                found.add(value["secret"])
                return
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    walk(d.params)
    walk(d.overrides)
    return found
