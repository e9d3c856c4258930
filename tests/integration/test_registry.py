"""Images from a real registry (Debian's docker-registry on a loopback port): an absent image
is pulled, and `pull_policy: always` follows its tag when the registry moves it to another
image. Checked through the engine: the image each container runs, not printed text (except
the plan's cause, which is the contract)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import HEALTHY_IMAGE, IMAGE, git_init, run_cli, simple_repo, wait_until
from tests.watching import Watch, start as _start
from tests.registry import Registry

APP = """
id: app
version: "1.0"
inputs: {{type: object, properties: {{}}}}
spec:
  image: {ref}
  pull_policy: {policy}
  command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


def _repo(tmp_path: Path, project: str, ref: str, policy: str) -> Path:
    return simple_repo(tmp_path / "repo", project, templates={"app": APP.format(ref=ref, policy=policy)},
                       definitions={"web": "name: web\ntemplate: app\n"})


def _cli(repo: Path, tmp_path: Path, *args: str, login: Path | None = None) -> subprocess.CompletedProcess[str]:
    """syncer with the docker client config `login` (DOCKER_CONFIG; an empty one by default)."""
    if login is None:
        (login := tmp_path / "no-login").mkdir(exist_ok=True)
    return run_cli("--repo", str(repo), "--state-dir", str(tmp_path / "state"), *args,
                   env={"DOCKER_CONFIG": str(login)})


def _image_of(api: Any, project: str) -> str:
    [row] = api.containers(all=True, filters={"label": f"syncer.project={project}"})
    return str(api.inspect_container(row["Id"])["Image"])


def _web(plan: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert plan.returncode == 0, plan.stdout + plan.stderr
    return next(a for a in json.loads(plan.stdout)["actions"] if a["container"].endswith("web"))


def test_an_image_absent_here_is_pulled_from_its_registry_and_runs(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry) -> None:
    ref = registry.push(IMAGE, f"{project}/app:1")
    docker_api.remove_image(ref)  # only the registry has this name now
    repo = _repo(tmp_path, project, ref, "missing")
    out = _cli(repo, tmp_path, "apply", "--auto-approve")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"image {ref} is not present: pulling" in out.stdout
    assert _image_of(docker_api, project) == docker_api.inspect_image(ref)["Id"]
    assert any(d.endswith("@" + registry.digest(ref)) for d in docker_api.inspect_image(ref)["RepoDigests"])


def test_pull_policy_always_follows_a_tag_the_registry_moves_to_another_image(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry) -> None:
    ref = registry.push(IMAGE, f"{project}/app:1")
    first_digest = registry.digest(ref)
    repo = _repo(tmp_path, project, ref, "always")
    out = _cli(repo, tmp_path, "apply", "--auto-approve")
    assert out.returncode == 0, out.stdout + out.stderr
    before = _image_of(docker_api, project)
    assert _web(_cli(repo, tmp_path, "plan", "--json"))["action"] == "noop"

    registry.push(HEALTHY_IMAGE, f"{project}/app:1")  # the tag moves; nothing here pulled it
    docker_api.tag(IMAGE, ref)  # (as if this engine still had the old one under the tag)
    moved = _web(_cli(repo, tmp_path, "plan", "--json"))
    assert moved["action"] == "recreate" and moved["cause"] == f"{ref} names another image in its registry now"
    assert docker_api.inspect_image(ref)["Id"] == before  # a plan pulls nothing

    out = _cli(repo, tmp_path, "apply", "--auto-approve")
    assert out.returncode == 0, out.stdout + out.stderr
    after = _image_of(docker_api, project)
    assert after == docker_api.inspect_image(HEALTHY_IMAGE)["Id"] != before
    assert _web(_cli(repo, tmp_path, "plan", "--json"))["action"] == "noop"

    # the history says which image each deployment rolled out: the revision alone cannot
    listed = _cli(repo, tmp_path, "deployments", "list", "--definition", "web", "--json")
    assert listed.returncode == 0, listed.stderr
    rolled, first = json.loads(listed.stdout)
    assert rolled["revision"] == first["revision"]
    assert (first["images"], rolled["images"]) == ({ref: first_digest}, {ref: registry.digest(ref)})
    assert first_digest != registry.digest(ref)
    shown = _cli(repo, tmp_path, "deployments", "show", rolled["id"])
    assert f"image:      {ref} = {registry.digest(ref)}" in shown.stdout, shown.stdout


def test_an_apply_runs_the_digest_its_plan_showed_though_the_tag_moves_again_before_it_pulls(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry, monkeypatch: Any) -> None:
    """The plan heard the tag name one image; someone pushes a third under the same tag while
    the apply waits for its confirmation (before anything is pulled). What runs, what the
    deployment records and what the tag names here is the image the plan showed; the third
    is the next plan's to roll out."""
    from syncer.engine import facade as engine
    from syncer.engine.options import ApplyOptions

    third = f"syncer-local/{project}-third:1"
    subprocess.run(["docker", "build", "-q", "-t", third, "-"], input=f"FROM {IMAGE}\nLABEL test={project}\n",
                   text=True, check=True, capture_output=True)
    ref = registry.push(IMAGE, f"{project}/app:1")
    repo = _repo(tmp_path, project, ref, "always")
    try:
        assert _cli(repo, tmp_path, "apply", "--auto-approve").returncode == 0
        registry.push(HEALTHY_IMAGE, f"{project}/app:1")
        shown, shown_id = registry.digest(ref), docker_api.inspect_image(HEALTHY_IMAGE)["Id"]
        docker_api.tag(IMAGE, ref)  # (this engine still has the first image under the tag)

        def confirm(plan: Any) -> bool:
            assert [a.action for a in plan.actions if a.action != "noop"] == ["recreate"]
            registry.push(third, f"{project}/app:1")  # the tag moves on before the apply pulls
            return True

        (login := tmp_path / "no-login").mkdir(exist_ok=True)
        monkeypatch.setenv("DOCKER_CONFIG", str(login))
        ctx = engine.Context(repo=repo, state_dir=tmp_path / "state")
        report = engine.apply(ctx, options=ApplyOptions(stop_timeout=1), confirm=confirm)
        assert report.ok, [r.error for r in report.results]
        assert registry.digest(ref) != shown
        assert _image_of(docker_api, project) == shown_id == docker_api.inspect_image(ref)["Id"]
        listed = _cli(repo, tmp_path, "deployments", "list", "--definition", "web", "--json")
        assert json.loads(listed.stdout)[0]["images"] == {ref: shown}
        moved = _web(_cli(repo, tmp_path, "plan", "--json"))
        assert moved["action"] == "recreate" and moved["cause"] == f"{ref} names another image in its registry now"
    finally:
        subprocess.run(["docker", "rmi", "-f", third], capture_output=True)


def test_a_rollback_returns_a_followed_tag_to_the_image_it_named_before_it_moved(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry) -> None:
    ref = registry.push(IMAGE, f"{project}/app:1")
    old, old_digest = docker_api.inspect_image(IMAGE)["Id"], registry.digest(ref)
    repo = _repo(tmp_path, project, ref, "always")
    assert _cli(repo, tmp_path, "apply", "--auto-approve").returncode == 0
    registry.push(HEALTHY_IMAGE, f"{project}/app:1")  # the tag moves: the next apply rolls it
    new, new_digest = docker_api.inspect_image(HEALTHY_IMAGE)["Id"], registry.digest(ref)
    assert _cli(repo, tmp_path, "apply", "--auto-approve").returncode == 0
    assert _image_of(docker_api, project) == new

    # one revision, two images: the rollback goes back to the digest the tag named before
    back = _cli(repo, tmp_path, "rollback", "web", "--auto-approve")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"{ref} at {old_digest}" in back.stdout, back.stdout
    assert _image_of(docker_api, project) == old
    [row] = docker_api.containers(filters={"label": f"syncer.project={project}"})
    assert row["Image"].endswith(f"@{old_digest}")
    # pinned: the tag, which names the new image in the registry, is not followed
    assert _web(_cli(repo, tmp_path, "plan", "--json"))["action"] == "noop"
    assert _cli(repo, tmp_path, "apply", "--auto-approve").returncode == 0
    assert _image_of(docker_api, project) == old

    # and a rollback of the rollback goes forward to what the tag named after it moved
    again = _cli(repo, tmp_path, "rollback", "web", "--auto-approve")
    assert again.returncode == 0 and f"{ref} at {new_digest}" in again.stdout, again.stdout + again.stderr
    assert _image_of(docker_api, project) == new

    # a change to the definition in git ends the pin: the tag is followed again
    (repo / "templates/app.yaml").write_text(APP.format(ref=ref, policy="always") + "  env: {V: \"2\"}\n")
    assert _cli(repo, tmp_path, "apply", "--auto-approve").returncode == 0
    assert _image_of(docker_api, project) == new
    [row] = docker_api.containers(filters={"label": f"syncer.project={project}"})
    assert row["Image"] == ref


def test_the_api_undoes_a_tag_roll_by_its_deployment(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry) -> None:
    """`POST /deployments/{id}/rollback` of the deployment that rolled a moved tag out (one
    revision, another image) deploys again the digest the tag named before it."""
    from tests.apiserver import serve

    ref = registry.push(IMAGE, f"{project}/app:1")
    old, old_digest = docker_api.inspect_image(IMAGE)["Id"], registry.digest(ref)
    (login := tmp_path / "no-login").mkdir()
    with serve(tmp_path, project, templates={"app": APP.format(ref=ref, policy="always")},
               definitions={"web": f"name: {project}-web\ntemplate: app\n"}, env={"DOCKER_CONFIG": str(login)}) as s:
        registry.push(HEALTHY_IMAGE, f"{project}/app:1")
        queued = s.ok("POST", "/deployments", 202, json={"definition_id": s.n("web")})["data"]
        assert s.wait_sync(queued["request_id"])["status"] == "success"
        assert _image_of(docker_api, project) == docker_api.inspect_image(HEALTHY_IMAGE)["Id"]
        rolled, first = s.ok("GET", "/deployments")["data"]
        assert rolled["revision"] == first["revision"] == 1 and first["images"] == {ref: old_digest}

        result = s.ok("POST", f"/deployments/{rolled['id']}/rollback")["data"]
        assert result["ok"] is True and result["deployments"][0]["status"] == "success"
        assert _image_of(docker_api, project) == old
        [row] = docker_api.containers(filters={"label": f"syncer.project={project}"})
        assert row["Image"] == f"{ref.rsplit(':', 1)[0]}@{old_digest}"
        revs = s.ok("GET", f"/definitions/{s.n('web')}/revisions")["data"]
        assert (revs[0]["revision"], revs[0]["rollback_of"]) == (2, 1)
        # undoing the first deployment: nothing ran before it
        s.error("POST", f"/deployments/{first['id']}/rollback", 409, "conflict")


def test_several_followed_images_are_asked_at_once_on_connections_of_their_own(
        tmp_path: Path, project: str, registry: Registry, monkeypatch: Any) -> None:
    """Through the real engine, each worker on its own connection to its socket: the same
    answers as the registry's own, one question per image, the engine's client left as it was."""
    from syncer.adapters.docker import Engine
    from syncer.adapters.images import registry_digests
    from syncer.core.model import Server

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no docker login: the engine's socket asks
    refs = [registry.push(image, f"{project}/{name}:1")
            for image, name in ((IMAGE, "web"), (HEALTHY_IMAGE, "api"), (IMAGE, "worker"))]
    seen = len(registry.requests())
    engine = Engine(Server("local"))
    try:
        answers = registry_digests(engine, [*refs, refs[0]])
        assert {ref: (a.digest, a.error) for ref, a in answers.items()} == {ref: (registry.digest(ref), "")
                                                                          for ref in refs}
        assert engine.reads.containers(filters={"label": [f"syncer.project={project}"]}) == []  # still answers
    finally:
        engine.close()
    asked = "\n".join(line for line in registry.requests()[seen:] if "/manifests/" in line)
    assert all(f"/v2/{project}/{name}/manifests/" in asked for name in ("web", "api", "worker")), asked


def test_a_registry_that_does_not_answer_changes_nothing_and_the_plan_says_why(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry) -> None:
    ref = registry.push(IMAGE, f"{project}/app:1")
    repo = _repo(tmp_path, project, ref, "always")
    assert _cli(repo, tmp_path, "apply", "--auto-approve").returncode == 0
    running = _image_of(docker_api, project)
    registry.stop()
    try:
        web = _web(_cli(repo, tmp_path, "plan", "--json"))
        assert web["action"] == "noop" and web["cause"].startswith(f"in sync; the tag was not checked: ask the registry for {ref}")
        out = _cli(repo, tmp_path, "apply", "--auto-approve")
        assert out.returncode == 0, out.stdout + out.stderr
        assert _image_of(docker_api, project) == running
    finally:
        registry.start()


def test_a_private_registry_is_reached_with_the_clients_docker_login_and_the_password_never_shows(
        tmp_path: Path, project: str, docker_api: Any, private_registry: Registry) -> None:
    ref = private_registry.push(IMAGE, f"{project}/app:1")
    docker_api.remove_image(ref)
    repo = _repo(tmp_path, project, ref, "always")
    refused = _cli(repo, tmp_path, "apply", "--auto-approve")  # no login: the registry says no
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"image {ref} could not be pulled: " in refused.stdout and "no basic auth credentials" in refused.stdout
    assert docker_api.containers(all=True, filters={"label": f"syncer.project={project}"}) == []

    login = private_registry.login
    out = _cli(repo, tmp_path, "apply", "--auto-approve", login=login)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _image_of(docker_api, project) == docker_api.inspect_image(ref)["Id"]
    plan = _cli(repo, tmp_path, "plan", "--json", login=login)
    assert (_web(plan)["action"], _web(plan)["cause"]) == ("noop", "in sync")  # the tag was checked, with the login
    for said in (refused, out, plan):
        assert private_registry.password not in said.stdout + said.stderr


def test_an_image_named_by_digest_is_pulled_by_that_digest(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry) -> None:
    own = f"syncer-local/{project}:1"  # an image of this test's own, so that it can be gone here
    subprocess.run(["docker", "build", "-q", "-t", own, "-"], input=f"FROM {IMAGE}\nLABEL test={project}\n",
                   text=True, check=True, capture_output=True)
    built = docker_api.inspect_image(own)["Id"]
    tagged = registry.push(own, f"{project}/app:1")
    pinned = f"{tagged.rsplit(':', 1)[0]}@{registry.digest(tagged)}"
    registry.push(HEALTHY_IMAGE, f"{project}/app:1")  # the tag moves on; the digest still names the first
    docker_api.remove_image(built, force=True)
    repo = _repo(tmp_path, project, pinned, "missing")
    try:
        out = _cli(repo, tmp_path, "apply", "--auto-approve")
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"image {pinned} is not present: pulling" in out.stdout
        assert _image_of(docker_api, project) == built
        assert _web(_cli(repo, tmp_path, "plan", "--json"))["action"] == "noop"
    finally:
        _cli(repo, tmp_path, "destroy", "--auto-approve")
        subprocess.run(["docker", "rmi", "-f", built], capture_output=True)


def test_watch_rolls_out_a_tag_pushed_again_at_its_next_resync(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry, watches: list[Watch]) -> None:
    ref = registry.push(IMAGE, f"{project}/app:1")
    repo = _repo(tmp_path, project, ref, "always")
    git_init(repo)
    w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(tmp_path / "state"), "watch",
               "--resync", "2s", "--no-self-heal")
    first = docker_api.inspect_image(IMAGE)["Id"]
    wait_until(lambda: _running_image(docker_api, project) == first, 60, message="first apply")
    registry.push(HEALTHY_IMAGE, f"{project}/app:1")  # no commit: only the registry moved
    moved = docker_api.inspect_image(HEALTHY_IMAGE)["Id"]
    wait_until(lambda: _running_image(docker_api, project) == moved, 60, message="the moved tag rolled out")
    assert w.stop() == 0


def _running_image(api: Any, project: str) -> str:
    rows = api.containers(filters={"label": f"syncer.project={project}", "status": "running"})
    return str(rows[0]["ImageID"]) if len(rows) == 1 else ""


def test_a_self_heal_restores_what_ran_and_leaves_a_moved_tag_to_the_next_sync(
        tmp_path: Path, project: str, docker_api: Any, registry: Registry, watches: list[Watch]) -> None:
    """A self-heal asks no registry (its round trip would keep the killed container down):
    it starts the container again as it was; the tag that moved waits for a sync."""
    ref = registry.push(IMAGE, f"{project}/app:1")
    repo = _repo(tmp_path, project, ref, "always")
    git_init(repo)
    w = _start(watches, tmp_path, "--repo", str(repo), "--state-dir", str(tmp_path / "state"), "watch", "--resync", "1h")
    first = docker_api.inspect_image(IMAGE)["Id"]
    wait_until(lambda: _running_image(docker_api, project) == first, 60, message="first apply")
    [row] = docker_api.containers(filters={"label": f"syncer.project={project}"})
    registry.push(HEALTHY_IMAGE, f"{project}/app:1")
    docker_api.kill(row["Id"])
    wait_until(lambda: _running_image(docker_api, project) == first, 60, message="self-heal")
    [healed] = docker_api.containers(filters={"label": f"syncer.project={project}"})
    assert healed["Id"] == row["Id"]  # started again, not recreated with the moved tag's image
    moved = _web(_cli(repo, tmp_path, "plan", "--json"))
    assert moved["action"] == "recreate"  # (the next sync rolls it out)
    assert "planned again" not in w.text()  # the heal's own plan was the restore: no lock, no second plan


def test_status_asks_no_registry(tmp_path: Path, project: str, docker_api: Any, registry: Registry) -> None:
    """The dashboard asks for the status every second: a registry (which counts manifest
    requests) is asked by plans and applies only."""
    ref = registry.push(IMAGE, f"{project}/app:1")
    repo = _repo(tmp_path, project, ref, "always")
    assert _cli(repo, tmp_path, "apply", "--auto-approve").returncode == 0
    asked = len(registry.requests())
    status = _cli(repo, tmp_path, "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert len(registry.requests()) == asked
    assert _cli(repo, tmp_path, "plan").returncode == 0
    assert len(registry.requests()) > asked  # (a plan does ask: the count would see it)


def test_a_test_registry_takes_its_images_off_the_engine_and_leaves_the_local_ones(
        project: str, docker_api: Any) -> None:
    """Each registry fixture tagged and pulled `127.0.0.1:<port>/…` images on the main engine
    and left them there: a thousand references after a day of CI runs."""
    reg = Registry()
    reg.start()
    try:
        ref = reg.push(IMAGE, f"{project}/app:1")
        docker_api.remove_image(ref)
        docker_api.pull(ref)  # as syncer pulls it: a tag and a digest reference
        reg.push(HEALTHY_IMAGE, f"{project}/app:1")  # the tag moves: the old image keeps its digest
        assert len(reg.refs_here()) >= 3
    finally:
        reg.destroy()
    assert reg.refs_here() == []
    assert docker_api.inspect_image(IMAGE)["Id"] and docker_api.inspect_image(HEALTHY_IMAGE)["Id"]
