"""The one module that imports docker: a small adapter over the Engine API.

Reads are one filtered list call (never an inspect per container); writes are the few
calls apply needs. Every engine failure leaves as DockerUnavailable (unreachable) or
EngineError (the engine refused), with the engine's own message.

On a unix socket (the local engine, an ssh server's forwarded socket) the reads go through
`engine_http` and the docker SDK is imported only when a write, a stream or TLS needs it:
its import alone costs a no-op `plan`/`apply` about half of its time.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from syncer.adapters import engine_http
from syncer.adapters.container_args import InvalidSpec, create_args
from syncer.adapters.docker_tls import plain_reason, tls_config
from syncer.adapters.engine_rows import endpoints, ipam_config
from syncer.adapters.engine_rows import live_network as live_network  # (swarm.py finds it here)
from syncer.core.errors import DockerUnavailable, SyncerError
from syncer.core.model import LiveContainer, LiveNetwork, Server

HEALTH_RE = re.compile(r"\((healthy|unhealthy|health: starting)\)")
# An empty image syncer imports itself (nothing to pull): markers are made from it, never started
MARKER_IMAGE, MARKER_TAG = "syncer/marker", "1"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
FEW_NAMES = 8  # up to this many names are asked for by (anchored) name filters


class EngineError(SyncerError):
    """The engine refused a request; the message is the engine's."""


class Missing(EngineError):
    """The container or image does not exist."""


class Conflict(EngineError):
    """The name is taken (the engine answered 409)."""


def _failure(exc: Exception) -> tuple[Literal["refused", "unreachable", "other"], int]:
    """Whose failure: the engine's refusal (and its status), no engine, or neither (a bug)."""
    if isinstance(exc, engine_http.Refused):
        return "refused", exc.status
    if "docker" in sys.modules:  # only the SDK raises its own errors (it is imported for writes)
        from docker.errors import APIError, DockerException
        from requests.exceptions import RequestException

        if isinstance(exc, APIError):
            return "refused", exc.status_code or 500
        if isinstance(exc, (DockerException, RequestException)):
            return "unreachable", 0
    return ("unreachable", 0) if isinstance(exc, OSError) else ("other", 0)


# a Swarm manager passes its gRPC status along ("rpc error: code = Unknown desc = constraint
# expected one operator from ==, !="): the part after `desc =` is the message
_GRPC = re.compile(r"rpc error: code = \w+ desc = ")


def engine_message(exc: Exception) -> str:
    return _GRPC.sub("", str(getattr(exc, "explanation", None) or exc))  # the SDK's APIError explains


def _light_socket(url: str | None) -> str | None:
    """The socket the reads can use without the SDK: a unix socket and no TLS from the
    environment (DOCKER_TLS_VERIFY/DOCKER_CERT_PATH are the SDK's to read)."""
    if url is None:
        if os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH"):
            return None
        url = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    return engine_http.socket_path(url)


class Engine:
    """One Docker server."""

    def __init__(self, server: Server, *, timeout: int = 60) -> None:
        self.server, self.timeout = server, timeout
        url = server.docker
        if url is not None and url.startswith("ssh://"):
            from syncer.adapters import ssh  # only ssh servers pay for it

            url = ssh.local_url(server.name, url)  # OpenSSH forwards the engine's socket: no paramiko
        self.url = url
        self._sdk: Any = None
        self._made = False
        self._info: dict[str, Any] | None = None
        self.api_version = ""  # asked at once: every read's URL has it
        self.socket = path = None if server.tls is not None else _light_socket(url)
        # JSON over the unix socket without the SDK (None: TLS or tcp, where the SDK does all)
        self.light = None if path is None else engine_http.UnixClient(path, timeout=timeout)
        try:
            if self.light is not None:
                self.light.api_version = self.api_version = self.light.ping()
            self.reads: Any = self.light or self.api  # (the SDK's client asks the version itself)
        except (engine_http.Refused, OSError, KeyError, ValueError) as exc:
            raise DockerUnavailable(self._unreachable(exc)) from None
        self._made = True

    @property
    def info(self) -> dict[str, Any]:
        """The engine's /version (its version, API version, OS), asked once, when first needed."""
        self._info = self._info or dict(self._call("version", self.reads.version, api_version=False))
        return self._info

    @property
    def api(self) -> Any:
        """The docker SDK's client, made (and the SDK imported) on first use."""
        if self._sdk is None:
            self._sdk = self._make_sdk()
        return self._sdk

    def _make_sdk(self) -> Any:
        import docker
        from docker.errors import DockerException
        from requests.exceptions import RequestException

        url, known = self.url, self.api_version
        try:  # (DOCKER_TLS_VERIFY without the files DOCKER_CERT_PATH should hold: this server's failure)
            where = dict(docker.utils.kwargs_from_env()) if url is None else \
                {"base_url": url, "tls": tls_config(self.server)}
            api = docker.APIClient(**where, timeout=self.timeout,
                                   version=known or docker.constants.MINIMUM_DOCKER_API_VERSION)
            if str(api.base_url).startswith("http+docker://") or self.server.tls is not None:
                # a unix socket: no proxy applies, and requests would otherwise read every proxy
                # variable of the environment on each call (a sixth of a list call's CPU). With
                # `tls:`, the files the entry names must win: requests would otherwise check the
                # engine against REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE instead of the entry's CA.
                api.trust_env = False
            if not known:  # what version="auto" asks, kept whole (the engine's version for status)
                self._info = dict(api.version(api_version=False))
                api._version = self.api_version = str(self._info["ApiVersion"])
        except (DockerException, RequestException, OSError, KeyError) as exc:
            raise DockerUnavailable(self._unreachable(exc)) from None
        return api

    def _unreachable(self, exc: Exception) -> str:
        """One line naming the server: the TLS failure alone, or what ssh said, when that is why."""
        text = plain_reason(" ".join(str(exc).split()))
        if text.startswith("TLS: "):
            return f"server '{self.server.name}': {text}"
        url = self.server.docker or ""
        if not url.startswith("ssh://"):
            where = (f" at {self.socket}" if self.socket and isinstance(exc, OSError)
                     else f" at {url}" if url.startswith("tcp://") else "")
            return f"server '{self.server.name}': cannot reach Docker{where}: {text}"
        from syncer.adapters import ssh  # (imported already: the server is an ssh:// one)
        return (ssh.why(self.server.name, url, opened=self._made)
                or f"server '{self.server.name}': cannot reach Docker: {text}")

    def _reopen(self) -> tuple[bool, str]:
        """An ssh server's tunnel that had ended: (open again, why it could not) — ssh.reopen."""
        from syncer.adapters import ssh  # (only on a failure: the no-op pays nothing)
        url = self.server.docker or ""
        return ssh.reopen(self.server.name, url) if url.startswith("ssh://") and self._made else (False, "")

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DockerUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - sorted below; anything else goes on as it was
            if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):  # its socket was gone
                opened, why = self._reopen()
                if why:  # (said now: the sorting below would try ssh a second time)
                    raise DockerUnavailable(why) from None
                if opened:  # nothing reached the engine: once more, through the new tunnel
                    try:
                        return fn(*args, **kwargs)
                    except Exception as again:  # noqa: BLE001 - sorted below
                        exc = again
            raise self._sorted(what, exc) from None

    def _sorted(self, what: str, exc: Exception) -> Exception:
        """An engine failure as Missing/Conflict/EngineError (refused) or DockerUnavailable;
        any other exception is handed back as it is (not the engine's doing)."""
        who, status = _failure(exc)
        if who == "other":
            return exc
        if who == "unreachable":
            return DockerUnavailable(self._unreachable(exc))
        if status == 404:
            return Missing(f"{what}: {engine_message(exc)}")
        if status == 409:
            return Conflict(f"{what}: {engine_message(exc)}")
        return EngineError(f"{what}: {engine_message(exc)}")

    # --- reads -----------------------------------------------------------------------

    def list_project(self, project: str, definition: str | None = None) -> list[LiveContainer]:
        """Every container of the project (or of one of its definitions), all states: ONE
        list call."""
        wanted = [f"syncer.project={project}"] + ([f"syncer.definition={definition}"] if definition else [])
        rows = self._call("list containers", self.reads.containers, all=True, filters={"label": wanted})
        return [self._live(r) for r in rows]

    def list_names(self, names: list[str]) -> list[LiveContainer]:
        """Containers holding any of these exact names: one list call, matched here. Name
        filters only for a few: the engine matches each regex against every container (seconds
        for a thousand new definitions), so more are matched here in one unfiltered list."""
        if not names:
            return []
        wanted = set(names)
        # a few names (a self-heal's one container): anchored patterns cost the engine a
        # handful of matches, and the answer is a row or two instead of every container
        few = {"name": [f"^/{re.escape(n)}$" for n in sorted(wanted)]} if len(wanted) <= FEW_NAMES else None
        rows = self._call("list containers", self.reads.containers, all=True, filters=few)
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
            networks=tuple(sorted(attached := endpoints(row))), network_ids=attached,
            image=str(row.get("ImageID", "")), network_mode=str((row.get("HostConfig") or {}).get("NetworkMode", "")))

    def list_networks(self) -> list[LiveNetwork]:
        """Every network of the server: ONE list call (ours carry the project label; an
        external one only has to be there)."""
        rows = self._call("list networks", self.reads.networks)
        return [live_network(r) for r in rows]

    def create_network(self, name: str, labels: Mapping[str, str], *, internal: bool = False,
                       ipam: Sequence[Mapping[str, str]] = ()) -> str:
        """Create a user-defined bridge network (`internal`: with no route out of the host;
        `ipam`: its address pools, syncer.yaml's `{subnet, gateway, ip_range}`); its id."""
        result = self._call(f"create network {name}", self.api.create_network, name, driver="bridge",
                            labels=dict(labels), check_duplicate=True, internal=internal,
                            ipam=ipam_config(ipam) if ipam else None)
        return str(result.get("Id", ""))

    def remove_network(self, ident: str) -> None:
        """Remove a network (gone already is fine)."""
        try:
            self._call(f"remove network {ident}", self.api.remove_network, ident)
        except Missing:
            pass

    def put_archive(self, ident: str, data: bytes) -> None:
        """Write a tar archive (stages.files.archive) at / in a created container: files reach
        a remote server too, and before the start."""
        self._call(f"put files into {ident}", self.api.put_archive, ident, "/", data)

    def row(self, ident: str) -> dict[str, Any] | None:
        """The container list's row for one container id (None when it is gone): what a
        plan's list call will see, which can lag behind an event and behind `inspect`."""
        rows = self._call("list containers", self.reads.containers, all=True, filters={"id": [ident]})
        return next((dict(r) for r in rows if str(r.get("Id", "")).startswith(ident)), None)

    def inspect(self, ident: str) -> dict[str, Any]:
        """The engine's full record of one container."""
        return dict(self._call(f"inspect {ident}", self.reads.inspect_container, ident))

    def version(self) -> dict[str, Any]:
        """The engine's version record (also a reachability check)."""
        return dict(self._call("version", self.reads.version))

    # --- writes ----------------------------------------------------------------------

    def create(self, name: str, spec: Mapping[str, Any], labels: Mapping[str, str],
               secrets: Mapping[str, str]) -> str:
        """Create (not start) a container from a rendered spec; returns its id. The spec's own
        labels go beside syncer's (which win: the schema keeps users out of `syncer.`)."""
        try:
            kwargs = create_args(spec, secrets)
        except InvalidSpec as exc:
            raise EngineError(f"create {name}: {exc}") from None
        all_labels = {**kwargs.pop("labels", {}), **labels}
        host_config = self.api.create_host_config(**kwargs.pop("host_config"))
        networking = kwargs.pop("networking_config", None)
        start_interval = (kwargs.get("healthcheck") or {}).pop("start_interval", None)
        if start_interval is None:
            result = self._call(
                f"create {name}", self.api.create_container, name=name, labels=all_labels,
                host_config=host_config, networking_config=networking, **kwargs,
            )
        else:  # the SDK drops StartInterval (API 1.44+): add it to the config it builds
            platform = kwargs.pop("platform", None)
            config = self.api.create_container_config(labels=all_labels, host_config=host_config,
                                                      networking_config=networking, **kwargs)
            config["Healthcheck"]["StartInterval"] = start_interval
            result = self._call(f"create {name}", self.api.create_container_from_config, config, name, platform)
        return str(result["Id"])

    def create_marker(self, name: str, labels: Mapping[str, str], env: Mapping[str, str]) -> str:
        """Create a container that is never started: creating a name is atomic, so its name can
        be a lock, and its env is readable only by whoever may read containers' env.
        Raises Conflict when the name is taken."""
        args = {"name": name, "image": f"{MARKER_IMAGE}:{MARKER_TAG}", "command": ["syncer-marker"],
                "labels": dict(labels), "environment": dict(env),
                "host_config": self.api.create_host_config(network_mode="none")}
        try:
            result = self._call(f"create {name}", self.api.create_container, **args)
        except Missing:  # the marker image (the container is what we are creating)
            self._call("import the marker image", self.api.import_image_from_data, b"\0" * 1024,
                       repository=MARKER_IMAGE, tag=MARKER_TAG)  # an empty tar archive
            result = self._call(f"create {name}", self.api.create_container, **args)
        return str(result["Id"])

    def marker(self, name: str) -> dict[str, Any] | None:
        """A marker container's id, labels, env and creation time; None when there is none."""
        try:
            info = self.inspect(name)
        except Missing:
            return None
        config = info.get("Config") or {}
        env = dict(e.partition("=")[::2] for e in config.get("Env") or [])
        return {"id": info["Id"], "labels": config.get("Labels") or {}, "env": env, "created": info.get("Created")}

    def connect_networks(self, ident: str, networks: Mapping[str, Mapping[str, Any]]) -> None:
        """Attach a created container to its networks beyond the first (the API of Docker
        20.10 takes one network at create)."""
        for net in sorted(networks)[1:]:
            opts = networks[net]
            self._call(f"connect {ident} to {net}", self.api.connect_container_to_network, ident, net,
                       aliases=list(opts.get("aliases") or []) or None, ipv4_address=opts.get("ipv4_address"))

    def start(self, ident: str) -> None:
        """Start a container."""
        self._call(f"start {ident}", self.api.start, ident)

    def unpause(self, ident: str) -> None:
        """Resume a paused container."""
        self._call(f"unpause {ident}", self.api.unpause, ident)

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

    def events(self, project: str, *, since: int | None = None, until: float | None = None,
               also: Mapping[str, list[str]] | None = None) -> Iterator[dict[str, Any]]:
        """The engine's events for the project's containers (`also`: more filters), a stream, or up to `until`."""
        filters = {"label": [f"syncer.project={project}"], "type": ["container"], **(also or {})}
        yield from self._call("events", self.api.events, decode=True, since=since, until=until, filters=filters)

    def close(self) -> None:
        """Release the connections."""
        if self.light is not None:
            self.light.close()
        if self._sdk is not None:
            self._sdk.close()

    def stats(self, ident: str) -> dict[str, Any]:
        """One reading of a container's CPU and memory counters, at once (no streaming, no
        one-second wait: `precpu_stats` is empty, so CPU % needs the caller's previous reading)."""
        return dict(self._call(f"stats {ident}", self.api.stats, ident, stream=False, one_shot=True))

