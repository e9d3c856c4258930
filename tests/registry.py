"""A real image registry: Debian's `docker-registry` (the CNCF distribution registry) on a
loopback port of its own, its storage in a temp dir. The engines reach it without TLS
(Docker trusts 127.0.0.0/8 as an insecure registry by default); images get there by a
`docker tag` + `docker push` from the main engine, so a tag can be moved to another image."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import free_port, wait_until

BINARY = "/usr/bin/docker-registry"


class Registry:
    """`host` is `127.0.0.1:<port>`; `push(local, "name:tag")` gives the tag that image.
    With `password`, a private registry: basic auth (htpasswd, bcrypt) for the user `syncer`,
    and `login` a docker client config directory holding that login (DOCKER_CONFIG)."""

    def __init__(self, *, password: str = "") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="syncer-registry-", dir="/tmp"))
        self.host = f"127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.password = password
        self.login = self.root / "login"

    def start(self) -> None:
        config = self.root / "config.yml"
        auth = ""
        if self.password:
            auth = f"auth: {{htpasswd: {{realm: syncer-test, path: {self._htpasswd()}}}}}\n"
        config.write_text(f"version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {self.root / 'data'}}}\n"
                          f"  delete: {{enabled: true}}\nhttp: {{addr: '{self.host}'}}\n{auth}")
        log = open(self.root / "registry.log", "ab")
        self.proc = subprocess.Popen([BINARY, "serve", str(config)], stdout=log, stderr=log, start_new_session=True)
        wait_until(self.answers, timeout=30, message=f"docker-registry at {self.host}")

    def _htpasswd(self) -> Path:
        import warnings

        with warnings.catch_warnings():  # (crypt is deprecated; it is the stdlib's one bcrypt)
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        path = self.root / "htpasswd"
        path.write_text(f"syncer:{crypt.crypt(self.password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
        self.login.mkdir(exist_ok=True)
        token = base64.b64encode(f"syncer:{self.password}".encode()).decode()
        (self.login / "config.json").write_text(json.dumps({"auths": {self.host: {"auth": token}}}))
        return path

    def answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {(self.root / 'registry.log').read_text()[-500:]}")
        try:
            with urllib.request.urlopen(self._request("/v2/"), timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def _request(self, path: str, **kwargs: Any) -> urllib.request.Request:
        req = urllib.request.Request(f"http://{self.host}{path}", **kwargs)
        if self.password:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"syncer:{self.password}".encode()).decode())
        return req

    def push(self, local: str, name: str) -> str:
        """Tag the main engine's `local` image as `<host>/<name>` and push it; the full
        reference, whose digest in the registry is `digest(ref)`."""
        ref = f"{self.host}/{name}"
        subprocess.run(["docker", "tag", local, ref], check=True, capture_output=True)
        login = ["--config", str(self.login)] if self.password else []
        subprocess.run(["docker", *login, "push", "-q", ref], check=True, capture_output=True)
        return ref

    def digest(self, ref: str) -> str:
        """The manifest digest the registry serves for `ref` now."""
        name, tag = ref.removeprefix(self.host + "/").rsplit(":", 1)
        req = self._request(f"/v2/{name}/manifests/{tag}", method="HEAD", headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return str(r.headers["Docker-Content-Digest"])

    def requests(self) -> list[str]:
        """The requests the registry served so far, as its access log has them (`GET /v2/…`)."""
        text = (self.root / "registry.log").read_text(errors="replace")
        return [line for line in text.splitlines() if '"GET /v2/' in line or '"HEAD /v2/' in line]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def refs_here(self) -> list[str]:
        """The main engine's references to this registry's images: the tags `push` made and
        the digests of what syncer pulled (a tag moved on leaves its old image by digest)."""
        listed = subprocess.run(["docker", "image", "ls", "--digests", "--format",
                                 "{{.Repository}}\t{{.Tag}}\t{{.Digest}}"], capture_output=True, text=True)
        refs = []
        for line in listed.stdout.splitlines():
            repo, tag, digest = (line.split("\t") + ["", ""])[:3]
            if repo.startswith(self.host + "/"):
                refs += [f"{repo}:{tag}"] if tag not in ("", "<none>") else []
                refs += [f"{repo}@{digest}"] if digest not in ("", "<none>") else []
        return refs

    def destroy(self) -> None:
        self.stop()
        refs = self.refs_here()
        if refs:  # untagged, not forced: an image another reference holds stays
            subprocess.run(["docker", "rmi", *refs], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
