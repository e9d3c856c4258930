"""A rendered ContainerSpec → a Swarm service spec (the body of `POST /services/create` and
`/services/{id}/update`). Pure: no Docker, no clock.

Secrets stay references here (`<<secret:NAME:HASH>>`): the adapter reveals them in the env
and the arguments only, at the edge. Files become Swarm configs (`secret:` files Swarm
secrets), named by their content's hash so that a changed file is a new config and a
rolling update; the adapter fills in their ids (`attach_files`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from syncer.core import labels as L
from syncer.core.model import ContainerSpec, LiveContainer
from syncer.core.record import Record, record
from syncer.stages.shortforms import byte_size, made_with_driver, volume_mount
from syncer.stages.swarm_fields import process, text, tmpfs_mount

DEFAULT_MONITOR = "5s"  # how long Swarm watches each updated task before it counts as proven
TASK_HASH = "syncer.task-hash"  # on the service: the hash of its TaskTemplate (is a roll expected?)
SETTLED = ("completed", "rollback_completed", "paused", "rollback_paused")

_DURATION_RE = re.compile(r"([0-9.]+)(ns|us|ms|s|m|h)")
_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def ns(value: Any) -> int:
    """`10s`, `1m30s` or seconds as a number → nanoseconds (the API's durations)."""
    if isinstance(value, (int, float)):
        return int(value * 10**9)
    return sum(int(float(n) * _NS[u]) for n, u in _DURATION_RE.findall(str(value)))


def size(value: Any) -> int:
    """`512m`, `256mb`, `1GiB` → bytes (`shortforms.byte_size`); 0 for what is none."""
    return byte_size(value) or 0


@record
class SwarmFile(Record):
    """One `files` entry as a Swarm config (or secret): its content-hash name and where it goes."""

    kind: str  # config | secret
    name: str  # <project>_<definition>_<hash12>
    path: str
    data: str  # the content; for a secret, its reference (revealed by the adapter only)
    mode: int
    uid: str = "0"
    gid: str = "0"


def network_name(project: str) -> str:
    """The project's attachable overlay network."""
    return project


def files_of(c: ContainerSpec) -> list[SwarmFile]:
    """The configs and secrets a service needs, named with their content's hash."""
    out = []
    for f in _file_entries(c):
        secret = f.get("secret")
        data = str(secret if secret is not None else f.get("content", ""))
        if secret is not None and not L.SECRET_REF_RE.fullmatch(data):
            data = f"<<secret:{data}:{'0' * 32}>>"  # a bare name: resolved by name at the edge
        # the hash of what the spec holds: for a secret, its keyed reference, never its value
        digest = L.sha256_of({"path": f["path"], "data": data}).removeprefix("sha256:")[:12]
        # content that holds a secret (`${inputs.password}` in it) is a secret too: a config's
        # data is readable by anyone who may inspect it
        kind = "secret" if secret is not None or L.has_secret(data) else "config"
        mode = int(str(f.get("mode", "0400" if kind == "secret" else "0444")), 8)
        out.append(SwarmFile(kind, f"{c.project}_{c.definition}_{digest}", str(f["path"]), data, mode,
                             str(f.get("uid", "0")), str(f.get("gid", "0"))))
    return out


def _file_entries(c: ContainerSpec) -> list[Mapping[str, Any]]:
    """`files` as `[{path, content | secret, mode, uid, gid}]`. Also reads the rendered form
    of the files branch, `{path: {sha256 | secret+hash, mode, uid, gid}}` with the bytes in
    `ContainerSpec.payload` (a secret's payload is its reference)."""
    files = c.spec.get("files") or []
    if not isinstance(files, Mapping):
        return list(files)
    payload: Mapping[str, bytes] = getattr(c, "payload", None) or {}
    out: list[Mapping[str, Any]] = []
    for path, kept in files.items():
        entry = {k: kept[k] for k in ("mode", "uid", "gid") if k in kept}
        if "secret" in kept:
            entry["secret"] = kept.get("hash") or kept["secret"]
        else:
            entry["content"] = payload.get(path, b"").decode("utf-8", "replace")
        out.append({"path": path, **entry})
    return out


def service_spec(c: ContainerSpec, labels: Mapping[str, str], *, image: str = "") -> dict[str, Any]:
    """The ServiceSpec for one definition on a Swarm server (configs without ids yet);
    `image`: the spec's image pinned to a digest (`ref@sha256:…`), which the tasks run."""
    spec = c.spec
    task = task_of(c, image)
    update = update_config(spec)
    # the spec's `service_labels` (Compose's deploy.labels: what tools watching services read)
    # beside syncer's own; not in the task template, so a change of them rolls no task
    service_labels = {**spec.get("service_labels", {}), **labels, TASK_HASH: L.sha256_of(task)}
    replicas = int(spec.get("replicas", 1))
    body: dict[str, Any] = {
        "Name": c.definition, "Labels": service_labels, "TaskTemplate": task,
        "Mode": {"Global": {}} if spec.get("mode") == "global" else {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": update,
        # undoing a failed update uses the same pace (or `rollback`'s), and stops rather than
        # loops on failure
        "RollbackConfig": {**update, **_pace(spec.get("rollback", {})), "FailureAction": "pause"},
        # `expose` is left out: a service has no exposed ports (`docker stack deploy` ignores it)
        "EndpointSpec": endpoint_spec(spec),
    }
    if c.is_job:  # runs to completion once per service; a new spec is a new service (no rolls)
        body["Mode"] = {"GlobalJob": {}} if spec.get("mode") == "global" else {
            "ReplicatedJob": {"MaxConcurrent": replicas, "TotalCompletions": replicas}}
        del body["UpdateConfig"], body["RollbackConfig"]
    return body


def service_mode(c: ContainerSpec) -> str:
    """The Swarm mode a definition runs in: `replicated`, `global`, `replicated-job` or
    `global-job` (Compose's names for them)."""
    mode = str(c.spec.get("mode", "replicated"))
    return f"{mode}-job" if c.is_job else mode


def live_mode(live: LiveContainer) -> str:
    """The mode a service runs in (a job's by its label where the observation did not say)."""
    return live.mode or ("replicated-job" if live.labels.get(L.KIND) == "job" else "replicated")


def task_of(c: ContainerSpec, image: str) -> dict[str, Any]:
    """The TaskTemplate syncer sends for `c` (`image`: the spec's pinned to a digest)."""
    task = task_template(c)
    if image:  # (in the task hash: a tag that moved rolls the tasks)
        task["ContainerSpec"] = {**task["ContainerSpec"], "Image": image}
    return task


def task_hash(c: ContainerSpec, image: str = "") -> str:
    """The hash of the TaskTemplate syncer makes of a spec (`image`: pinned to a digest),
    labelled on the service: one made by an earlier syncer that carried less differs."""
    return L.sha256_of(task_of(c, image))


def task_template(c: ContainerSpec) -> dict[str, Any]:
    """TaskTemplate: the container, its resources, restart policy, placement and networks."""
    spec = c.spec
    task: dict[str, Any] = {
        "ContainerSpec": container_spec(c),
        "Resources": _resources(spec.get("resources", {})),
        # a job runs once: only `on-failure` retries it; otherwise a failed task fails the job
        "RestartPolicy": _restart(spec.get("restart") if not c.is_job or str(spec.get("restart", "")).startswith(
            "on-failure") else "no", spec.get("restart_policy") or {}),
        "Placement": _placement(spec.get("placement", {})),
        "Networks": _networks(c),
    }
    if spec.get("logging"):
        log = spec["logging"]
        task["LogDriver"] = {"Name": log.get("driver", "json-file"),
                             "Options": {k: text(v) for k, v in log.get("options", {}).items()}}
    return task


def container_spec(c: ContainerSpec) -> dict[str, Any]:
    """TaskTemplate.ContainerSpec. Its labels name the project and definition only: a
    change of replicas or of the update pace must not restart every task."""
    spec = c.spec
    out: dict[str, Any] = {
        "Image": spec["image"],
        "Labels": {**spec.get("labels", {}), L.PROJECT: c.project, L.DEFINITION: c.definition,
                   # a job's task container ending is what a job does: self-heal leaves it
                   **({L.KIND: "job"} if c.is_job else {})},
        "Env": [f"{k}={v}" for k, v in sorted(spec.get("env", {}).items())],
    }
    if "entrypoint" in spec:
        out["Command"] = list(spec["entrypoint"])
    if "command" in spec:
        out["Args"] = list(spec["command"])
    for key, api in (("user", "User"), ("working_dir", "Dir"), ("hostname", "Hostname")):
        if spec.get(key):
            out[api] = str(spec[key])
    if "stop_grace_period" in spec:
        out["StopGracePeriod"] = ns(spec["stop_grace_period"])
    if "healthcheck" in spec:
        out["Healthcheck"] = _healthcheck(spec["healthcheck"])
    process(spec, out)
    mounts = [_mount(v) for v in spec.get("volumes", [])] + [tmpfs_mount(t) for t in spec.get("tmpfs") or []]
    if mounts:
        out["Mounts"] = mounts
    for f in files_of(c):
        key = "Configs" if f.kind == "config" else "Secrets"
        out.setdefault(key, []).append({
            "File": {"Name": f.path, "UID": f.uid, "GID": f.gid, "Mode": f.mode},
            f"{f.kind.capitalize()}Name": f.name,
        })
    return out


def attach_files(body: Mapping[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    """The spec with each config's and secret's id filled in (ids by name, from the adapter)."""
    cs = dict(body["TaskTemplate"]["ContainerSpec"])
    for key, id_key, name_key in (("Configs", "ConfigID", "ConfigName"), ("Secrets", "SecretID", "SecretName")):
        if key in cs:
            cs[key] = [{**ref, id_key: ids[ref[name_key]]} for ref in cs[key]]
    return {**body, "TaskTemplate": {**body["TaskTemplate"], "ContainerSpec": cs}}


def update_config(spec: Mapping[str, Any]) -> dict[str, Any]:
    """UpdateConfig: start-first by default, roll back on failure, with a monitor window. A
    task that binds a node's own port (`mode: host`), or of which a node takes a set number
    (`max_replicas_per_node`), cannot start beside the one it replaces: stop-first there, as
    Swarm's own default (start-first would leave the new task pending until the timeout)."""
    pinned = any(p.get("mode") == "host" for p in spec.get("ports", [])) or \
        "max_replicas_per_node" in spec.get("placement", {})
    defaults = {"Parallelism": 1, "Delay": 0, "Monitor": ns(DEFAULT_MONITOR),
                "Order": "stop-first" if pinned else "start-first"}
    return {**defaults, **_pace(spec.get("update", {})), "FailureAction": "rollback", "MaxFailureRatio": 0}


def _pace(given: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an `update` or `rollback` mapping that it gives, as the API's."""
    out: dict[str, Any] = {api: ns(given[key]) for key, api in (("delay", "Delay"), ("monitor", "Monitor"))
                           if key in given}
    if "parallelism" in given:
        out["Parallelism"] = int(given["parallelism"])
    if "order" in given:
        out["Order"] = given["order"]
    return out


def endpoint_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"Mode": spec.get("endpoint_mode", "vip"), "Ports": _ports(spec.get("ports", []))}


def _ports(ports: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # only published ports: Swarm would pick a random public port for the others
    return [{"Protocol": p.get("protocol", "tcp"), "TargetPort": int(p["container_port"]),
             "PublishedPort": int(p["host_port"]), "PublishMode": p.get("mode", "ingress")}
            for p in ports if p.get("host_port") is not None]


def endpoint_key(endpoint: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """An EndpointSpec as Swarm compares it, whether syncer sent it or the manager keeps it (no
    `Ports` for none, defaults left out; the ports in their order, as Swarm compares them): a
    change of it rolls the tasks as a new TaskTemplate does."""
    ep = endpoint or {}
    ports = ((p.get("Protocol") or "tcp", int(p.get("TargetPort") or 0), int(p.get("PublishedPort") or 0),
              p.get("PublishMode") or "ingress") for p in ep.get("Ports") or [])
    return (ep.get("Mode") or "vip", tuple(ports))


def _placement(where: Mapping[str, Any]) -> dict[str, Any]:
    """Placement: constraints, then (only when given: the task hash of others stays) the spread
    preferences and the most replicas on one node."""
    out: dict[str, Any] = {"Constraints": list(where.get("constraints", []))}
    if where.get("preferences"):
        out["Preferences"] = [{"Spread": {"SpreadDescriptor": p["spread"]}} for p in where["preferences"]]
    if "max_replicas_per_node" in where:
        out["MaxReplicas"] = int(where["max_replicas_per_node"])
    return out


def _resources(res: Mapping[str, Any]) -> dict[str, Any]:
    """Limits (`memory`, `cpus`, `pids`), and what the scheduler reserves on a node for each
    task (`memory_reservation`, `cpus_reservation`; none: no `Reservations`)."""
    out: dict[str, Any] = {"Limits": {}, "Reservations": {}}
    for suffix, part in (("", "Limits"), ("_reservation", "Reservations")):
        if f"memory{suffix}" in res:
            out[part]["MemoryBytes"] = size(res[f"memory{suffix}"])
        if f"cpus{suffix}" in res:
            out[part]["NanoCPUs"] = int(float(res[f"cpus{suffix}"]) * 10**9)
    if "pids" in res:
        out["Limits"]["Pids"] = int(res["pids"])
    return out if out["Reservations"] else {"Limits": out["Limits"]}


def _restart(policy: Any, pace: Mapping[str, Any]) -> dict[str, Any]:
    """Swarm's RestartPolicy: the condition from `restart`, the pace from `restart_policy`."""
    name, _, count = str(policy or "always").partition(":")
    out: dict[str, Any] = {"Condition": {"no": "none", "on-failure": "on-failure"}.get(name, "any")}
    if name == "on-failure":
        out["MaxAttempts"] = int(count or 0)
    if "max_attempts" in pace:
        out["MaxAttempts"] = int(pace["max_attempts"])
    out.update({api: ns(pace[key]) for key, api in (("delay", "Delay"), ("window", "Window")) if key in pace})
    return out


def _networks(c: ContainerSpec) -> list[dict[str, Any]]:
    # the project's overlay first (unless the rendered spec left it out: `project_network:
    # false`, or internal networks only), then the spec's own (syncer.yaml `networks:`), the
    # definition's name a DNS alias on each
    given = c.spec.get("networks") or {}
    named = dict(given) if isinstance(given, Mapping) else {str(n): {} for n in given}
    joined = not named or network_name(c.project) in named
    out = [{"Target": network_name(c.project), "Aliases": [c.definition]}] if joined else []
    for name, opts in named.items():
        if name != network_name(c.project):
            aliases = sorted({c.definition, *((opts or {}).get("aliases") or [])})
            out.append({"Target": name, "Aliases": aliases})
    return out


def networks_of(c: ContainerSpec) -> dict[str, str]:
    """The overlays a service joins that syncer makes: engine name → syncer.yaml's name (the
    project's is `default`; an external one is not here: it only has to exist)."""
    out = {}
    for n in _networks(c):
        name = n["Target"]
        if name == network_name(c.project):
            out[name] = L.DEFAULT_NETWORK
        elif name.startswith(f"{c.project}_"):
            out[name] = name[len(c.project) + 1:]
    return out


def _healthcheck(hc: Mapping[str, Any]) -> dict[str, Any]:
    if hc.get("disable"):
        return {"Test": ["NONE"]}
    test = list(hc.get("test", []))
    if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        test = ["CMD", *test]
    out: dict[str, Any] = {"Test": test}
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod"),
                     ("start_interval", "StartInterval")):
        if key in hc:
            out[api] = ns(hc[key])
    if "retries" in hc:
        out["Retries"] = int(hc["retries"])
    return out


def _mount(v: Mapping[str, Any]) -> dict[str, Any]:
    """A volume as a service Mount (Swarm mounts have no SELinux relabelling: not_on_swarm)."""
    if made_with_driver(v):
        return volume_mount(v)  # each node makes the volume with them (an NFS share, say)
    bind = bool(v.get("host_path"))
    out: dict[str, Any] = {"Type": "bind" if bind else "volume", "Target": v["mount_path"],
                           "ReadOnly": bool(v.get("read_only"))}
    source = v.get("host_path") or v.get("name")
    if source:
        out["Source"] = source
    if v.get("propagation"):
        out["BindOptions"] = {"Propagation": v["propagation"]}
    return out


def tasks_summary(running: int, wanted: int) -> str:
    """`2/2 tasks running`, for a plan's noop cause and the deployment log."""
    return f"{running}/{wanted} task(s) running"
