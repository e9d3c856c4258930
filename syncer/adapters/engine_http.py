"""Requests of JSON to an engine on a unix socket, with the standard library only.

`import docker` costs a process about 0.15 s (requests, urllib3, its API mixins), more than
everything else a no-op `plan` or `apply` does. The reads those commands make are plain GETs
of JSON over the engine's unix socket (also an ssh server's, which OpenSSH forwards to a
local socket), so `adapters.docker.Engine` makes them here and builds the SDK's client only
when it has to stream, speak TLS or make a container (whose body the SDK builds). The Swarm
adapter's writes (services, networks, configs, secrets) send the Engine API's own JSON, which
`post`/`delete` carry as they are. The answers are the engine's JSON as the SDK returns it;
failures leave as `Refused` (the engine answered an error) or `OSError` (unreachable).
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode


class Refused(Exception):
    """The engine answered with an error status; `status` and the engine's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def socket_path(url: str) -> str | None:
    """The socket's path of a `unix://` engine URL; None for any other kind."""
    if url.startswith("unix://"):
        return url[len("unix://"):] or None
    if url.startswith("/"):
        return url
    return None


class UnixClient:
    """The GETs an observation makes, with the method names and answers of the SDK's client,
    and `post`/`delete` of JSON for writes. One kept-alive connection, one request at a time
    (a lock: pooled engines are shared)."""

    def __init__(self, path: str, *, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self.api_version = ""  # set from the engine's /_ping
        self._conn: _UnixConnection | None = None
        self._lock = threading.Lock()

    def _get(self, path: str, query: Mapping[str, Any] | None = None, *, versioned: bool = True) -> Any:
        body = self._request(path, query, versioned=versioned)[1]
        return json.loads(body) if body else None

    def _request(self, path: str, query: Mapping[str, Any] | None = None, *, versioned: bool = True,
                 method: str = "GET", body: Any = None) -> tuple[http.client.HTTPResponse, bytes]:
        url = (f"/v{self.api_version}" if versioned and self.api_version else "") + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None})
        payload = None if body is None else json.dumps(body).encode()
        headers = {} if payload is None else {"Content-Type": "application/json"}
        with self._lock:
            if method != "GET" and self._conn is not None and _dropped(self._conn):
                self.close_locked()  # a write is sent once: never on a connection the engine closed
            for attempt in (0, 1):
                fresh = self._conn is None
                if self._conn is None:
                    self._conn = _UnixConnection(self.path, self.timeout)
                try:
                    self._conn.request(method, url, body=payload, headers=headers)
                    resp = self._conn.getresponse()
                    data = resp.read()
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    self.close_locked()
                    if fresh or attempt or method != "GET":  # a kept-alive GET the engine had closed: once more
                        raise
                except BaseException:
                    self.close_locked()
                    raise
        if resp.status >= 400:
            raise Refused(resp.status, _message(data, resp.status))
        return resp, data

    def twin(self) -> UnixClient:
        """A client of the same engine on a connection of its own (requests in parallel)."""
        other = UnixClient(self.path, timeout=self.timeout)
        other.api_version = self.api_version
        return other

    def events(self, filters: Mapping[str, Any], *, since: int) -> EventStream:
        """`GET /events` from `since` (unix seconds) on, on a connection of its own."""
        return EventStream(self, f"/v{self.api_version}/events?"
                           + urlencode({"since": since, "filters": _filters(filters)}))

    def post(self, path: str, body: Any = None, query: Mapping[str, Any] | None = None) -> Any:
        """`POST` the JSON `body`; the engine's JSON answer (None when it sends none)."""
        data = self._request(path, query, method="POST", body=body if body is not None else {})[1]
        return json.loads(data) if data else None

    def delete(self, path: str) -> None:
        """`DELETE` a resource."""
        self._request(path, method="DELETE")

    def close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    # --- the SDK's names -------------------------------------------------------------

    def ping(self) -> str:
        """The engine's API version, from the headers of `GET /_ping`: what the docker CLI
        negotiates with (a /version costs the engine ~7 ms, a ping ~0.4 ms)."""
        resp = self._request("/_ping", versioned=False)[0]
        version = resp.getheader("Api-Version")
        if not version:
            raise ValueError("the engine's /_ping did not say its API version")
        return version

    def version(self, api_version: bool = True) -> dict[str, Any]:
        return dict(self._get("/version", versioned=api_version))

    def containers(self, all: bool = False, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self._get("/containers/json", {"all": 1 if all else None, "filters": _filters(filters)}))

    def inspect_container(self, ident: str) -> dict[str, Any]:
        return dict(self._get(f"/containers/{quote(ident, safe='')}/json"))

    def inspect_image(self, image: str) -> dict[str, Any]:
        return dict(self._get(f"/images/{quote(image, safe='/:@')}/json"))

    def inspect_distribution(self, image: str) -> dict[str, Any]:
        """What the image's registry says of it (its manifest's Descriptor), asked by the engine
        without credentials (with a docker login, the SDK's client asks: it sends them)."""
        return dict(self._get(f"/distribution/{quote(image, safe='/:@')}/json"))

    def networks(self, names: list[str] | None = None,
                 filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        wanted = {**(filters or {}), **({"name": names} if names else {})}
        return list(self._get("/networks", {"filters": _filters(wanted or None)}))

    def volumes(self, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return dict(self._get("/volumes", {"filters": _filters(filters)}))

    def services(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self._get("/services", {"filters": _filters(filters)}))

    def inspect_service(self, ident: str) -> dict[str, Any]:
        return dict(self._get(f"/services/{quote(ident, safe='')}"))

    def tasks(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self._get("/tasks", {"filters": _filters(filters)}))

    def nodes(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self._get("/nodes", {"filters": _filters(filters)}))

    def configs(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self._get("/configs", {"filters": _filters(filters)}))

    def secrets(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return list(self._get("/secrets", {"filters": _filters(filters)}))


class EventStream:
    """The engine's events, one JSON object a line, as they happen; `close()` from another
    thread ends the iteration (it shuts the socket the reader blocks on)."""

    def __init__(self, client: UnixClient, url: str) -> None:
        self._conn = _UnixConnection(client.path, client.timeout)
        self._conn.timeout = None  # (an event may be minutes away: only close() ends the wait)
        self._conn.request("GET", url)
        self._resp = self._conn.getresponse()
        if self._resp.status >= 400:
            data = self._resp.read()
            self._conn.close()
            raise Refused(self._resp.status, _message(data, self._resp.status))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while line := self._resp.readline():
            if line.strip():
                yield json.loads(line)

    def close(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()


def _dropped(conn: _UnixConnection) -> bool:
    """True when an idle kept-alive connection was closed by the engine (readable at EOF)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _filters(filters: Mapping[str, Any] | None) -> str | None:
    if not filters:
        return None
    return json.dumps({k: v if isinstance(v, list) else [v] for k, v in filters.items()})


def _message(body: bytes, status: int) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip() or f"HTTP {status}"
