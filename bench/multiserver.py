"""bench/plan --servers K: the same N definitions planned on one server and spread over K.

Starts K-1 extra dockerds (each its own socket, data root, exec root, pidfile and bridge;
never `--bridge none`, which deletes the host's docker0), loads the image into each, makes
two projects from one generated repository (one with every definition on `local`, one
with definition i on server i mod K), creates every desired container (created, not
started, with syncer's labels), and times `syncer plan --json` of both, interleaved run
for run. Goal: the K-server plan takes at most GOAL_RATIO x the one-server plan (servers
are observed in parallel). Everything it made is removed at the end, also on failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

GOAL_RATIO = 1.3
IMAGE = "syncer-local/busybox:latest"


class Dockerd:
    """One extra engine under `root`; `url` is its unix socket."""

    def __init__(self, root: Path, k: int) -> None:
        self.root = root
        self.url = f"unix://{root}/docker.sock"
        self.bridge = f"sbp{os.getpid() % 10000}x{k}"[:15]
        self.subnet = f"10.253.{(os.getpid() % 60) * 4 + k}.1/24"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", self.subnet, "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
        log = open(self.root / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--host", self.url, "--data-root", str(self.root / "data"),
             "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "docker.pid"),
             "--bridge", self.bridge, "--iptables=false", "--ip-masq=false", "--storage-driver", "vfs"],
            stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", self.url, "version"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"dockerd at {self.url} did not answer (see {self.root}/dockerd.log)")
            time.sleep(0.2)
        save = subprocess.Popen(["docker", "save", IMAGE], stdout=subprocess.PIPE)
        subprocess.run(["docker", "-H", self.url, "load", "-q"], stdin=save.stdout, check=True, capture_output=True)
        save.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            ids = subprocess.run(["docker", "-H", self.url, "ps", "-aq"], capture_output=True, text=True).stdout.split()
            if ids:
                subprocess.run(["docker", "-H", self.url, "rm", "-f", *ids], capture_output=True)
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        subprocess.run(["umount", "-R", str(self.root / "exec")], capture_output=True)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def create_all(repo: Path, state: Path, threads: int, log: Callable[[str], None]) -> int:
    """Create (not start) every desired container of the repo, each on its own server."""
    from syncer.adapters.docker import Engine
    from syncer.core import labels as L
    from syncer.engine import facade as engine

    ctx = engine.Context(repo=repo, state_dir=state)
    project = engine.load(ctx)
    desired = engine.desired_state(ctx, project)
    secrets = engine.secrets_for(ctx, project)
    local = threading.local()

    def one(c: Any) -> None:
        engines = local.__dict__.setdefault("engines", {})
        if c.server not in engines:
            engines[c.server] = Engine(project.config.servers[c.server])
        labels = L.container_labels(project=desired.project, definition=c.definition, replica=c.replica,
                                    revision=1, spec_hash_=c.spec_hash, template_ref=c.template_ref,
                                    commit=desired.commit, spec=c.spec)
        engines[c.server].create(c.name, c.spec, labels, secrets=secrets)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, desired.containers))
    log(f"  created {len(desired.containers)} containers of {project.config.name}"
        f" in {time.perf_counter() - t0:.1f}s")
    return len(desired.containers)


def run(args: Any, *, base: Path, syncer_cmd: list[str], env: dict[str, str], projects: list[str],
        generate: Callable[..., dict[str, int]], timed: Callable[..., tuple[float, float]],
        stats: Callable[[list[float]], dict[str, Any]], log: Callable[[str], None]) -> dict[str, Any]:
    """The one-vs-K-servers case; returns its figures (and whether the goal holds)."""
    n, k, pid = args.main, args.servers, os.getpid()
    extra = [Dockerd(base / f"d{i}", i) for i in range(1, k)]
    try:
        t0 = time.perf_counter()
        for d in extra:
            d.start()
        log(f"servers: started {len(extra)} extra dockerds and loaded {IMAGE} [{time.perf_counter() - t0:.1f}s]")
        servers = [("local", None)] + [(f"d{i}", d.url) for i, d in enumerate(extra, 1)]
        repos = {}
        for label, spread in (("one", [("local", None)]), ("many", servers)):
            project = f"bench-plan-{pid}-{label}"
            projects.append(project)
            repo, state = base / label / "repo", base / label / "state"
            generate(repo, project, n, prefix=f"bp{pid}{label}", servers=spread)
            state.mkdir(parents=True, exist_ok=True)
            create_all(repo, state, 4, log)
            repos[label] = [*syncer_cmd, "--repo", str(repo), "--state-dir", str(state), "plan", "--json"]
            check = subprocess.run(repos[label], capture_output=True, env=env, check=False)
            if check.returncode != 0:
                raise RuntimeError(f"plan of {label} failed: {check.stderr.decode()[-1000:]}")
        one_w, many_w = [], []
        for r in range(args.runs):
            w1, _ = timed(repos["one"], env, base)
            wk, _ = timed(repos["many"], env, base)
            one_w.append(w1)
            many_w.append(wk)
            log(f"servers: run {r + 1}/{args.runs}: one server {w1:.3f}s, {k} servers {wk:.3f}s")
        ratio = statistics.median(many_w) / statistics.median(one_w)
        return {"definitions": n, "servers": k, "one_server_wall_s": stats(one_w),
                "many_servers_wall_s": stats(many_w), "ratio": round(ratio, 3), "goal_ratio": GOAL_RATIO,
                "goal_met": ratio <= GOAL_RATIO}
    finally:
        for d in extra:
            d.stop()
