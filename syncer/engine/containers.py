"""How the Applier carries out one container's action on one engine: pull, create, bring
up (networks, files, start, the health wait), run a job, recreate, remove.

`ContainerSteps` is the Applier's half that acts on containers; engine/apply.py keeps the
other half (waves, deployments, networks, which action goes where).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from syncer.adapters import images
from syncer.adapters.docker import Engine, EngineError, Missing
from syncer.core import labels as L
from syncer.core.errors import DockerUnavailable
from syncer.core.model import Action, ContainerSpec, RegistryAnswer
from syncer.core.redact import Redactor
from syncer.engine.heal import OWN
from syncer.engine.options import ApplyOptions
from syncer.engine.readiness import ActionFailed, tail, wait_ready
from syncer.stages import volumes
from syncer.stages.files import archive
from syncer.stages.networks import instant
from syncer.stages.selfheal import runs_to_completion


class ContainerSteps:
    """The container actions of an apply (a base of engine/apply.Applier, which sets these)."""

    opts: ApplyOptions
    secrets: Mapping[str, str]
    redact: Redactor
    registry: Mapping[str, Mapping[str, RegistryAnswer]]
    sleep: Callable[[float], None]
    completed: list[tuple[str, str, str]]
    may_end: list[tuple[str, ContainerSpec, str, int]]

    def _labels(self, a: Action, c: ContainerSpec) -> dict[str, str]:
        raise NotImplementedError  # (the Applier's: it knows the commits)

    def _ensure_image(self, eng: Engine, c: ContainerSpec, log: Callable[[str], None]) -> None:
        """The image, as `pull_policy` says: `missing` (default) pulls only when absent,
        `always` pulls every time (the digest the plan heard its tag name, when it asked),
        `never` uses what the server has or fails."""
        image, policy = c.spec["image"], c.spec.get("pull_policy", "missing")
        if policy != "always" and images.has_image(eng, image):
            return
        if policy == "never":
            raise ActionFailed(f"image {image} is not present and pull_policy is never")
        heard = self.registry.get(c.server, {}).get(image) if policy == "always" else None
        digest = heard.digest if heard is not None and not heard.error else ""
        log(f"image {image} is not present: pulling" if policy != "always" else
            f"pulling {image}{f' at {digest}' if digest else ''} (pull_policy: always)")
        try:
            for line in images.pull(eng, image, digest):
                log(f"pull: {line}")
        except (EngineError, DockerUnavailable) as exc:
            absent = "is not present and " if policy != "always" else ""
            raise ActionFailed(f"image {image} {absent}could not be pulled: {exc}") from None

    def _create(self, eng: Engine, a: Action, c: ContainerSpec, log: Callable[[str], None]) -> None:
        self._ensure_image(eng, c, log)
        ident = eng.create(c.name, c.spec, self._labels(a, c), self.secrets)
        log(f"created {c.name} ({ident[:12]})")
        try:
            self._bring_up(eng, ident, c, log)
        except (ActionFailed, EngineError) as exc:
            with OWN.acting(ident):
                eng.remove(ident)
            raise ActionFailed(f"{c.name} did not come up: {exc}") from None

    def _bring_up(self, eng: Engine, ident: str, c: ContainerSpec, log: Callable[[str], None], *,
                  started: bool = False) -> None:
        """Networks, files, start, then wait until running (and healthy, with a healthcheck);
        `started`: it runs already (an adopted leftover, which had all before its start): the wait."""
        with OWN.acting(ident):  # dying while it comes up: this apply's failure, not a fault
            if not started:
                self._prepare(eng, ident, c, log)
                eng.start(ident)
            self._ready_or_ended(eng, ident, c, log)
        OWN.forget(ident)  # up: from now on its death is a fault

    def _prepare(self, eng: Engine, ident: str, c: ContainerSpec, log: Callable[[str], None]) -> None:
        """What a created container needs before it starts: its other networks and its files."""
        eng.connect_networks(ident, dict(c.spec.get("networks") or {}))
        files = c.spec.get("files") or {}
        if files:
            eng.put_archive(ident, archive({path: (self._reveal(c.payload.get(path, b"")), int(str(f["mode"]), 8),
                                                   int(f.get("uid", 0)), int(f.get("gid", 0)))
                                            for path, f in files.items()}))
            log(f"wrote {len(files)} file(s): {', '.join(sorted(files))}")

    def _reveal(self, data: bytes) -> bytes:
        """A file's bytes with its secret references replaced by their values (for Docker only)."""
        if b"<<secret:" not in data:
            return data
        return L.reveal(data.decode("utf-8"), self.secrets).encode("utf-8")

    def _run_job(self, eng: Engine, a: Action, c: ContainerSpec, log: Callable[[str], None]) -> None:
        """Run a job to completion: exit 0 is success; anything else fails with its last lines.
        A failed run stays exited (to be read); the next plan runs the job again."""
        self._ensure_image(eng, c, log)
        if a.container_id:
            eng.remove(a.container_id)
            log(f"removed the previous run of {c.name} ({a.container_id[:12]})")
        ident = eng.create(c.name, c.spec, self._labels(a, c), self.secrets)
        log(f"created {c.name} ({ident[:12]})")
        self._prepare(eng, ident, c, log)
        eng.start(ident)
        deadline = time.monotonic() + self.opts.job_timeout
        while True:
            state = eng.inspect(ident).get("State", {})
            if not state.get("Running") and state.get("Status") in ("exited", "dead"):
                break
            if time.monotonic() > deadline:
                eng.stop(ident, timeout=self.opts.stop_timeout)
                raise ActionFailed(f"the job did not finish within {self.opts.job_timeout:g}s")
            self.sleep(0.2)
        code = state.get("ExitCode")
        if code != 0:
            raise ActionFailed(f"the job exited with code {code}: {tail(eng, ident, self.redact, 10)}".rstrip(": "))
        log("job completed (exit 0)")

    def _recreate(self, eng: Engine, a: Action, c: ContainerSpec, log: Callable[[str], None]) -> None:
        # Order fixed by DESIGN.md: the new container exists (config validated by the engine)
        # before the old one stops, and the old one goes only once the new one is proven.
        self._ensure_image(eng, c, log)
        temp = L.temp_name(c.name)
        eng.remove(temp)
        new = eng.create(temp, c.spec, self._labels(a, c), self.secrets)
        log(f"created {temp} ({new[:12]})")
        old_info = inspect_or_empty(eng, a.container_id)
        old = a.container_id if old_info else ""  # (removed since the plan: nothing to restore, as a create)
        was_running = self._stop_old(eng, old, old_info, c, log)
        up = (lambda: self._prepare(eng, new, c, log)) if a.stay_stopped else (lambda: self._bring_up(eng, new, c, log))
        self._replace(eng, c, old, new, was_running, up, log)
        if a.stay_stopped and _ran_to_completion(old_info, c.spec):
            # made in place of a one-shot that had finished, and left unstarted as the plan said:
            # remembered as finished (stages/outside.py), so that no later plan starts it
            self.completed.append((c.name, new, c.definition))

    def _adopt(self, eng: Engine, a: Action, c: ContainerSpec, log: Callable[[str], None]) -> None:
        """Finish the recreate an interrupted apply began (stages/interrupted.adopt): its
        `<name>_syncer-new` runs the wanted spec already. Its health is gated, then the old
        container goes and it takes the name; when it fails, the old one is restored if the
        interrupted recreate had stopped it (it stopped after the leftover was made)."""
        temp = L.temp_name(c.name)
        info = inspect_or_empty(eng, temp)
        if (info.get("Config") or {}).get("Labels", {}).get(L.SPEC_HASH) != c.spec_hash:
            raise ActionFailed(f"{temp} is not the container the plan saw any more: plan again")
        new = str(info["Id"])
        log(f"adopted {temp} ({new[:12]}): it runs the wanted spec already")
        old_info = inspect_or_empty(eng, a.container_id) if a.container_id else {}
        old = a.container_id if old_info else ""  # (gone: the adoption is a create's end)
        restore = self._stop_old(eng, old, old_info, c, log) or _stopped_after(old_info, info)
        self._replace(eng, c, old, new, restore, lambda: self._bring_up(eng, new, c, log, started=True), log)

    def _stop_old(self, eng: Engine, old: str, info: Mapping[str, Any], c: ContainerSpec,
                  log: Callable[[str], None]) -> bool:
        """Stop the container a recreate replaces, when it runs; True when it did."""
        if not info.get("State", {}).get("Running"):
            return False
        with OWN.acting(old):  # its die and stop events are ours, not a fault to heal
            eng.stop(old, timeout=self._stop_timeout(info))
        log(f"stopped the old {c.name} ({old[:12]})")
        return True

    def _replace(self, eng: Engine, c: ContainerSpec, old: str, new: str, restore: bool,
                 up: Callable[[], None], log: Callable[[str], None]) -> None:
        """A recreate's end: `up` proves the new container, then the old one (if any) goes and
        the new one takes the name; else the new one goes and the old one starts again
        (`restore`: it ran before this recreate stopped it)."""
        try:
            up()
        except (ActionFailed, EngineError) as exc:
            log(f"the new container failed: {exc}" + ("; restoring the old one" if old else ""))
            with OWN.acting(new):
                eng.remove(new)
            if restore:
                OWN.forget(old)  # running again: a fault from now on is a fault
                eng.start(old)
                log(f"restarted the old {c.name} ({old[:12]})")
            if not old:  # (an adopted leftover whose old container was gone already: as a create)
                raise ActionFailed(f"{c.name} did not come up: {exc}") from None
            raise ActionFailed(f"{c.name}: new container failed ({exc}); old container restored",
                               rolled_back=True) from None
        if old:
            with OWN.acting(old):
                eng.remove(old)
        eng.rename(new, c.name)
        log(f"replaced {c.name}: {old[:12] or '(gone)'} -> {new[:12]}")

    def _remove(self, eng: Engine, a: Action, log: Callable[[str], None]) -> None:
        try:
            info = eng.inspect(a.container_id)
        except Missing:
            log(f"{a.container} is already gone")
            return
        with OWN.acting(a.container_id):
            if info.get("State", {}).get("Running"):
                eng.stop(a.container_id, timeout=self._stop_timeout(info))
            eng.remove(a.container_id)
        log(f"removed {a.container} ({a.container_id[:12]})")
        if self.opts.prune_volumes:  # (never an `external: true` one: made elsewhere, it is not ours)
            made_elsewhere = set(volumes.external(L.spec_of((info.get("Config") or {}).get("Labels") or {})))
            for m in info.get("Mounts", []):
                if m.get("Type") == "volume" and m.get("Name") and m["Name"] not in made_elsewhere:
                    eng.remove_volume(m["Name"])
                    log(f"removed volume {m['Name']}")

    def _stop_timeout(self, info: Mapping[str, Any]) -> int:
        """The container's own StopTimeout (its `stop_grace_period`), else the option's."""
        own = (info.get("Config") or {}).get("StopTimeout")
        return int(own) if own is not None else self.opts.stop_timeout

    def _ready_or_ended(self, eng: Engine, ident: str, c: ContainerSpec, log: Callable[[str], None]) -> None:
        """Wait until it is up; a one-shot that ran to completion is remembered (plans leave it exited)."""
        since = int(time.time()) - 1
        if self._wait_ready(eng, ident, c.spec, log):
            self.completed.append((c.name, ident, c.definition))
        elif runs_to_completion(c.spec.get("restart")):
            self.may_end.append((c.server, c, ident, since))

    def _wait_ready(self, eng: Engine, ident: str, spec: Mapping[str, Any], log: Callable[[str], None]) -> bool:
        """`readiness.wait_ready` with this apply's timeouts; True: it ran to completion."""
        return wait_ready(eng, ident, spec, log, timeout=self.opts.health_timeout, settle=self.opts.settle,
                          redact=self.redact, sleep=self.sleep)


def resume(eng: Engine, ident: str) -> None:
    """Bring a stopped container back (start), or a paused one (unpause)."""
    try:
        eng.start(ident)  # the common case first: no inspect on the way to a heal
    except Missing:
        raise
    except EngineError:
        if not eng.inspect(ident).get("State", {}).get("Paused"):
            raise
        eng.unpause(ident)


def inspect_or_empty(eng: Engine, ident: str) -> dict[str, Any]:
    """The engine's record of a container; `{}` when it is gone."""
    try:
        return eng.inspect(ident)
    except Missing:
        return {}


def _ran_to_completion(info: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """True when the container of `info` ended with exit 0 under a policy that lets it end (or,
    made in place of one such, was never started)."""
    state = info.get("State") or {}
    return runs_to_completion(spec.get("restart")) and state.get("Status") in ("exited", "created") \
        and state.get("ExitCode") == 0


def _stopped_after(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when the old container stopped after the new one was made: the recreate that made
    the new one stopped it (it ran before)."""
    finished, made = str(old.get("State", {}).get("FinishedAt", "")), str(new.get("Created", ""))
    return bool(old and made) and not old.get("State", {}).get("Running") and instant(finished) >= instant(made)
