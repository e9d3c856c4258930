"""A server entry's `tls:` as the docker SDK's client TLS, its files checked first; and why an
engine was not reached (TLS or the connection), said in one short line (plain_reason)."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from syncer.core.errors import DockerUnavailable
from syncer.core.model import FileRef, Server

if TYPE_CHECKING:
    from docker.tls import TLSConfig


def tls_config(server: Server) -> TLSConfig | None:
    """The client TLS of a server entry, its files checked first. A problem names the server
    and the field; never the key's path (it may say where keys are kept)."""
    tls = server.tls
    if tls is None:
        return None
    ca, cert, key = (_tls_file(server.name, f, ref) for f, ref in
                     (("ca", tls.ca), ("cert", tls.cert), ("key", tls.key)))
    from docker.errors import DockerException
    from docker.tls import TLSConfig

    if not tls.verify:  # asked for in the entry: urllib3's warning on every request says nothing more
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    if cert and key:
        _pair(server.name, cert, key)
    try:
        return TLSConfig(client_cert=(cert, key) if cert and key else None, ca_cert=ca, verify=tls.verify)
    except DockerException:
        raise DockerUnavailable(f"server '{server.name}': tls: the certificate, key or CA file is unusable") from None


def _pair(server: str, cert: str, key: str) -> None:
    """The client certificate and key loaded together once, before any connection: a key that
    is not the certificate's (or a file that is no PEM) is said here in one line, not as the
    SDK's retries around OpenSSL's `[X509: KEY_VALUES_MISMATCH]` at the first request."""
    import ssl

    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key)
    except ssl.SSLError as e:
        why = "the key does not match the certificate" if "KEY_VALUES_MISMATCH" in str(e) \
            else "the certificate or key is not a usable PEM file"
        raise DockerUnavailable(f"server '{server}': tls: {why}") from None


def _tls_file(server: str, field: str, ref: FileRef | None) -> str | None:
    if ref is None:
        return None
    shown = "" if field == "key" else f" {ref.rel or '$' + ref.env}"
    if ref.env:
        path = os.environ.get(ref.env, "")
        if not path:
            raise DockerUnavailable(f"server '{server}': tls.{field}: the environment variable {ref.env} is not set")
    else:
        root = os.path.realpath(ref.root)
        path = os.path.realpath(os.path.join(root, ref.rel))
        if os.path.commonpath([root, path]) != root:  # a symlink out of the repository
            raise DockerUnavailable(f"server '{server}': tls.{field}:{shown} leads outside the repository")
    if not os.path.isfile(path):
        raise DockerUnavailable(f"server '{server}': tls.{field}:{shown} is not a readable file")
    return path


# what OpenSSL said, up to Python's `(_ssl.c:NNN)` or the end of the quoted message around it
_SSL = re.compile(r"\[(?:SSL|X509)[^\]]*\](?:(?!\s*\(_ssl\.c)[^\"])*")
_EOF = "EOF occurred in violation of protocol"  # the engine hung up mid-handshake: it refused this client
_CONNECT = re.compile(r"Failed to establish a new connection: ([^'\"]+)|Connection to \S+ timed out")


def plain_reason(text: str) -> str:
    """Why an engine was not reached, in one short line: a TLS failure as `TLS: ...`, a
    connection refused or timed out as the socket said it, without urllib3's wrapping
    (`HTTPConnectionPool(...): Max retries exceeded ... NewConnectionError(<object at 0x..>`)."""
    ssl = _SSL.search(text)
    if ssl:
        return "TLS: " + ssl.group(0).rstrip(" .")
    if _EOF in text:
        return "TLS: the engine ended the handshake (does it trust this client's certificate?)"
    connect = _CONNECT.search(text)
    if connect:
        return (connect.group(1) or connect.group(0)).strip()
    return text
