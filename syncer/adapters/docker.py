"""The one module that imports docker: a small adapter over the Engine API.

Reads are one filtered list call (never an inspect per container); writes are the few
calls apply needs. Every engine failure leaves as DockerUnavailable (unreachable) or
EngineError (the engine refused), with the engine's own message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from requests.exceptions import RequestException

from syncer.core.errors import DockerUnavailable, SyncerError
from syncer.core.labels import reveal
from syncer.core.model import LiveContainer, Server

HEALTH_RE = re.compile(r"\((healthy|unhealthy|health: starting)\)")


class EngineError(SyncerError):
    """The engine refused a request; the message is the engine's."""


class Missing(EngineError):
    """The container or image does not exist."""


def _engine_message(exc: Exception) -> str:
    if isinstance(exc, APIError):
        return str(exc.explanation or exc)
    return str(exc)


class Engine:
    """One Docker server."""

    def __init__(self, server: Server, *, timeout: int = 60) -> None:
        self.server = server
        url = server.docker
        try:
            if url is None:
                self.api = docker.APIClient(**_env_kwargs(), timeout=timeout)
            else:
                self.api = docker.APIClient(base_url=url, timeout=timeout, use_ssh_client=url.startswith("ssh://"))
        except DockerException as exc:
            raise DockerUnavailable(f"server '{server.name}': cannot reach Docker: {exc}") from None
        if str(self.api.base_url).startswith("http+docker://"):
            # a unix socket: no proxy applies, and requests would otherwise read every proxy
            # variable of the environment on each call (a sixth of a list call's CPU)
            self.api.trust_env = False

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (NotFound, ImageNotFound) as exc:
            raise Missing(f"{what}: {_engine_message(exc)}") from None
        except APIError as exc:
            raise EngineError(f"{what}: {_engine_message(exc)}") from None
        except (DockerException, RequestException, OSError) as exc:
            raise DockerUnavailable(f"server '{self.server.name}': cannot reach Docker: {exc}") from None

    # --- reads -----------------------------------------------------------------------

    def list_project(self, project: str) -> list[LiveContainer]:
        """Every container of the project, all states: ONE list call."""
        rows = self._call("list containers", self.api.containers, all=True,
                          filters={"label": [f"syncer.project={project}"]})
        return [self._live(r) for r in rows]

    def list_names(self, names: list[str]) -> list[LiveContainer]:
        """Containers holding any of these exact names: one unfiltered list, matched here.

        Not `name` filters: the engine compiles each as a regex against every container,
        which grows as names x containers (seconds for a thousand new definitions).
        """
        if not names:
            return []
        wanted = set(names)
        rows = self._call("list containers", self.api.containers, all=True)
        return [self._live(r) for r in rows if any(n.lstrip("/") in wanted for n in r.get("Names") or [])]

    def _live(self, row: Mapping[str, Any]) -> LiveContainer:
        names = row.get("Names") or ["/"]
        status = row.get("Status", "")
        match = HEALTH_RE.search(status)
        health = None
        if match:
            health = "starting" if match.group(1) == "health: starting" else match.group(1)
        return LiveContainer(
            id=row["Id"], name=names[0].lstrip("/"), server=self.server.name,
            state=row.get("State", ""), health=health, labels=row.get("Labels") or {},
            created=int(row.get("Created", 0)), status=status,
        )

    def inspect(self, ident: str) -> dict[str, Any]:
        """The engine's full record of one container."""
        return dict(self._call(f"inspect {ident}", self.api.inspect_container, ident))

    def version(self) -> dict[str, Any]:
        """The engine's version record (also a reachability check)."""
        return dict(self._call("version", self.api.version))

    def has_image(self, image: str) -> bool:
        """True when the image is present locally."""
        try:
            self._call(f"image {image}", self.api.inspect_image, image)
            return True
        except Missing:
            return False

    def pull(self, image: str) -> Iterator[str]:
        """Pull an image, yielding progress lines."""
        repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        stream = self._call(f"pull {image}", self.api.pull, repo, tag=tag, stream=True, decode=True)
        try:
            for event in stream:
                if "error" in event:
                    raise EngineError(f"pull {image}: {event['error']}")
                if event.get("status"):
                    yield f"{event.get('id', '')} {event['status']} {event.get('progress', '')}".strip()
        except (APIError, RequestException) as exc:
            raise EngineError(f"pull {image}: {_engine_message(exc)}") from None

    # --- writes ----------------------------------------------------------------------

    def create(self, name: str, spec: Mapping[str, Any], labels: Mapping[str, str],
               secrets: Mapping[str, str]) -> str:
        """Create (not start) a container from a rendered spec; returns its id."""
        kwargs = create_args(spec, secrets)
        host_config = self.api.create_host_config(**kwargs.pop("host_config"))
        networking = kwargs.pop("networking_config", None)
        result = self._call(
            f"create {name}", self.api.create_container, name=name, labels=dict(labels),
            host_config=host_config, networking_config=networking, **kwargs,
        )
        return str(result["Id"])

    def connect_networks(self, ident: str, networks: list[str]) -> None:
        """Attach a created container to its extra networks."""
        for net in networks[1:]:
            self._call(f"connect {ident} to {net}", self.api.connect_container_to_network, ident, net)

    def start(self, ident: str) -> None:
        """Start a container."""
        self._call(f"start {ident}", self.api.start, ident)

    def stop(self, ident: str, *, timeout: int = 10) -> None:
        """Stop a container (SIGTERM, then SIGKILL after `timeout`)."""
        self._call(f"stop {ident}", self.api.stop, ident, timeout=timeout)

    def restart(self, ident: str, *, timeout: int = 10) -> None:
        """Restart a container."""
        self._call(f"restart {ident}", self.api.restart, ident, timeout=timeout)

    def remove(self, ident: str, *, volumes: bool = False) -> None:
        """Remove a container, forcefully; anonymous volumes only with `volumes`."""
        try:
            self._call(f"remove {ident}", self.api.remove_container, ident, force=True, v=volumes)
        except Missing:
            pass

    def remove_volume(self, name: str) -> None:
        """Remove a named volume (only ever when the user asked for it)."""
        try:
            self._call(f"remove volume {name}", self.api.remove_volume, name)
        except Missing:
            pass

    def rename(self, ident: str, name: str) -> None:
        """Give a container a new name."""
        self._call(f"rename {ident}", self.api.rename, ident, name)

    def logs(self, ident: str, *, tail: int = 100, since: int | None = None) -> str:
        """A container's recent output; lines after `since` (unix seconds) when it is above 0
        (docker-py refuses 0 and below: from the epoch on is every line)."""
        since = since if since is not None and since > 0 else None
        data = self._call(f"logs {ident}", self.api.logs, ident, tail=tail, since=since, timestamps=True)
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def events(self, project: str, *, since: int | None = None) -> Iterator[dict[str, Any]]:
        """The engine's event stream for the project's containers."""
        stream = self._call("events", self.api.events, decode=True, since=since,
                            filters={"label": [f"syncer.project={project}"], "type": ["container"]})
        yield from stream

    def close(self) -> None:
        """Release the connection pool."""
        self.api.close()

    def stats(self, ident: str) -> dict[str, Any]:
        """One reading of a container's CPU and memory counters, at once (no streaming, no
        one-second wait: `precpu_stats` is empty, so CPU % needs the caller's previous reading)."""
        return dict(self._call(f"stats {ident}", self.api.stats, ident, stream=False, one_shot=True))


def _env_kwargs() -> dict[str, Any]:
    return dict(docker.utils.kwargs_from_env())


_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_DURATION_RE = re.compile(r"([0-9.]+)(ns|us|ms|s|m|h)")
_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def memory_bytes(value: Any) -> int:
    """`512m` → bytes."""
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"([0-9.]+)([bkmgBKMG]?)", str(value).strip())
    if not m:
        raise EngineError(f"invalid memory size {value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def duration_ns(value: Any) -> int:
    """`10s`, `1m30s` or seconds as an integer → nanoseconds."""
    if isinstance(value, (int, float)):
        return int(value * 10**9)
    total = sum(int(float(n) * _NS[u]) for n, u in _DURATION_RE.findall(str(value)))
    return total


def create_args(spec: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """The docker-py create_container arguments for a rendered spec, secrets revealed."""
    env = {k: reveal(v, secrets) for k, v in spec.get("env", {}).items()}
    host: dict[str, Any] = {}
    args: dict[str, Any] = {"image": spec["image"], "environment": env, "detach": True}
    for key in ("command", "entrypoint"):
        if key in spec:
            args[key] = [reveal(a, secrets) for a in spec[key]]
    if spec.get("user"):
        args["user"] = spec["user"]
    if spec.get("working_dir"):
        args["working_dir"] = spec["working_dir"]
    _ports_args(spec.get("ports", []), args, host)
    _volume_args(spec.get("volumes", []), args, host)
    _resource_args(spec, host)
    if "healthcheck" in spec:
        args["healthcheck"] = _healthcheck_args(spec["healthcheck"])
    networks = spec.get("networks", [])
    if networks:
        host["network_mode"] = networks[0]
    args["host_config"] = host
    return args


def _ports_args(ports: list[Mapping[str, Any]], args: dict[str, Any], host: dict[str, Any]) -> None:
    if not ports:
        return
    exposed, bindings = [], {}
    for p in ports:
        key = f"{p['container_port']}/{p.get('protocol', 'tcp')}"
        exposed.append((p["container_port"], p.get("protocol", "tcp")))
        hp = p.get("host_port")
        bindings[key] = (p["host_ip"], hp) if p.get("host_ip") else hp
    args["ports"] = exposed
    host["port_bindings"] = bindings


def _volume_args(volumes: list[Mapping[str, Any]], args: dict[str, Any], host: dict[str, Any]) -> None:
    if not volumes:
        return
    binds = []
    for v in volumes:
        source = v.get("host_path") or v["name"]
        binds.append(f"{source}:{v['mount_path']}:{'ro' if v.get('read_only') else 'rw'}")
    args["volumes"] = [v["mount_path"] for v in volumes]
    host["binds"] = binds


def _resource_args(spec: Mapping[str, Any], host: dict[str, Any]) -> None:
    res = spec.get("resources", {})
    if "memory" in res:
        host["mem_limit"] = memory_bytes(res["memory"])
    if "cpus" in res:
        host["nano_cpus"] = int(float(res["cpus"]) * 10**9)
    restart = spec.get("restart")
    if restart and restart != "no":
        name, _, count = restart.partition(":")
        host["restart_policy"] = {"Name": name, "MaximumRetryCount": int(count or 0)}


def _healthcheck_args(hc: Mapping[str, Any]) -> dict[str, Any]:
    test = list(hc["test"])
    if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        test = ["CMD", *test]
    out: dict[str, Any] = {"test": test}
    for key, api_key in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start_period")):
        if key in hc:
            out[api_key] = duration_ns(hc[key])
    if "retries" in hc:
        out["retries"] = int(hc["retries"])
    return out
