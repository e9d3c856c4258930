"""The engine reader's own HTTP/1.1 (no `http.client`: it imports `email` and `ssl`, 20 ms of
every no-op): answers with a length, in chunks, to the end of the connection, a kept-alive
connection the engine closed (asked once more), an error status, and a reply that is not HTTP."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncer.adapters.engine_http import Refused, UnixReader


class FakeEngine:
    """A unix socket that answers each request with the next scripted reply; a reply of
    None closes the connection without answering (an engine that dropped a kept-alive one)."""

    def __init__(self, path: Path, replies: list[bytes | None]) -> None:
        self.replies, self.requests, self.connections = list(replies), list[str](), 0
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.replies:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as f:
                while self.replies:
                    request = b""
                    while not request.endswith(b"\r\n\r\n"):
                        line = f.readline()
                        if not line:
                            break
                        request += line
                    if not request:
                        break
                    self.requests.append(request.split(b"\r\n", 1)[0].decode())
                    reply = self.replies.pop(0)
                    if reply is None:
                        break
                    conn.sendall(reply)
                    if b"Connection: close" in reply:
                        break

    def close(self) -> None:
        self.server.close()


Make = Callable[..., tuple[FakeEngine, UnixReader]]


@pytest.fixture
def engine_at(tmp_path: Path) -> Iterator[Make]:
    made: list[FakeEngine] = []

    def make(*replies: bytes | None) -> tuple[FakeEngine, UnixReader]:
        fake = FakeEngine(tmp_path / f"e{len(made)}.sock", list(replies))
        made.append(fake)
        return fake, UnixReader(str(tmp_path / f"e{len(made) - 1}.sock"), timeout=5)

    yield make
    for fake in made:
        fake.close()


def _length(doc: object, extra: str = "") -> bytes:
    body = json.dumps(doc).encode()
    return f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body


def _chunked(doc: object) -> bytes:
    body = json.dumps(doc).encode()
    parts = [body[:5], body[5:]]
    chunks = b"".join(f"{len(p):x};ext=1\r\n".encode() + p + b"\r\n" for p in parts)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: y\r\n\r\n"


def test_length_chunks_and_to_the_end_over_one_kept_alive_connection(engine_at: Make) -> None:
    big = [{"Id": str(i), "Names": [f"/c{i}"]} for i in range(200)]
    fake, reader = engine_at(_length({"ApiVersion": "1.41"}), _chunked(big),
                             b"HTTP/1.1 200 OK\r\n\r\n" + json.dumps([{"Name": "n"}]).encode())
    assert reader.version(api_version=False) == {"ApiVersion": "1.41"}
    reader.api_version = "1.41"
    assert reader.containers(all=True) == big
    assert reader.networks(names=["n"]) == [{"Name": "n"}]
    assert fake.connections == 1  # kept alive until an answer without a length
    assert fake.requests[0] == "GET /version HTTP/1.1"
    assert fake.requests[1] == "GET /v1.41/containers/json?all=1 HTTP/1.1"
    assert fake.requests[2].startswith("GET /v1.41/networks?filters=")
    assert reader._conn is None  # the last answer ran to the end of its connection: not reused


def test_a_kept_alive_connection_the_engine_closed_is_asked_once_more(engine_at: Make) -> None:
    fake, reader = engine_at(_length({"ApiVersion": "1.41"}), None, _length([{"Id": "a"}]))
    reader.version(api_version=False)
    assert reader.containers() == [{"Id": "a"}]
    assert fake.connections == 2


def test_connection_close_is_honoured(engine_at: Make) -> None:
    fake, reader = engine_at(_length({"ApiVersion": "1.41"}, "Connection: close\r\n"), _length([]))
    reader.version(api_version=False)
    assert reader._conn is None
    assert reader.containers() == []
    assert fake.connections == 2


def test_an_error_status_is_refused_with_the_engines_message(engine_at: Make) -> None:
    body = b'{"message": "No such container: x"}'
    _, reader = engine_at(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    with pytest.raises(Refused) as err:
        reader.inspect_container("x")
    assert (err.value.status, str(err.value)) == (404, "No such container: x")


@pytest.mark.parametrize("reply", [b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n{}",
                                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
def test_a_reply_that_is_not_http_is_an_oserror(engine_at: Make, reply: bytes) -> None:
    _, reader = engine_at(reply)
    with pytest.raises(OSError):
        reader.version(api_version=False)
    assert reader._conn is None
