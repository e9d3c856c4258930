"""A single-node Docker Swarm: a second dockerd (its own socket, data root, exec root,
pidfile and bridge; never `--bridge none`, which deletes the host's docker0) that is
`docker swarm init`-ed on loopback ports of its own, with the local images loaded."""

from __future__ import annotations

import random
import shutil
import subprocess

from tests.dockerd import SecondDockerd
from tests.helpers import HEALTHY_IMAGE, IMAGE, UNHEALTHY_IMAGE


class SwarmDockerd(SecondDockerd):
    """`url` is the manager's unix socket; `docker(...)` runs the CLI against it."""

    def start(self) -> None:
        super().start()
        # Its own docker_gwbridge (what links a task on an overlay to the host), made before the
        # swarm: by default every swarm daemon makes a host bridge of that one name and a subnet
        # from the same pool, so two swarms on one machine (tests, a bench, a colleague's) shared
        # it, and the first to go deleted it under the other (tasks failed `endpoint create on
        # GW network`). Docker's documented way: the network made first, named docker_gwbridge.
        self.docker("network", "create", "--driver", "bridge", "--subnet", f"10.251.{self.subnet}.0/24",
                    "--opt", f"com.docker.network.bridge.name={self.gw_bridge}",
                    "--opt", "com.docker.network.bridge.enable_icc=false",
                    "--opt", "com.docker.network.bridge.enable_ip_masquerade=true", "docker_gwbridge")
        # ports of its own, so that two swarms on one machine (two engineers, CI) never clash
        port = random.randint(20000, 29000)
        self.docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", f"127.0.0.1:{port}",
                    "--data-path-port", str(port + 1))
        for image in (IMAGE, HEALTHY_IMAGE, UNHEALTHY_IMAGE):
            self.load_image(image)

    def docker(self, *args: str) -> str:
        """The docker CLI against this manager; its stdout."""
        try:
            out = subprocess.run(["docker", "-H", self.url, *args], capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"docker {' '.join(args)}: the swarm's daemon did not answer within 120s") from None
        if out.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def remove_project(self, project: str) -> None:
        """Everything a test made on the swarm: services, then configs, secrets, networks, and
        the project's key."""
        label = f"label=syncer.project={project}"
        for kind in ("service", "config", "secret", "network"):
            ids = self.docker(kind, "ls", "-q", "--filter", label).split()
            if ids:
                self.cli(kind, "rm", *ids)
        keys = self.docker("config", "ls", "-q", "--filter", f"label=syncer.marker-of={project}").split()
        if keys:  # the project's secret key (and a lock an interrupted apply left)
            self.cli("config", "rm", *keys)

    def destroy(self) -> None:
        """Leave the swarm (its tasks go), then the daemon, its mounts, bridge and files."""
        if self.proc is not None:
            self.cli("swarm", "leave", "--force", timeout=90)
        super().destroy()
        for mount in ("data", "exec"):  # a swarm daemon also mounts its data root and netns files
            subprocess.run(["umount", "-R", str(self.root / mount)], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", self.gw_bridge], capture_output=True)  # (this swarm's own)

    @property
    def gw_bridge(self) -> str:
        """The host bridge of this swarm's docker_gwbridge network."""
        return f"gw2{self.bridge[3:]}"[:15]
