"""Host ports published twice on one server are a validation error (issue 12, point 10).
Through validate: tests/cases/bad/host-port-published-twice. Here: the port forms of the
spec table (long and short) and the clash rule, on data."""

from __future__ import annotations

import pytest

from syncer.core.model import Located
from syncer.stages.ports import _parse, clashes


@pytest.mark.parametrize(("port", "parsed"), [
    ({"container_port": 80, "host_port": 8080}, ("", 8080, "tcp")),
    ({"container_port": 53, "host_port": 53, "protocol": "udp", "host_ip": "127.0.0.1"}, ("127.0.0.1", 53, "udp")),
    ({"container_port": 80}, None),
    ("8080:80", ("", 8080, "tcp")),
    ("127.0.0.1:53:53/udp", ("127.0.0.1", 53, "udp")),
    ("[::1]:8443:443", ("::1", 8443, "tcp")),
    ("80", None),
    ("8000-8010:80-90", None),
])
def test_port_forms(port: object, parsed: tuple[str, int, str] | None) -> None:
    assert _parse(port) == parsed


def _entry(name: str, ip: str, port: int, protocol: str = "tcp") -> tuple[str, Located, tuple[object, ...], str, int, str]:
    return name, Located(f"{name}.yaml", 0), ("ports", 0), ip, port, protocol


def test_same_port_clashes_on_same_address_or_a_wildcard_only() -> None:
    entries = [_entry("a", "", 80), _entry("b", "127.0.0.1", 80), _entry("c", "127.0.0.1", 80, "udp"),
               _entry("d", "10.0.0.1", 81), _entry("e", "10.0.0.2", 81), _entry("f", "0.0.0.0", 81)]
    found = [(mine[0], other[0], port) for mine, other, port in clashes(entries)]
    assert found == [("b", "a", "127.0.0.1:80/tcp"), ("f", "d", "81/tcp")]
