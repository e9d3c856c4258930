"""A Compose file → a syncer repository (path → file content), and what could not be carried.

Pure: the Compose file arrives as bytes and the files it names are read through `read`
(relative to the Compose file's folder; None for anything that is not a regular file).
Compose's own rules: `services`, `networks`, `volumes`, `configs`, `secrets` at the top,
`x-` extensions ignored, variable interpolation in values (never in keys). One template and
one definition per service, in the short forms the Compose file used; passwords become
`{secret: NAME}`; configs and relative bind mounts become `files:` copied under `files/`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncer.core.errors import Diagnostic
from syncer.stages import (compose_fields as fields, compose_names as names, compose_networks, compose_shapes,
                           policy as policies)
from syncer.stages.compose_env import env_value, environment
from syncer.stages.compose_include import load_all
from syncer.stages.compose_mounts import (Lister, Reader, RepoFiles, config_file, external_volumes, named, secret_file,
                                          undeclared, volume, volumes_from)
from syncer.stages.compose_project import NAME as PROJECT_NAME, chosen, enabled, project_name
from syncer.stages.compose_vars import (
    ENTRIES, Unsupported, Vars, credentialed, dump, env_secrets, input_defaults, input_schema, interpolate,
    interpolated, merge_env, moved_lines, passwordish, settle, without_moved,
)
from syncer.stages.files import parse_env
from syncer.stages.load import SourceFile, locate_in
from syncer.stages.render import substitute

# Compose service keys whose value a syncer spec takes as it is (after interpolation)
KEPT = frozenset({
    "image", "command", "entrypoint", "labels", "healthcheck", "restart", "user", "working_dir", "hostname",
    "domainname", "init", "tty", "stdin_open", "cap_add", "cap_drop", "privileged", "read_only",
    "security_opt", "devices", "ulimits", "sysctls", "extra_hosts", "dns", "dns_search", "dns_opt", "group_add",
    "stop_signal", "stop_grace_period", "logging", "pid", "ipc", "gpus", "platform", "pull_policy", "expose", "runtime",
})
WHY = {
    "build": "syncer deploys images; build it in CI",
    "external_links": "use an external network in syncer.yaml instead",
}
TOP_LEVEL = frozenset({"version", "name", "services", "networks", "volumes", "configs", "secrets"})


@dataclass
class Imported:
    """The repository (path → text, or bytes for a copied file) and what was left out."""

    project: str
    files: dict[str, str | bytes] = field(default_factory=dict)
    problems: list[Diagnostic] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # secret name → where it came from
    skipped: dict[str, str] = field(default_factory=dict)  # service → why it was left out (its profiles)
    needs: dict[str, str] = field(default_factory=dict)  # `definitions/D.yaml params.x` → the variable it stands for
    shell: dict[str, str] = field(default_factory=dict)  # the same, for a variable Compose takes from the shell
    host_paths: dict[str, str] = field(default_factory=dict)  # a host directory bind-mounted → the service
    origins: dict[str, tuple[str, str, int, int]] = field(default_factory=dict)  # a file written → its service, where


@dataclass
class _Service:
    name: str
    spec: dict[str, Any] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)
    vars: Vars = field(default_factory=Vars)
    env_secrets: dict[str, str] = field(default_factory=dict)  # from env files, as `env` entries
    dotenv: dict[str, str] = field(default_factory=dict)  # the variables Compose interpolates it with
    job: bool = False  # deploy.mode says it runs to completion (`replicated-job`, `global-job`)


class _Importer:
    def __init__(self, sources: list[SourceFile], doc: dict[str, Any], read: Reader, out: Imported,
                 listdir: Lister, profiles: Collection[str] = (), root: str = "", home: str = "",
                 envs: dict[str, list[str]] | None = None, dotenv: dict[str, str] | None = None,
                 name_prefix: str = "") -> None:
        self.profiles, self.name_prefix = set(profiles), name_prefix
        self.root, self.home = root, home  # the Compose file's folder, where `./data` is; and `~`
        self.sources, self.source, self.read, self.out = sources, sources[0], read, out
        self.repo_files = RepoFiles(read, listdir, out.files)
        self.copy = self.repo_files.copy
        self.doc = doc  # the files merged
        self.renamed: dict[str, str] = {}  # service → its container_name (or prefixed name): its definition's
        self.dotenv = dotenv or {}  # what Compose interpolates from (passwords aside): `.env`, or --env-file
        self.envs = envs or {}  # an included service → its include's env files (compose_include.included)
        self.links: dict[str, list[str]] = {}  # service → the services it links to (its dependencies)
        self.link_aliases: names.Aliases = {}  # service → the names others link to it by, and where
        self.external = compose_networks.external_names(doc)  # an external network's key → its Docker name
        self.fixed = {PROJECT_NAME: out.project}  # what Compose interpolates itself, not from a variable

    def problem(self, path: tuple[Any, ...], message: str) -> None:
        self.out.problems.append(Diagnostic(*locate_in(self.sources, 0, path, key=True), message))

    def run(self) -> None:
        for key in self.doc:
            if key not in TOP_LEVEL and not str(key).startswith("x-"):
                self.problem((key,), f"{key}: a top-level Compose element syncer does not carry")
        services = self.doc.get("services") or {}
        jobs = fields.completed_jobs(services)
        project: dict[str, Any] = {"project": self.out.project, "templates": ["templates"],
                                   "definitions": ["definitions"]}
        networks, problems = compose_networks.top_level(self.doc)
        self.volume_names, more = fields.volume_names(self.doc, self.out.project, self.fixed)
        self.volume_drivers = fields.volume_drivers(self.doc)
        for path, why in problems + more:
            self.problem(path, why)
        if networks:
            project["networks"] = networks
        specs = []
        services = {name: raw for name, raw in services.items() 
                    if enabled(str(name), raw, self.profiles, self.out.skipped)}
        self.renamed, problems = names.container_names(services, self.name_prefix, self.fixed)
        for (service, *at), reason in problems:
            self.problem(("services", service, *at), f"service '{service}': {reason}")
        self.links, self.link_aliases, problems = names.links(services, self.out.skipped)
        for (service, i), reason in problems:
            self.problem(("services", service, "links", i), f"service '{service}': links: {reason}")
        for name, raw in services.items():
            kept, problems = compose_shapes.service(raw, built=f"{self.out.project}-{name}")
            for path, why in problems:  # (what Compose refuses: else read piece by piece, or made up)
                self.problem(("services", name, *path), f"service '{name}': {why}")
            if kept is None:
                continue
            svc = self.service(str(name), kept)
            self.write_service(svc, job=name in jobs or svc.job)
            specs.append(substitute(svc.spec, input_defaults(svc.vars)))  # as validate reads it
        allowed = policies.needed(specs)
        if allowed:  # what the Compose file asks of the host, stated for the operator to review
            project["policy"] = allowed
        if from_env := env_secrets(self.out.secrets):  # so that the report's "set it in the environment" holds
            project["secrets"] = {"env": from_env}
        self.out.files["syncer.yaml"] = dump(project, _HEADER)

    def service(self, name: str, raw: dict[str, Any]) -> _Service:
        svc = _Service(name, vars=Vars(fixed=dict(self.fixed)), dotenv=self.variables(name))
        for key, value in raw.items():
            key = str(key)
            where = ("services", name, key)
            if key.startswith("x-"):
                continue
            try:
                value, refused = interpolated(value, svc.vars, entries=key in ENTRIES)
                for path, exc in refused:  # (an entry alone: the others are carried)
                    self.problem(where + path, f"service '{name}': {key}.{path[0]}: {exc}")
                self.field(svc, key, value, where)
            except Unsupported as exc:
                self.problem(where, f"service '{name}': {key}: {exc}")
            except (TypeError, ValueError, AttributeError, KeyError, IndexError):
                # Compose would refuse it too; say where rather than fail
                self.problem(where, f"service '{name}': {key}: not a value Compose's syntax allows here")
        merge_env(svc.spec, svc.env_secrets)
        compose_networks.join_external_default(svc.spec, self.external.get("default"))
        dotenv = svc.dotenv
        for variable, values in settle(svc.vars, dotenv):  # `.env` beside the Compose file sets variables
            self.problem(("services", name), f"service '{name}': ${{{variable}}} reads as "
                         + " and as ".join(repr(v) for v in sorted(values)) + " in its uses here (their defaults"
                         " differ): a syncer input has one value; give every use the same default")
        return svc

    def variables(self, service: str) -> dict[str, str]:
        """What Compose interpolates a service with: the first file's `.env`, and for a service
        an `include:` copied in, its include's env files for what that leaves unset (the
        outermost include first)."""
        merged: dict[str, str] = {}
        for path in reversed(self.envs.get(service, [])):
            merged.update(parse_env(self.read(path) or b"", expand=True))
        return merged | self.dotenv

    def host(self, rel: str) -> str | None:
        if rel == "~" or rel.startswith("~/"):  # the home of who imports it: of who ran Compose, as a rule
            return posixpath.normpath(self.home + rel[1:]) if self.home else None
        return posixpath.normpath(posixpath.join(self.root, rel)) if self.root else None

    def field(self, svc: _Service, key: str, value: Any, where: tuple[Any, ...]) -> None:
        spec = svc.spec
        if key in ("pid", "ipc") and str(value).startswith("service:"):
            self.problem(where, f"service '{svc.name}': {key}: {value}: sharing another service's"
                         f" {key} namespace is not carried (syncer shares a container's network only)")
        elif key in KEPT:
            spec[key] = value
        elif (res := fields.resource_key(key)) is not None:
            spec.setdefault("resources", {})[res] = value
        elif key == "environment":
            spec["env"] = environment(svc.vars, value)
        elif key == "env_file":
            if paths := self.env_files(svc, value, where):
                spec["env_file"] = paths
        elif key == "tmpfs":
            spec.setdefault("tmpfs", []).extend([value] if isinstance(value, str) else value)
        elif key == "network_mode":
            shared = value[len("service:"):] if value.startswith("service:") else None
            spec[key] = value if shared is None else "container:" + self.renamed.get(shared, shared)
        elif key == "ports":
            spec[key] = self.located(fields.ports(value), where, svc)
        elif key == "networks":
            nets = self.located(compose_networks.networks(value, self.doc.get("networks") or {},
                                                          renamed=self.external), where, svc)
            if nets:
                spec[key] = nets
            if value and "default" not in value:  # (listed networks only: not Compose's default one)
                spec["project_network"] = False
        elif key == "volumes":
            self.service_volumes(svc, value, where)
        elif key == "volumes_from":  # the volumes of the services named, mounted here too
            for at, entry, why in volumes_from(self.doc.get("services") or {}, svc.name, value):
                if why:
                    self.problem(at, f"service '{svc.name}': volumes_from: {why}")
                else:
                    self.service_volumes(svc, {at[-1]: interpolated(entry, svc.vars)[0]}, at[:-1])
        elif key in ("configs", "secrets"):
            self.mounted(svc, key, value, where)
        elif key == "deploy":
            resources, extra, problems = fields.deploy(value or {})
            self.located(([], problems), where, svc)
            if resources:  # (`deploy: {replicas: 2}` alone sets none)
                spec.setdefault("resources", {}).update(resources)
            for key in fields.DEPLOY_SPEC_FIELDS:
                if extra.get(key):
                    spec[key] = extra.pop(key)
                extra.pop(key, None)
            svc.job = bool(extra.pop("job", False))
            svc.definition.update(extra)
        elif key == "scale":
            svc.definition["replicas"] = value
        elif key == "depends_on":
            deps = self.located(fields.depends_on(value, self.out.skipped), where, svc)
            deps, unknown = fields.known_dependencies(deps, self.doc.get("services") or {}, self.out.skipped)
            for at, why in unknown:  # (at its entry, in either form)
                self.problem(where + at, f"service '{svc.name}': depends_on: {why}")
            # by definition name: a service's container_name names its definition
            svc.definition[key] = ({self.renamed.get(k, k): v for k, v in deps.items()} if isinstance(deps, dict)
                                   else [self.renamed.get(str(d), d) for d in deps])
        elif key in ("profiles", "container_name", "links", "extends"):
            pass  # a profile is asked for (`enabled`); container_name and links: `run`; an extends that failed: said
        else:
            why = WHY.get(key, "not a field of syncer's container spec")
            self.problem(where, f"service '{svc.name}': {key}: {why}")

    def located(self, result: tuple[Any, fields.Problems], where: tuple[Any, ...], svc: _Service) -> Any:
        value, problems = result
        for path, reason in problems:
            named = ".".join([where[-1], *(str(p) for p in path if not isinstance(p, int))])
            self.problem(where + path, f"service '{svc.name}': {named}: {reason}")
        return value

    def env_files(self, svc: _Service, value: Any, where: tuple[Any, ...]) -> list[str]:
        """Copied under files/, minus the lines that hold passwords: those become secret
        inputs in `env` (the file's other lines stay under env_file)."""
        out = []
        for i, entry in enumerate([value] if isinstance(value, (str, dict)) else value):
            path = entry["path"] if isinstance(entry, dict) else entry
            copied = self.copy(str(path), keep=without_moved)
            if copied is None and isinstance(entry, dict) and entry.get("required") is False:
                continue  # an optional env file that is not there: Compose reads nothing either
            if copied is None:
                self.problem(where + ((i,) if isinstance(value, list) else ()),
                             f"service '{svc.name}': env_file: {path} is not a file next to the Compose file")
                continue
            out.append(copied)
            for name, value in moved_lines(self.read(posixpath.normpath(str(path))) or b"").items():
                plain = not passwordish(name) and not credentialed(value)  # (Compose's variables in it)
                svc.env_secrets[name] = env_value(svc.vars, name, interpolate(value, svc.vars) if plain else value)
        return out

    def service_volumes(self, svc: _Service, value: list[Any] | dict[int, Any], where: tuple[Any, ...]) -> None:
        for i, v in (value.items() if isinstance(value, dict) else enumerate(value)):
            kind, item, why = volume(v, self.repo_files, self.host)
            if why:
                self.problem(where + (i,), f"service '{svc.name}': volumes: {why}")
            elif kind == "host":
                svc.spec.setdefault("volumes", []).append(item)
                self.out.host_paths[item["host_path"] if isinstance(item, dict) else item.split(":")[0]] = svc.name
            elif kind == "tmpfs":
                svc.spec.setdefault("tmpfs", []).append(item)
            elif kind == "file":
                svc.spec.setdefault("files", []).extend(item if isinstance(item, list) else [item])
            elif missing := undeclared(item, self.volume_names):
                self.problem(where + (i,), f"service '{svc.name}': volumes: '{missing}' is not declared under"
                                           " the top-level volumes: (Compose refuses it too)")
            else:
                svc.spec.setdefault("volumes", []).append(named(item, self.volume_names, self.volume_drivers,
                                                                external_volumes(self.doc)))

    def mounted(self, svc: _Service, key: str, value: list[Any], where: tuple[Any, ...]) -> None:
        top = self.doc.get(key) or {}
        for i, ref in enumerate(value):
            ref = {"source": ref} if isinstance(ref, str) else dict(ref)
            conf = top.get(ref.get("source"))
            if conf is None:
                self.problem(where + (i,), f"service '{svc.name}': {key}: '{ref.get('source')}' is not declared"
                                           f" under the top-level {key}:")
                continue
            if key == "secrets":
                item, why = secret_file(ref, conf)
                self.out.secrets.setdefault(item.get("secret", ""), f"Compose secret '{ref['source']}'"
                                            + (f" (its value is in {conf['file']})" if conf.get("file") else ""))
            else:
                if conf.get("environment"):
                    svc.vars.use(str(conf["environment"]))
                item, why = config_file(ref, interpolated(conf, svc.vars)[0], self.copy)
            if why:
                self.problem(where + (i,), f"service '{svc.name}': {key}: {why}")
            else:
                svc.spec.setdefault("files", []).append(item)

    def write_service(self, svc: _Service, *, job: bool) -> None:
        inputs: dict[str, Any] = {"type": "object", "properties": {}}
        params: dict[str, Any] = {}
        for var in svc.vars.found.values():
            inputs["properties"][var.input] = input_schema(var)
            if var.secret:
                params[var.input] = {"secret": var.name}
                self.out.secrets.setdefault(var.name, f"service '{svc.name}'" + (
                    "; a value is in .env" if var.name in svc.dotenv else ""))
            if var.required or var.secret:
                inputs.setdefault("required", []).append(var.input)
            where = f"definitions/{self.renamed.get(svc.name, svc.name)}.yaml params.{var.input}"
            if var.required and not var.secret:  # `${X:?…}` with no value: Compose would refuse to start
                self.out.needs[where] = var.name
            elif var.shell and var.default is None and not var.secret:
                self.out.shell[where] = var.name
        if why := compose_shapes.whole_replicas(svc.definition, input_defaults(svc.vars)):
            self.problem(("services", svc.name), f"service '{svc.name}': {why}")
        template: dict[str, Any] = {"id": svc.name, "name": svc.name, "version": "1.0",
                                    "description": f"imported from {self.source.path} (service '{svc.name}')"}
        if job:
            template["kind"] = "job"
        elif "restart" not in svc.spec:  # Compose's default: a service that exits 0 has finished (a seed,
            # a one-shot), and `up` leaves it exited; a spec stating none would call that exit a failure
            svc.spec["restart"] = "no"
        template.update({"inputs": inputs, "spec": svc.spec})
        name = self.renamed.get(svc.name, svc.name)
        if name != svc.name:
            names.with_alias(svc.spec, svc.name)
        for alias, networks in self.link_aliases.get(svc.name, []):
            names.with_alias(svc.spec, alias, networks)
        if svc.name in self.links:
            names.with_dependencies(svc.definition, [self.renamed.get(t, t) for t in self.links[svc.name]])
        definition: dict[str, Any] = {"name": name, "template": svc.name, **svc.definition}
        if params:
            definition["params"] = params
        self.out.files[f"templates/{svc.name}.yaml"] = dump(template)
        self.out.files[f"definitions/{name}.yaml"] = dump(definition)
        file, line, column = locate_in(self.sources, 0, ("services", svc.name), key=True)
        for written in (f"templates/{svc.name}.yaml", f"definitions/{name}.yaml"):
            self.out.origins[written] = (svc.name, file, line, column)


_HEADER = "# imported from a Compose file by `syncer import`\n"


def import_compose(path: str, data: bytes, *, read: Reader, project: str | None, folder: str,
                   listdir: Lister = lambda rel: None, profiles: Collection[str] = (),
                   more: Sequence[tuple[str, bytes]] = (), root: str = "", home: str = "",
                   environ: Mapping[str, str] | None = None, env_files: Sequence[bytes] | None = None,
                   name_prefix: str = "") -> Imported:
    """The syncer repository a Compose file becomes. `path` names the file in messages;
    `folder` is its folder's name (the project name of last resort); `read` and `listdir`
    read what it names, relative to its folder; `profiles`: the Compose profiles to start
    (a service in profiles none of which is given is left out, as `docker compose up` does);
    `more`: the files (path, content) merged into it, in order, as `docker compose -f` merges;
    `root`: its folder's absolute path, from which a relative data directory is bind-mounted
    (and `home`, what `~` stands for); `environ`, `env_files`: see compose_project.chosen
    (`.env` beside it when no env file is given); `name_prefix` begins the definition name
    of each service without a container_name (compose_names.container_names: valid, as
    compose_names.prefix_problem says)."""
    envs: dict[str, list[str]] = {}
    sources, doc, problems = load_all([(path, data), *more], read, envs)
    if doc is None:
        return Imported(project or "imported", problems=problems)
    name, profiles, dotenv = chosen(project, profiles, environ=environ or {}, doc_name=doc.get("name"),
                                    env_files=[read(".env") or b""] if env_files is None else env_files, folder=folder)
    out = Imported(name, problems=problems)
    _Importer(sources, doc, read, out, listdir, profiles, root, home, envs, dotenv, name_prefix).run()
    return out
