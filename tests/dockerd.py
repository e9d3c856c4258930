"""A second Docker daemon on its own socket and data root, standing for a second server
(and for a daemon that goes away and comes back) without disturbing other tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.helpers import IMAGE, wait_until


class SecondDockerd:
    """Start/stop/restart a dockerd under a temp dir; `url` is its unix socket."""

    def __init__(self, *, extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args  # e.g. a TLS listener: --host tcp://... --tlsverify ...
        self.root = Path(tempfile.mkdtemp(prefix="syncer-d2-", dir="/tmp"))
        self.sock = self.root / "docker.sock"
        self.url = f"unix://{self.sock}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.subnet = int(self.root.name[-2:], 36) % 250 if self.root.name[-2:].isalnum() else 7
        self.bridge = f"sd2{self.root.name[-8:]}"[:15].replace("_", "x")

    def _bridge(self) -> None:
        # Its own bridge: a dockerd started with `--bridge none` deletes the host's docker0,
        # which would break the main engine for every other test.
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True).returncode == 0:
            return
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"10.250.{self.subnet}.1/24", "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)

    def start(self) -> None:
        self._bridge()
        log = open(self.root / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--host", self.url, "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"),
             "--bridge", self.bridge, "--iptables=false", "--ip-masq=false", "--storage-driver", "vfs",
             *self.extra_args],
            stdout=log, stderr=log, start_new_session=True)
        wait_until(self.answers, timeout=60, message=f"second dockerd at {self.url}")

    def answers(self) -> bool:
        out = subprocess.run(["docker", "-H", self.url, "version", "--format", "{{.Server.Version}}"],
                             capture_output=True)
        return out.returncode == 0

    def load_image(self, image: str = IMAGE) -> None:
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", self.url, "load", "-q"], stdin=save.stdout, check=True,
                       capture_output=True)
        save.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        time.sleep(0.2)

    def cli(self, *args: str, timeout: float = 60) -> str:
        """The docker CLI against this daemon, best effort: its stdout, "" when it failed or did
        not answer within `timeout` (a wedged daemon must not hang the clean-up of a test run)."""
        try:
            return subprocess.run(["docker", "-H", self.url, *args], capture_output=True, text=True,
                                  timeout=timeout).stdout
        except subprocess.TimeoutExpired:
            return ""

    def destroy(self) -> None:
        """Its containers and networks go first: a bridge the daemon does not remove stays in the
        host's network namespace and keeps its subnet from every engine (address pools run out).
        A daemon that stopped answering is killed instead, and what it left mounted unmounted."""
        links: list[str] = []
        if self.proc is not None:
            ids = self.cli("ps", "-aq").split()
            if ids:
                self.cli("rm", "-f", "-v", *ids)
            links = [f"br-{i[:12]}" for i in self.cli("network", "ls", "-q", "--filter", "driver=bridge").split()]
            self.cli("network", "prune", "-f")
        self.stop()
        for link in links:
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
        for netns in (self.root / "exec" / "netns").glob("*"):  # (left mounted by a daemon killed mid-way)
            subprocess.run(["umount", str(netns)], capture_output=True)
        subprocess.run(["umount", "-R", str(self.root / "exec")], capture_output=True)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
