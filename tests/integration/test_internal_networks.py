"""`internal: true` on a network of syncer.yaml, on the real engine: the network is made with
Docker's Internal flag and the container joins it; a flag flipped afterwards (Docker cannot
change it in place) is a planned conflict on the network, and the way out its cause names
(the containers and the network removed, then apply) makes it again as syncer.yaml says.
On a Swarm server: tests/integration/test_swarm.py (the overlay)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import run_cli, write_files
from tests.integration.test_networks_files_jobs import SLEEPER


def _cli(repo: Path, *args: str) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(repo / ".state"), *args)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def _apply(repo: Path, *, code: int = 0) -> Any:
    out = _cli(repo, "apply", "--auto-approve", "--stop-timeout", "1")
    assert out.returncode == code, out.stdout + out.stderr
    return out


def _network(api: Any, name: str) -> dict[str, Any]:
    [found] = [n for n in api.networks(names=[name]) if n["Name"] == name]
    return dict(api.inspect_network(found["Id"]))


def test_an_internal_network_is_made_internal_and_a_flag_flipped_later_is_a_planned_conflict(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    web, api, back = f"{project}-web", f"{project}-api", f"{project}_back"
    repo = write_files(tmp_path / "r", {
        "syncer.yaml": f"project: {project}\nnetworks:\n  back: {{internal: true}}\n",
        "templates/sleeper.yaml": SLEEPER,
        "definitions/web.yaml": f"name: {web}\ntemplate: sleeper\noverrides: {{networks: [back]}}\n",
        "definitions/api.yaml": f"name: {api}\ntemplate: sleeper\noverrides: {{networks: [default, back]}}\n",
    })
    plan = json.loads(_cli(repo, "plan", "--json").stdout)
    assert {a["container"]: a["cause"] for a in plan["actions"] if a["action"] == "network create"} == {
        project: "network absent", back: "network absent (internal: no route out of the host)"}
    _apply(repo)
    made = _network(docker_api, back)
    assert made["Internal"] is True and made["Labels"] == {"syncer.project": project, "syncer.network": "back"}
    assert _network(docker_api, project)["Internal"] is False  # the project network is not
    # on internal networks only, web is left off the project network (it has a route out);
    # api, which lists the project network (`default`), joins both
    joined = docker_api.inspect_container(web)["NetworkSettings"]["Networks"]
    assert set(joined) == {back} and joined[back]["NetworkID"] == made["Id"]
    assert set(docker_api.inspect_container(api)["NetworkSettings"]["Networks"]) == {project, back}
    assert "No changes." in _cli(repo, "plan").stdout

    # the flag taken off: Docker cannot change it in place; the plan says so and leaves it
    (repo / "syncer.yaml").write_text(f"project: {project}\nnetworks:\n  back: {{}}\n")
    out = _cli(repo, "plan", "--json", "--detailed-exitcode")
    assert out.returncode == 2, out.stdout + out.stderr
    [conflict] = [a for a in json.loads(out.stdout)["actions"] if a["action"] == "conflict"]
    assert (conflict["container"], conflict["definition"], conflict["container_id"]) == (back, "", made["Id"])
    assert conflict["reasons"] == [{"field": "internal", "before": True, "after": False}]
    assert conflict["cause"].startswith("the network is internal but syncer.yaml makes it not internal")
    text = _cli(repo, "plan").stdout
    assert f"! network conflict {back}  the network is internal" in text
    assert "1 conflict(s): resolve them by hand; syncer will not touch those networks." in text
    _apply(repo, code=1)  # a conflict is not done: exit 1, as for a container's
    assert _network(docker_api, back)["Id"] == made["Id"]

    # the way out the cause names: its containers and the network removed, then apply
    docker_api.remove_container(web, force=True)
    docker_api.remove_container(api, force=True)
    docker_api.remove_network(made["Id"])
    _apply(repo)
    again = _network(docker_api, back)
    assert again["Internal"] is False and again["Id"] != made["Id"]
    assert back in docker_api.inspect_container(web)["NetworkSettings"]["Networks"]
    assert "No changes." in _cli(repo, "plan").stdout


def test_project_network_false_keeps_a_container_to_its_own_networks(tmp_path: Path, project: str,
                                                                     docker_api: Any) -> None:
    """As a Compose service that lists networks but not `default`: a database on the back
    network is not on the project network that every other container joins."""
    db, web = f"{project}-db", f"{project}-web"
    repo = write_files(tmp_path / "r", {
        "syncer.yaml": f"project: {project}\nnetworks:\n  back: {{}}\n",
        "templates/sleeper.yaml": SLEEPER,
        "definitions/db.yaml": f"name: {db}\ntemplate: sleeper\n"
                               "overrides: {networks: [back], project_network: false}\n",
        "definitions/web.yaml": f"name: {web}\ntemplate: sleeper\n",
    })
    _apply(repo)
    assert set(docker_api.inspect_container(db)["NetworkSettings"]["Networks"]) == {f"{project}_back"}
    assert set(docker_api.inspect_container(web)["NetworkSettings"]["Networks"]) == {project}
    assert "No changes." in _cli(repo, "plan").stdout
