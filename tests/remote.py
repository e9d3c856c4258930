"""Real parts for remote servers: an OpenSSH server on a loopback port with its own host
key and an authorised client key (standing for an `ssh://` server), and certificates made
by `openssl` (a CA, a server certificate for 127.0.0.1, a client certificate) for a
`tcp://` server with TLS. Everything lives under one temp dir; `stop()` ends the sshd."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.helpers import free_port, wait_until

SSHD = "/usr/sbin/sshd"


def _run(*cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(cmd, check=True, capture_output=True, cwd=cwd)


def keygen(path: Path) -> Path:
    """An ed25519 key pair at `path` and `path.pub`, no passphrase."""
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "syncer-test", "-f", str(path))
    return path


class TestSshd:
    """`sshd -D` on 127.0.0.1:PORT; `config` is an ssh_config for SYNCER_SSH_CONFIG that
    trusts exactly this server's host key and offers the authorised client key."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="syncer-sshd-", dir="/tmp"))
        self.port = free_port()
        self.host_key = keygen(self.dir / "host_ed25519")
        self.client_key = keygen(self.dir / "client_ed25519")
        shutil.copy(self.dir / "client_ed25519.pub", self.dir / "authorized_keys")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # Debian's sshd insists on it
        (self.dir / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.dir}/authorized_keys\nPidFile {self.dir}/sshd.pid\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nStrictModes no\nAllowStreamLocalForwarding yes\nLogLevel VERBOSE\n")
        with open(self.dir / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                         stdout=log, stderr=log, start_new_session=True)
        wait_until(self._listens, timeout=20, message=f"sshd on 127.0.0.1:{self.port}")
        self.known_hosts(self.host_key)

    def _listens(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def known_hosts(self, key: Path) -> None:
        """Trust `key` as this server's host key (another key stands for a mismatch)."""
        pub = (key.parent / f"{key.name}.pub").read_text().split()
        (self.dir / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")

    def config(self, *, identity: Path | None = None) -> Path:
        """An ssh_config offering `identity` (default: the authorised key)."""
        path = self.dir / f"ssh_config-{(identity or self.client_key).name}"
        path.write_text(f"Host *\n  IdentityFile {identity or self.client_key}\n  IdentitiesOnly yes\n"
                        f"  UserKnownHostsFile {self.dir}/known_hosts\n  StrictHostKeyChecking yes\n"
                        "  GlobalKnownHostsFile /dev/null\n  IdentityAgent none\n")
        return path

    def url(self, remote_socket: Path) -> str:
        """The ssh:// URL of the engine listening on `remote_socket` behind this sshd."""
        return f"ssh://root@127.0.0.1:{self.port}?socket={remote_socket}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def make_certs(where: Path, name: str = "ca") -> dict[str, Path]:
    """A CA and, signed by it, a server certificate for IP 127.0.0.1 and a client certificate."""
    where.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _run("openssl", "req", "-x509", *ec, "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2",
         "-subj", f"/CN=syncer test {name}", cwd=where)
    out = {"ca": where / f"{name}.pem"}
    for who, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        _run("openssl", "req", *ec, "-keyout", f"{who}-key.pem", "-out", f"{who}.csr",
             "-subj", f"/CN=syncer test {who}", cwd=where)
        ext = where / f"{who}.ext"
        ext.write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        _run("openssl", "x509", "-req", "-in", f"{who}.csr", "-CA", f"{name}.pem", "-CAkey", f"{name}-key.pem",
             "-CAcreateserial", "-out", f"{who}.pem", "-days", "2", "-extfile", str(ext), cwd=where)
        out[who], out[f"{who}-key"] = where / f"{who}.pem", where / f"{who}-key.pem"
    return out
