"""Host ports two containers on one server would both publish: a validation error, not a
failed apply ("port is already allocated") after other containers already changed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from syncer.core.model import Definition, Located, Server, Template
from syncer.stages import expr
from syncer.stages.policy import context, written

WILDCARDS = ("", "0.0.0.0", "::")


def published(tpl: Template, d: Definition, server: Server) -> Iterator[tuple[Located, tuple[Any, ...], str, int, str]]:
    """(document, path, host_ip, host_port, protocol) of each fixed host port a definition
    publishes, located where it is written (an ephemeral or unset host port is left out)."""
    found = written(tpl, d, "ports", context(tpl, d, server))
    if found is None or not isinstance(found[2], list):
        return
    origin, prefix, ports = found
    raw = written(tpl, d, "ports", None)
    as_written = raw[2] if raw is not None and isinstance(raw[2], list) and len(raw[2]) == len(ports) else None
    for i, port in enumerate(ports):
        parsed = _parse(port)
        if parsed is None or parsed[1] <= 0:
            continue
        param = _param(as_written[i] if as_written else None, d)
        if param is not None:  # the port is the definition's param: point there
            yield d.origin, ("params", param), *parsed
        else:
            yield origin, (*prefix, i), *parsed


def _param(port: Any, d: Definition) -> str | None:
    """The param a written `host_port: ${inputs.NAME}` takes its value from, if the
    definition gives it."""
    host = port.get("host_port") if isinstance(port, Mapping) else None
    name = expr.whole(host) if isinstance(host, str) else None
    if name is not None and name.startswith("inputs.") and name[7:] in d.params:
        return name[7:]
    return None


def _parse(port: Any) -> tuple[str, int, str] | None:
    """(host_ip, host_port, protocol) of a long or short port form; None without a host port."""
    if isinstance(port, Mapping):
        host = port.get("host_port")
        protocol = str(port.get("protocol") or "tcp")
        ip = str(port.get("host_ip") or "")
    elif isinstance(port, (str, int)):
        text, _, protocol = str(port).partition("/")
        protocol = protocol or "tcp"
        ip, host = "", None
        if text.startswith("["):  # [::1]:53:53
            ip, _, text = text[1:].partition("]:")
        parts = text.rsplit(":", 2) if not ip else text.split(":")
        if len(parts) == 3:
            ip, host = parts[0], parts[1]
        elif len(parts) == 2:
            host = parts[0]
    else:
        return None
    try:
        number = int(str(host))
    except ValueError:
        return None  # a range, or a value the schema reports
    return ip, number, protocol


def clashes(entries: list[tuple[str, Located, tuple[Any, ...], str, int, str]]
            ) -> Iterator[tuple[tuple[str, Located, tuple[Any, ...]], tuple[str, Located, tuple[Any, ...]], str]]:
    """For entries (definition, document, path, host_ip, port, protocol) of ONE server: each
    entry whose port an earlier entry already publishes (same protocol, same address or a
    wildcard address on either side), with that earlier entry and the port as words."""
    taken: dict[tuple[int, str], list[tuple[str, str, Located, tuple[Any, ...]]]] = {}
    for name, origin, path, ip, port, protocol in entries:
        for other_name, other_ip, other_origin, other_path in taken.get((port, protocol), []):
            if ip == other_ip or ip in WILDCARDS or other_ip in WILDCARDS:
                where = f"{ip}:" if ip not in WILDCARDS else ""
                yield (name, origin, path), (other_name, other_origin, other_path), f"{where}{port}/{protocol}"
                break
        else:
            taken.setdefault((port, protocol), []).append((name, ip, origin, path))
