"""Docker Swarm through the Engine API: services, tasks, configs, secrets and the project's
overlay network. It rides on an `Engine` (its connection, its error mapping), so a Swarm
manager is reached exactly as any other server is.

The bodies syncer sends are the Engine API's own JSON (`stages.swarm` builds them), so on a
unix socket (local, or an ssh server's forwarded one) they go as they are through the
engine's `light` client and an apply never imports the docker SDK (~0.1 s). Over TLS or tcp,
and for a service whose image may need the credentials of a `docker login` (the SDK sends
them as `X-Registry-Auth` for the nodes to pull with), the SDK's client makes them.

Reads are one `GET /services` (unfiltered: it also finds who holds the names we want) and
one `GET /tasks` filtered on the project label (tasks carry their service's labels for that
filter), and one `GET /networks`. Secret values are revealed here,
in the env, the arguments and secret files only, never in labels.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, ContextManager
from urllib.parse import quote

from syncer.adapters.docker import Engine, EngineError, Missing, live_network
from syncer.adapters.images import registry_credentials
from syncer.core import labels as L
from syncer.core.labels import reveal
from syncer.core.model import LiveContainer, LiveNetwork, LiveTask
from syncer.stages.swarm import SwarmFile
from syncer.stages.swarm_jobs import job_completions, job_run, job_state
from syncer.stages.swarm_drift import live_template
from syncer.stages.swarm_status import service_state


class Swarm:
    """The Swarm side of one server (a manager)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = engine.reads  # GETs without the SDK on a unix socket
        self.light = engine.light  # writes of JSON without the SDK, on a unix socket
        self.name = engine.server.name
        self._image_tests: dict[str, list[str] | None] = {}  # image → its own healthcheck's test
        # around each write of a service's spec, by its name (engine/heal.SERVICE_WRITES: the
        # events it makes are the writer's, not a change for the watch to heal)
        self.marks: Callable[[str], ContextManager[None]] = lambda name: contextlib.nullcontext()

    @property
    def api(self) -> Any:
        """The SDK's client, for writes and streams (made on first use)."""
        return self.engine.api

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return self.engine._call(what, fn, *args, **kwargs)

    def _write(self, what: str, light: Callable[[Any], Any], sdk: Callable[[Any], Any], *,
               pulls: bool = False) -> Any:
        """One write: `light(client)` with the Engine API's JSON on a unix socket, else
        `sdk(api)`; `pulls` (a service's image) also goes through the SDK when a docker login
        holds credentials, which the SDK sends along for the nodes to pull with."""
        if self.light is not None and not (pulls and registry_credentials()):
            return self._call(what, light, self.light)
        return self._call(what, sdk, self.api)

    # --- reads -----------------------------------------------------------------------

    def observe(self, project: str, names: Sequence[str] = (), *, health: bool = False
                ) -> tuple[list[LiveContainer], list[LiveTask], list[LiveContainer], list[LiveNetwork]]:
        """The project's services (one LiveContainer each), their tasks, the services of
        others holding `names` (conflicts) and the networks: one GET /services, unfiltered
        (a label filter cannot also find the holders of our names), one GET /tasks filtered
        on the project label, one GET /networks. With `health` (for `instances`), one GET
        /containers more: the health of the tasks whose containers are on this manager's node
        (a task's row has none; the other nodes' containers are theirs to list: None there)."""
        try:
            rows = self._call("list services", self.reads.services)
        except EngineError as exc:
            if "not a swarm manager" not in str(exc):
                raise
            raise EngineError("it is `kind: swarm`, and its engine is not a Swarm manager: run `docker swarm init`"
                              " there, or point its `docker:` at a manager") from None
        mine = [r for r in rows if ((r.get("Spec") or {}).get("Labels") or {}).get(L.PROJECT) == project]
        label = {"label": [f"{L.PROJECT}={project}"]}
        # a job's tasks of its last run only (`instances start` runs it again: Swarm's JobIteration)
        runs = {r["ID"]: job_run(r.get("JobStatus")) for r in mine if _is_job(r)}
        tasks = [self._task(t, mine) for t in self._call("list tasks", self.reads.tasks, filters=label)
                 if t.get("ServiceID") not in runs or job_run(t) == runs[t["ServiceID"]]]
        if health and tasks:
            healths = {c.id: c.health for c in self.engine.list_project(project)}
            tasks = [replace(t, health=healths.get(t.container_id)) if t.container_id else t for t in tasks]
        wanted, ids = set(names), {r["ID"] for r in mine}
        others = [self._service(r, []) for r in rows
                  if r["ID"] not in ids and (r.get("Spec") or {}).get("Name") in wanted]
        networks = [live_network(n) for n in self._call("list networks", self.reads.networks)]
        return [self._service(r, tasks) for r in mine], tasks, others, networks

    def _service(self, row: Mapping[str, Any], tasks: list[LiveTask]) -> LiveContainer:
        spec = row.get("Spec", {})
        mode = spec.get("Mode") or {}
        labels = spec.get("Labels") or {}
        image = str(((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", ""))
        pins = (image,) if "@" in image else ()  # the digest it was resolved to (images.pinned)
        if _is_job(row):  # (observe kept its last run's tasks)
            state, status = job_state([t for t in tasks if t.service_id == row["ID"]], job_completions(mode))
            return LiveContainer(id=row["ID"], name=spec.get("Name", ""), server=self.name, state=state,
                                 health=None, labels=labels, status=status, image=image, digests=pins,
                                 mode="global-job" if "GlobalJob" in mode else "replicated-job")
        glob = "Global" in mode  # one task per node its placement allows: as many as Swarm wants running
        wanted = None if glob else int((mode.get("Replicated") or {}).get("Replicas", 0))
        # `degraded` when some of its tasks run, `pending` when none runs and Swarm placed none of
        # those, each with Swarm's reason (stages/swarm_status.py)
        state, status = service_state([t for t in tasks if t.service_id == row["ID"]], wanted)
        update = (row.get("UpdateStatus") or {}).get("State")
        if update and update not in ("completed",):
            status += f", update {update}"
        return LiveContainer(id=row["ID"], name=spec.get("Name", ""), server=self.name, state=state,
                             health=None, labels=labels, status=status, replicas=wanted, image=image, digests=pins,
                             mode="global" if glob else "replicated", template=live_template(spec))

    def _task(self, row: Mapping[str, Any], services: list[Mapping[str, Any]]) -> LiveTask:
        names = {s["ID"]: s.get("Spec", {}).get("Name", "") for s in services}
        status = row.get("Status") or {}
        return LiveTask(
            id=row["ID"], service=names.get(row.get("ServiceID", ""), ""), service_id=row.get("ServiceID", ""),
            slot=int(row.get("Slot") or 0), node=row.get("NodeID", ""), state=status.get("State", ""),
            desired=row.get("DesiredState", ""), error=status.get("Err", ""), message=status.get("Message", ""),
            container_id=(status.get("ContainerStatus") or {}).get("ContainerID", ""),
            updated=row.get("UpdatedAt", ""),
        )

    def inspect_service(self, ident: str) -> dict[str, Any]:
        """The manager's full record of one service (its Version and UpdateStatus)."""
        return dict(self._call(f"inspect service {ident}", self.reads.inspect_service, ident))

    def project_services(self, project: str) -> list[dict[str, Any]]:
        """The project's services, raw (each with its UpdateStatus): one call for many waiting
        deployments."""
        return list(self._call("list services", self.reads.services, filters={"label": [f"{L.PROJECT}={project}"]}))

    def project_tasks(self, project: str) -> list[dict[str, Any]]:
        """Every task of the project's services, raw: one call for many waiting deployments."""
        return list(self._call("list tasks", self.reads.tasks, filters={"label": [f"{L.PROJECT}={project}"]}))

    def service_tasks(self, service_id: str) -> list[dict[str, Any]]:
        """Every task of one service, raw (status, error, timestamps); none once it is gone."""
        try:
            return list(self._call("list tasks", self.reads.tasks, filters={"service": service_id}))
        except Missing:
            return []

    def image_healthcheck(self, image: str) -> list[str] | None:
        """The test of the image's own healthcheck, as the manager holds the image; None when it
        has none or the manager does not hold that image (the nodes pull it themselves). Asked
        once per image: the services of one apply share it (each request waits its turn on the
        connection, behind and before the other services' creates)."""
        if image not in self._image_tests:
            try:
                info = self._call(f"inspect image {image}", self.reads.inspect_image, image)
            except Missing:
                info = {}
            self._image_tests[image] = list(((info.get("Config") or {}).get("Healthcheck") or {}).get("Test")
                                            or []) or None
        return self._image_tests[image]

    def nodes(self) -> list[dict[str, Any]]:
        """The swarm's nodes, raw (role, availability, state, hostname)."""
        return list(self._call("list nodes", self.reads.nodes))

    # --- writes ----------------------------------------------------------------------

    def create_service(self, body: Mapping[str, Any], secrets: Mapping[str, str]) -> str:
        """`POST /services/create`; returns the service's id."""
        b = _revealed(body, secrets)
        with self.marks(b["Name"]):
            result = self._write(
                f"create service {b['Name']}", lambda c: c.post("/services/create", b),
                lambda api: api.create_service(
                    b["TaskTemplate"], name=b["Name"], labels=b["Labels"], mode=b["Mode"],
                    update_config=b.get("UpdateConfig"), rollback_config=b.get("RollbackConfig"),
                    endpoint_spec=b["EndpointSpec"]), pulls=True)
        return str(result["ID"])

    def update_service(self, ident: str, version: int, body: Mapping[str, Any],
                       secrets: Mapping[str, str]) -> None:
        """`POST /services/{id}/update?version=…` with the whole new spec."""
        self._update(ident, version, _revealed(body, secrets))

    def _update(self, ident: str, version: int, b: Mapping[str, Any]) -> None:
        with self.marks(b["Name"]):
            self._update_now(ident, version, b)

    def _update_now(self, ident: str, version: int, b: Mapping[str, Any]) -> None:
        self._write(
            f"update service {b['Name']}",
            lambda c: c.post(f"/services/{quote(ident, safe='')}/update", b, {"version": version}),
            lambda api: api.update_service(
                ident, version, task_template=b["TaskTemplate"], name=b["Name"], labels=b.get("Labels"),
                mode=b["Mode"], update_config=b.get("UpdateConfig"), rollback_config=b.get("RollbackConfig"),
                endpoint_spec=b.get("EndpointSpec")), pulls=True)

    def scale(self, ident: str, replicas: int | None, *, force: bool = False) -> None:
        """Set a service's replicas (None: leave its mode, a global one's) and with `force`, roll
        every task (ForceUpdate + 1), sending back the spec the manager holds, unchanged
        otherwise (no defaults filled in: they would read as a new TaskTemplate and roll the tasks)."""
        info = self.inspect_service(ident)
        spec = dict(info["Spec"])
        task = dict(spec["TaskTemplate"])
        if force:
            task["ForceUpdate"] = int(task.get("ForceUpdate") or 0) + 1
        spec["TaskTemplate"] = task
        if replicas is not None:
            spec["Mode"] = {"Replicated": {"Replicas": replicas}}
        self._update(ident, int(info["Version"]["Index"]), spec)

    def remove_service(self, ident: str) -> None:
        """Remove a service (Swarm stops its tasks). A job's tasks that ended stay behind as
        containers (moby/moby#42789: nothing removes them): those on this node go too."""
        try:
            self._write(f"remove service {ident}", lambda c: c.delete(f"/services/{quote(ident, safe='')}"),
                        lambda api: api.remove_service(ident))
        except Missing:
            pass
        ended = self._call("list containers", self.reads.containers, all=True,
                           filters={"label": [f"com.docker.swarm.service.id={ident}"], "status": ["exited", "dead"]})
        for row in ended:  # (a running task's container is Swarm's to stop and remove)
            try:
                self.engine.remove(str(row["Id"]))
            except EngineError:  # (Missing among them: Swarm removed it first) a later look is not needed
                pass

    def ensure_network(self, name: str, project: str, key: str = L.DEFAULT_NETWORK, *,
                       internal: bool = False) -> None:
        """An attachable overlay of the project (labelled with syncer.yaml's name for it;
        `internal`: with no route out), created when missing (with Swarm's address pools)."""
        found = self._call("list networks", self.reads.networks, names=[name])
        if any(n.get("Name") == name for n in found):
            return
        labels = L.network_labels(project, key)
        self._write(f"create network {name}",
                    lambda c: c.post("/networks/create", {"Name": name, "Driver": "overlay", "Attachable": True,
                                                          "Internal": internal, "Labels": labels,
                                                          "CheckDuplicate": True}),
                    lambda api: api.create_network(name, driver="overlay", attachable=True, labels=labels,
                                                   check_duplicate=True, internal=internal))

    def remove_network(self, name: str, project: str) -> str:
        """Remove one of the project's overlays; "" when it is gone, else why not (the engine's
        message: still in use by a task that is stopping). The manager takes the DELETE while
        the node still holds the overlay for the tasks of a removed service that are stopping
        (their stop grace period): until it is out of the list, it is not gone — the next plan
        would remove it again."""
        def ours() -> list[dict[str, Any]]:
            return [n for n in self._call("list networks", self.reads.networks, names=[name])
                    if n.get("Name") == name and (n.get("Labels") or {}).get(L.PROJECT) == project]

        for n in ours():
            ident = str(n["Id"])
            try:
                self._write(f"remove network {name}", lambda c: c.delete(f"/networks/{quote(ident, safe='')}"),
                            lambda api: api.remove_network(ident))
            except Missing:
                pass
            except EngineError as exc:
                return str(exc)
        return "still held by the tasks of a removed service that are stopping" if ours() else ""

    def ensure_files(self, files: list[SwarmFile], project: str, definition: str,
                     secrets: Mapping[str, str]) -> dict[str, str]:
        """Configs and secrets by their content-hash names, created when missing; name → id."""
        have = {**self._files("config", project), **self._files("secret", project)}
        ids = {}
        for f in files:
            if f.name not in have:
                labels = {L.PROJECT: project, L.DEFINITION: definition}
                data = reveal(f.data, secrets)  # a secret's value goes to the manager and nowhere else
                have[f.name] = self.create_object(f.kind, f.name, data.encode(), labels)
            ids[f.name] = have[f.name]
        return ids

    def create_object(self, kind: str, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        """`POST /configs/create` or `/secrets/create` (kind "config" or "secret"); its id.
        Names are unique in the swarm: a taken one is Conflict."""
        body = {"Name": name, "Labels": dict(labels), "Data": base64.b64encode(data).decode()}
        made = self._write(f"create {kind} {name}", lambda c: c.post(f"/{kind}s/create", body),
                           lambda api: getattr(api, f"create_{kind}")(name, data, labels=dict(labels)))
        return str(made["ID"])

    def find_object(self, kind: str, name: str) -> dict[str, Any] | None:
        """A config or secret of this exact name: its id, labels and (a config's; a secret's is
        never read back) data, and when it was made; None when there is none."""
        for r in self._list(kind, {"name": [name]}):  # (a prefix match: the exact name is picked here)
            if (r.get("Spec") or {}).get("Name") == name:
                return {"id": str(r["ID"]), "labels": dict(r["Spec"].get("Labels") or {}),
                        "data": base64.b64decode(r["Spec"].get("Data") or ""), "created": r.get("CreatedAt")}
        return None

    def remove_object(self, kind: str, ident: str) -> None:
        """Remove a config or a secret."""
        self._write(f"remove {kind} {ident}", lambda c: c.delete(f"/{kind}s/{quote(ident, safe='')}"),
                    lambda api: getattr(api, f"remove_{kind}")(ident))

    def file_names(self, ident: str) -> set[str]:
        """The names of the configs and secrets a service's spec (as it stands) gives its tasks."""
        cs = (self.inspect_service(ident).get("Spec") or {}).get("TaskTemplate", {}).get("ContainerSpec", {})
        return {str(f.get(key)) for field, key in (("Configs", "ConfigName"), ("Secrets", "SecretName"))
                for f in cs.get(field) or []}

    def prune_files(self, project: str, definition: str, keep: set[str]) -> list[str]:
        """Remove the definition's configs and secrets not in `keep`; those still used by a
        task being shut down stay until a later apply. Returns the names removed."""
        gone = []
        for kind in ("config", "secret"):
            for name, ident in self._files(kind, project, definition).items():
                if name in keep:
                    continue
                try:
                    self.remove_object(kind, ident)
                    gone.append(name)
                except Exception:  # noqa: BLE001 - in use by a task still stopping
                    continue
        return gone

    def _files(self, kind: str, project: str, definition: str | None = None) -> dict[str, str]:
        labels = [f"{L.PROJECT}={project}"] + ([f"{L.DEFINITION}={definition}"] if definition else [])
        return {r["Spec"]["Name"]: r["ID"] for r in self._list(kind, {"label": labels})}

    def _list(self, kind: str, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """`GET /configs` or `/secrets` (kind "config" or "secret") with these filters."""
        return list(self._call(f"list {kind}s", getattr(self.reads, f"{kind}s"), filters=filters))

    def logs(self, ident: str, *, tail: int = 100, since: int | None = None) -> str:
        """A service's recent output, every task's lines merged in time order (each line starts
        with its RFC 3339 time, nine fraction digits: the text sorts as the times do); the last
        `tail` of them, after `since` (unix seconds) when it is above 0. A stream: the SDK's."""
        since = since if since is not None and since > 0 else None
        chunks = self._call(f"logs of service {ident}", self.api.service_logs, ident, stdout=True, stderr=True,
                            timestamps=True, tail=tail, since=since, follow=False)
        text = b"".join(self._call(f"logs of service {ident}", list, chunks)).decode("utf-8", "replace")
        lines = sorted(text.splitlines())  # (a sort is stable: one task's lines of one time stay in order)
        return "".join(f"{line}\n" for line in lines[-tail:])

    def events(self, project: str, *, since: int | None = None) -> Iterator[dict[str, Any]]:
        """The project's service events (create, update, remove) and its tasks' containers.
        A service event names its service only (no labels): the project's services are
        listed once, and a service created or updated later is looked at once; each event
        of theirs is given its definition's label."""
        ours = {str(s["Spec"]["Name"]): str((s["Spec"].get("Labels") or {}).get(L.DEFINITION, ""))
                for s in self._call("list services", self.reads.services,
                                    filters={"label": [f"{L.PROJECT}={project}"]})}
        stream = self._call("events", self.api.events, decode=True, since=since,
                            filters={"type": ["service", "container"]})
        for event in stream:
            actor = event.get("Actor") or {}
            attrs = actor.get("Attributes") or {}
            if event.get("Type") != "service":
                if attrs.get(L.PROJECT) == project:
                    yield event
                continue
            name = str(attrs.get("name", ""))
            if name not in ours and event.get("Action") in ("create", "update"):
                definition = self._ours(actor, project)
                if definition is not None:
                    ours[name] = definition
            if name in ours:
                yield {**event, "Actor": {**actor, "Attributes": {**attrs, L.DEFINITION: ours[name]}}}

    def _ours(self, actor: Mapping[str, Any], project: str) -> str | None:
        """The service's definition when it is the project's."""
        try:
            labels = self.inspect_service(str(actor.get("ID", ""))).get("Spec", {}).get("Labels") or {}
        except (Missing, EngineError):
            return None  # removed meanwhile: its remove event names a service we never had
        return str(labels.get(L.DEFINITION, "")) if labels.get(L.PROJECT) == project else None


def _is_job(service: Mapping[str, Any]) -> bool:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    return "ReplicatedJob" in mode or "GlobalJob" in mode


def _revealed(body: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """Secret references replaced by values in the env and arguments only (labels keep
    the references: they are read back by every list call)."""
    cs = dict(body["TaskTemplate"]["ContainerSpec"])
    for key in ("Env", "Args", "Command"):
        if key in cs:
            cs[key] = [reveal(v, secrets) for v in cs[key]]
    return {**body, "TaskTemplate": {**body["TaskTemplate"], "ContainerSpec": cs}}
