"""engine_http's writes: JSON sent once, never on a kept-alive connection the engine closed."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from syncer.adapters.engine_http import UnixClient


class _OneAnswerPerConnection:
    """A unix-socket 'engine' that answers each connection's first request (keep-alive, as far
    as the client can tell) and then closes it, as an engine's idle timeout does."""

    def __init__(self, path: Path) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.requests: list[tuple[str, bytes]] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append((head.split(b"\r\n")[0].decode(), body))
                answer = json.dumps({"ID": f"n{len(self.requests)}"}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))

    def close(self) -> None:
        self.server.close()


def test_a_write_goes_once_on_a_fresh_connection_when_the_engine_closed_the_kept_alive_one(tmp_path: Path) -> None:
    engine = _OneAnswerPerConnection(tmp_path / "e.sock")
    client = UnixClient(str(tmp_path / "e.sock"), timeout=5)
    try:
        idle = threading.Event().wait
        assert client.ping() == "1.41"
        idle(0.05)  # the engine has closed the idle connection by now
        assert client.post("/services/create", {"Name": "web"}) == {"ID": "n2"}
        idle(0.05)
        assert client.post("/configs/create", {"Name": "c"}) == {"ID": "n3"}
        idle(0.05)
        client.delete("/services/web")
    finally:
        client.close()
        engine.close()
    assert [line.split()[:2] for line, _ in engine.requests] == [
        ["GET", "/_ping"], ["POST", "/services/create"], ["POST", "/configs/create"], ["DELETE", "/services/web"]]
    assert json.loads(engine.requests[1][1]) == {"Name": "web"}  # the body as given, once
    assert engine.connections == 4


def test_a_twin_asks_the_same_engine_at_the_same_api_version_on_a_connection_of_its_own(tmp_path: Path) -> None:
    engine = _OneAnswerPerConnection(tmp_path / "e.sock")
    client = UnixClient(str(tmp_path / "e.sock"), timeout=5)
    try:
        client.api_version = client.ping()
        twin = client.twin()
        try:
            assert (twin.path, twin.timeout, twin.api_version) == (client.path, client.timeout, "1.41")
            assert twin._conn is None and twin._lock is not client._lock
            twin.inspect_distribution("reg:5000/app:1")
        finally:
            twin.close()
    finally:
        client.close()
        engine.close()
    assert [line.split()[:2] for line, _ in engine.requests] == [
        ["GET", "/_ping"], ["GET", "/v1.41/distribution/reg:5000/app:1/json"]]
