"""`ipam` on a network of syncer.yaml, on the real engine: the network is made with the
subnet, gateway and range syncer.yaml gives it, a container's `ipv4_address` on it is the
address it gets (Docker refuses one on a network without a subnet it was given), and a
subnet changed afterwards (Docker cannot change it in place) is a planned conflict that an
apply reports, exit 1, touching nothing."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from tests.helpers import run_cli, write_files
from tests.integration.test_networks_files_jobs import SLEEPER


def _cli(repo: Path, *args: str) -> Any:
    out = run_cli("--repo", str(repo), "--state-dir", str(repo / ".state"), *args)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def test_a_network_is_made_with_its_pools_and_a_fixed_address_is_the_containers(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    web, dns = f"{project}-web", f"{project}_dns"
    octet = 16 + zlib.crc32(project.encode()) % 200  # (a subnet of this test's own)
    subnet, other = f"10.213.{octet}.0/24", f"10.214.{octet}.0/24"
    pools = f"{{config: [{{subnet: {subnet}, gateway: 10.213.{octet}.1, ip_range: 10.213.{octet}.128/25}}]}}"
    repo = write_files(tmp_path / "r", {
        "syncer.yaml": f"project: {project}\nnetworks:\n  dns: {{ipam: {pools}}}\n",
        "templates/sleeper.yaml": SLEEPER,
        "definitions/web.yaml": f"name: {web}\ntemplate: sleeper\n"
                                f"overrides: {{networks: {{dns: {{ipv4_address: 10.213.{octet}.10}}}}}}\n",
    })
    plan = json.loads(_cli(repo, "plan", "--json").stdout)
    [made] = [a for a in plan["actions"] if a["container"] == dns]
    assert made["action"] == "network create" and made["cause"] == f"network absent (subnet {subnet})"
    applied = _cli(repo, "apply", "--auto-approve", "--stop-timeout", "1")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    [found] = [n for n in docker_api.networks(names=[dns]) if n["Name"] == dns]
    assert docker_api.inspect_network(found["Id"])["IPAM"]["Config"] == [
        {"Subnet": subnet, "Gateway": f"10.213.{octet}.1", "IPRange": f"10.213.{octet}.128/25"}]
    joined = docker_api.inspect_container(web)["NetworkSettings"]["Networks"][dns]
    assert joined["IPAddress"] == f"10.213.{octet}.10"
    assert "No changes." in _cli(repo, "plan").stdout

    # another subnet: Docker cannot change it in place; plan and apply say so and touch nothing
    (repo / "syncer.yaml").write_text(f"project: {project}\nnetworks:\n  dns: {{ipam: {{config: [{{subnet: {other}}}]}}}}\n")
    out = _cli(repo, "apply", "--auto-approve", "--stop-timeout", "1")
    assert out.returncode == 1 and f"! network conflict {dns}" in out.stdout and f"subnets are {subnet} but syncer.yaml gives it" \
        f" {other}" in out.stdout, out.stdout
    assert docker_api.inspect_network(found["Id"])["IPAM"]["Config"][0]["Subnet"] == subnet
    assert docker_api.inspect_container(web)["State"]["Running"]


def test_the_project_network_takes_pools_as_default_and_a_fixed_address_on_it(
        tmp_path: Path, project: str, docker_api: Any) -> None:
    web = f"{project}-web"
    octet = 16 + zlib.crc32(project.encode()) % 200
    repo = write_files(tmp_path / "r", {
        "syncer.yaml": f"project: {project}\nnetworks:\n  default: {{ipam: {{config: [{{subnet: 10.216.{octet}.0/24}}]}}}}\n",
        "templates/sleeper.yaml": SLEEPER,
        "definitions/web.yaml": f"name: {web}\ntemplate: sleeper\n"
                                f"overrides: {{networks: {{default: {{ipv4_address: 10.216.{octet}.20}}}}}}\n",
    })
    applied = _cli(repo, "apply", "--auto-approve", "--stop-timeout", "1")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    [found] = [n for n in docker_api.networks(names=[project]) if n["Name"] == project]
    assert docker_api.inspect_network(found["Id"])["IPAM"]["Config"][0]["Subnet"] == f"10.216.{octet}.0/24"
    assert docker_api.inspect_container(web)["NetworkSettings"]["Networks"][project]["IPAddress"] == \
        f"10.216.{octet}.20"
