"""`ssh://` servers through the system's OpenSSH (its config, agent and known_hosts).

No SSH library: `ssh -L` forwards the remote engine's socket to a local unix socket in a
private temp dir, and the Docker client talks to that as `unix://`. One tunnel per URL per
process, opened on first use and closed at exit (or when this process dies: the tunnel's
keeper shell reads our end of a pipe and kills ssh on EOF).

URL: `ssh://[USER@]HOST[:PORT][?socket=/remote/docker.sock]`; the remote socket defaults
to /var/run/docker.sock. `SYNCER_SSH_CONFIG` names an ssh_config file passed as `-F`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from syncer.adapters.lock import gone
from syncer.core.errors import DockerUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"
CONFIG_ENV = "SYNCER_SSH_CONFIG"
# ssh runs under a keeper shell that kills it when our end of the shell's stdin closes (we
# exit or die) and otherwise exits with ssh's status (an auth or host key failure). A
# background job's stdin is /dev/null, hence the pipe kept on fd 3 for the reader.
_KEEPER = ('exec 3<&0; ssh "$@" </dev/null & pid=$!; (read _ <&3; kill $pid 2>/dev/null) & reader=$!; '
           'wait $pid; status=$?; kill $reader 2>/dev/null; exit $status')


@dataclass(frozen=True)
class Target:
    """Where an ssh:// URL points: the ssh destination and the remote engine's socket."""

    destination: str
    port: int | None
    socket: str


def parse(url: str) -> Target:
    """`ssh://user@host:2222?socket=/run/docker.sock` -> Target."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"no host in {url!r}")
    user = f"{parts.username}@" if parts.username else ""
    socket = parse_qs(parts.query).get("socket", [""])[0] or DEFAULT_SOCKET
    return Target(user + host, parts.port, socket)


class _Tunnel:
    """One running `ssh -L LOCAL:REMOTE` and the private dir holding LOCAL."""

    def __init__(self, server: str, target: Target, *, timeout: float, folder: str) -> None:
        # 0700 (mkdtemp): the socket is only ours. A URL keeps its folder for the life of the
        # process, so clients made before (the API server keeps them) reach a tunnel opened
        # again at the same path — also after attempts that failed while the server was away.
        self.dir = folder
        self.local = os.path.join(self.dir, "docker.sock")
        self.errors = os.path.join(self.dir, "ssh.err")
        for stale in (self.local, self.errors):
            if os.path.exists(stale):
                os.unlink(stale)
        cmd = ["-nNT", "-o", "ExitOnForwardFailure=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
               "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3",
               "-L", f"{self.local}:{target.socket}"]
        config = os.environ.get(CONFIG_ENV)
        if config:
            cmd += ["-F", config]
        if target.port is not None:
            cmd += ["-p", str(target.port)]
        with open(self.errors, "wb") as err:  # a file, not a pipe: nobody drains ssh's stderr later
            self.proc = subprocess.Popen(["sh", "-c", _KEEPER, "sh", *cmd, "--", target.destination],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        self._wait(server, timeout)

    def _wait(self, server: str, timeout: float) -> None:
        # ssh binds the local socket only once it has authenticated and the forward is set up
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.local):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = self.last_error() or ("timed out" if self.proc.poll() is None else "ssh exited")
                self.close(keep_folder=True)  # (the URL's: the next attempt uses it again)
                raise DockerUnavailable(f"server '{server}': ssh: {why.removeprefix('ssh: ')}")
            time.sleep(0.02)

    def alive(self) -> bool:
        """True while ssh runs."""
        return self.proc.poll() is None

    def last_error(self) -> str:
        """ssh's last complaint, one line (warnings about adding known hosts skipped)."""
        try:
            with open(self.errors, encoding="utf-8", errors="replace") as f:
                lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("Warning: Permanently added")]
        except OSError:
            return ""
        return lines[-1].rstrip(".") if lines else ""

    def close(self, *, keep_folder: bool = False) -> None:
        """Stop ssh and remove the socket's dir (unless it is about to be used again)."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()  # the keeper kills ssh
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if not keep_folder:
            shutil.rmtree(self.dir, ignore_errors=True)


_tunnels: dict[str, _Tunnel] = {}
_folders: dict[str, str] = {}  # URL → the private dir of its local socket, kept while the process runs
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()
_OWNER = "owner"  # the pid of the process a folder belongs to (a killed one's is removed by the next)


def local_url(server: str, url: str, *, timeout: float = 20.0) -> str:
    """The `unix://` URL of a local socket forwarded to the server's engine; opens the tunnel
    on first use (and again if ssh ended). DockerUnavailable, naming the server, when ssh fails."""
    try:
        target = parse(url)
    except ValueError as exc:
        raise DockerUnavailable(f"server '{server}': {exc}") from None
    with _guard:
        lock = _locks.setdefault(url, threading.Lock())
    with lock:  # one tunnel per URL; other servers open theirs at the same time
        tunnel = _tunnels.get(url)
        if tunnel is None or not tunnel.alive():
            if tunnel is not None:  # ssh ended (network, remote restart): open it again, same path
                tunnel.close(keep_folder=True)
                del _tunnels[url]
            folder = _folders.get(url) or _folder()
            _folders[url] = folder
            tunnel = _tunnels[url] = _Tunnel(server, target, timeout=timeout, folder=folder)
        return f"unix://{tunnel.local}"


def _folder() -> str:
    """A new private dir for a local socket, marked with this process; the dirs of syncer
    processes that were killed (no atexit ran) are removed first."""
    base = tempfile.gettempdir()
    for name in os.listdir(base):
        if name.startswith("syncer-ssh-"):
            try:
                with open(os.path.join(base, name, _OWNER), encoding="ascii") as f:
                    owner = int(f.read())
            except (OSError, ValueError):
                continue  # not ours to judge (another user's, being made, or no owner written)
            if gone(owner):  # (also one that ended unreaped)
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)
    folder = tempfile.mkdtemp(prefix="syncer-ssh-")
    with open(os.path.join(folder, _OWNER), "w", encoding="ascii") as f:
        f.write(str(os.getpid()))
    return folder


def reopen(server: str, url: str) -> tuple[bool, str]:
    """A tunnel that ended under a client kept for later (the API server's, watch's) is opened
    again, at the same socket path: (opened again, why it could not: "" when it runs)."""
    tunnel = _tunnels.get(url)
    if tunnel is not None and tunnel.alive():
        return False, ""
    try:
        local_url(server, url)
    except DockerUnavailable as again:
        return False, str(again)
    return True, ""


def why(server: str, url: str, *, opened: bool) -> str:
    """Why the server's engine was not reached when ssh is the reason ("" when it is not):
    a tunnel that ended and cannot be opened again (`opened`: one was open before), or what
    ssh last said."""
    if opened:
        reason = reopen(server, url)[1]
        if reason:
            return reason
    said = last_error(url)
    if said and "open failed" in said:  # the remote end refused the forward: no engine at that socket
        said += f" (no engine listening at {parse(url).socket} on that host? `?socket=` in the URL names it)"
    return f"server '{server}': ssh: {said}" if said else ""


def last_error(url: str) -> str:
    """What ssh last said for this URL's tunnel (e.g. the remote socket refused), or ""."""
    tunnel = _tunnels.get(url)
    return tunnel.last_error() if tunnel is not None else ""


def close_all() -> None:
    """Close every tunnel this process opened."""
    with _guard:
        tunnels = list(_tunnels.values())
        folders = list(_folders.values())
        _tunnels.clear()
        _folders.clear()
    for t in tunnels:
        t.close()
    for folder in folders:  # (one whose last attempt failed has no tunnel)
        shutil.rmtree(folder, ignore_errors=True)


atexit.register(close_all)
