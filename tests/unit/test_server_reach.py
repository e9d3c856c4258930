"""Reaching a server: the private dirs of `ssh://` tunnels' local sockets (one per URL for the
life of the process; those of syncer processes that were killed removed by the next), and
how a failure to reach an engine reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from syncer.adapters import ssh


def test_a_killed_processs_socket_dir_is_removed_and_a_live_ones_kept() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    dead = Path(tempfile.mkdtemp(prefix="syncer-ssh-"))
    (dead / "owner").write_text(str(gone.pid))
    (dead / "docker.sock").write_text("")  # (stale)
    live = Path(tempfile.mkdtemp(prefix="syncer-ssh-"))
    (live / "owner").write_text(str(os.getppid()))  # a running process (pytest's parent)
    unowned = Path(tempfile.mkdtemp(prefix="syncer-ssh-"))  # being made: no owner written yet
    made = Path(ssh._folder())
    try:
        assert not dead.exists() and live.exists() and unowned.exists()
        assert (made / "owner").read_text() == str(os.getpid()) and oct(made.stat().st_mode & 0o777) == "0o700"
    finally:
        for d in (live, unowned, made):
            shutil.rmtree(d, ignore_errors=True)


def test_a_failure_to_reach_an_engine_reads_as_one_short_line() -> None:
    """urllib3 wraps what went wrong (`HTTPSConnectionPool(...): Max retries exceeded ...
    (Caused by SSLError(...))`): a TLS failure reads whole (a hostname in quotes included),
    a handshake the engine ended names the likely cause, a refused or timed-out connection
    reads as the socket said it."""
    from syncer.adapters.docker_tls import plain_reason

    pool = "HTTPSConnectionPool(host='localhost', port=2376): Max retries exceeded with url: /v1.41/version"
    assert plain_reason(f"{pool} (Caused by SSLError(SSLCertVerificationError(1, \"[SSL: CERTIFICATE_VERIFY_FAILED]"
                        " certificate verify failed: Hostname mismatch, certificate is not valid for 'localhost'."
                        " (_ssl.c:1006)\")))") == ("TLS: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed:"
                                                  " Hostname mismatch, certificate is not valid for 'localhost'")
    assert plain_reason(f"{pool} (Caused by SSLError(SSLEOFError(8, 'EOF occurred in violation of protocol"
                        " (_ssl.c:2393)')))").startswith("TLS: the engine ended the handshake")
    assert plain_reason("HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with url: /version"
                        " (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f00>:"
                        " Failed to establish a new connection: [Errno 111] Connection refused'))"
                        ) == "[Errno 111] Connection refused"
    assert plain_reason("(Caused by ConnectTimeoutError(<urllib3.connection.HTTPConnection object at 0x7f>,"
                        " 'Connection to 10.0.0.9 timed out. (connect timeout=10)'))") == "Connection to 10.0.0.9 timed out"
    assert plain_reason(f"{pool} (Caused by SSLError(SSLError(116, '[X509: KEY_VALUES_MISMATCH] key values mismatch"
                        " (_ssl.c:3895)')))") == "TLS: [X509: KEY_VALUES_MISMATCH] key values mismatch"
    assert plain_reason("[Errno 2] No such file or directory") == "[Errno 2] No such file or directory"


def test_validate_finds_a_tls_file_missing_at_its_line_never_naming_the_path(tmp_path: Path) -> None:
    """It passed validate and surfaced at plan as the server being away ("bring the server back")."""
    import pytest

    from syncer.core.errors import InvalidProject
    from syncer.engine import facade as engine
    from tests.helpers import simple_repo

    repo = simple_repo(tmp_path / "r", "tlsv", extra="servers:\n  far:\n    docker: tcp://127.0.0.1:2376\n"
                       "    tls: {ca: certs/ca.pem, cert: certs/c.pem, key: certs/secret-key-name.pem}\n")
    (repo / "certs").mkdir()
    (repo / "certs/ca.pem").write_text("x")
    (repo / "certs/c.pem").write_text("x")
    with pytest.raises(InvalidProject) as exc:
        engine.validated(engine.Context(repo=repo, state_dir=tmp_path / "state"))
    assert exc.value.lines() == ["syncer.yaml:5:53: tls.key: no such file in the repository (a path inside it,"
                                 " or {env: VAR})"]
    (repo / "certs/secret-key-name.pem").write_text("x")
    engine.validated(engine.Context(repo=repo, state_dir=tmp_path / "state"))
