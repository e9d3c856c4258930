"""Compose's `expose`: one normal form (sorted, distinct `PORT/PROTO`, ranges expanded), a
located error for an entry that is no port set, ExposedPorts beside the published ports at
create, and nothing in a Swarm service."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.adapters.container_args import create_args
from syncer.stages import swarm
from syncer.stages.shortforms import MAX_EXPOSED_RANGE, SpecError, expose
from tests.unit.test_shortforms import _render
from tests.unit.test_validate import diagnostics, repo


def test_the_normal_form_is_sorted_distinct_port_slash_protocol_with_ranges_expanded() -> None:
    written = ["8000-8002", 3000, "3000", "53/udp", "9000-9001/tcp", "3000/tcp", "8001", "10000/sctp"]
    assert expose(written) == ["53/udp", "3000/tcp", "8000/tcp", "8001/tcp", "8002/tcp",
                               "9000/tcp", "9001/tcp", "10000/sctp"]


def test_a_range_is_bounded_and_must_run_forwards() -> None:
    assert len(expose([f"1-{MAX_EXPOSED_RANGE}"])) == MAX_EXPOSED_RANGE
    with pytest.raises(SpecError, match=r"expose: '1-1001': the range spans 1001 ports \(at most 1000 in one\)"):
        expose([f"1-{MAX_EXPOSED_RANGE + 1}"])
    with pytest.raises(SpecError, match=r"expose: '9001-9000': the range runs backwards"):
        expose(["9001-9000"])
    with pytest.raises(SpecError, match=r"expose: cannot read 'http'"):
        expose(["http"])


@pytest.mark.parametrize("short,long", [
    ('expose: [3000, "3000", "3000/tcp"]', 'expose: ["3000/tcp"]'),
    ('expose: ["8000-8002", "53/udp"]', 'expose: ["53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]'),
    ('expose: ["${inputs.port}"]', 'expose: ["8080/tcp"]'),
], ids=["repeated", "range-and-udp", "substituted"])
def test_short_and_long_forms_give_one_spec_hash(tmp_path: Path, short: str, long: str) -> None:
    a = _render(tmp_path / "a", short)
    b = _render(tmp_path / "b", long)
    assert a.spec["expose"] == b.spec["expose"]
    assert a.spec_hash == b.spec_hash


def _template(spec_line: str, profile_line: str = "{}") -> str:
    return f"""
        id: web
        version: "1.0"
        spec:
          image: busybox:1
          {spec_line}
        profiles:
          development: {profile_line}
        """


def _project(template: str, definition: str = "name: web\ntemplate: web\n") -> list[str]:
    return diagnostics(repo({"syncer.yaml": "project: p\n", "templates/web.yaml": template,
                             "definitions/web.yaml": definition}))


def test_a_value_that_is_no_port_is_a_located_schema_error() -> None:
    found = _project(_template('expose: [3000, "3000-x", 70000, true, "0", "80/xyz"]'))
    description = ("a port or a range: PORT, PORT/PROTO, PORT-PORT or PORT-PORT/PROTO"
                   " (PORT 1-65535, PROTO tcp, udp or sctp)")
    assert found == [
        f'templates/web.yaml:5:18: spec.expose[1]: "3000-x" is not {description}',
        "templates/web.yaml:5:28: spec.expose[2]: 70000 is greater than the maximum of 65535",
        "templates/web.yaml:5:35: spec.expose[3]: expected integer or string, got boolean",
        f'templates/web.yaml:5:41: spec.expose[4]: "0" is not {description}',
        f'templates/web.yaml:5:46: spec.expose[5]: "80/xyz" is not {description}',
    ]


def test_expose_is_a_list_in_a_profile_too() -> None:
    assert _project(_template("", "{expose: 3000}")) == [
        "templates/web.yaml:7:25: profiles.development.expose: expected array, got integer"]


def test_a_range_too_wide_or_backwards_is_located_where_it_is_written() -> None:
    assert _project(_template('expose: ["1-2000"]', '{expose: ["9001-9000/udp"]}')) == [
        "templates/web.yaml:5:12: spec.expose[0]: '1-2000': the range spans 2000 ports (at most 1000 in one)",
        "templates/web.yaml:7:26: profiles.development.expose[0]: '9001-9000/udp': the range runs backwards",
    ]
    overridden = _project(_template("expose: [80]"), 'name: web\ntemplate: web\noverrides:\n  expose: [80, "100-1100"]\n')
    assert overridden == [
        "definitions/web.yaml:4:16: overrides.expose[1]: '100-1100': the range spans 1001 ports (at most 1000 in one)"]


def test_a_substituted_range_too_wide_is_an_error_at_render(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"definitions/d.yaml: definition 'web': expose: '1-5000': the range spans 5000"):
        _render(tmp_path, 'expose: ["1-${inputs.port}"]', params="{port: 5000}")


def test_exposed_ports_join_the_published_ones_once_each_without_a_binding() -> None:
    spec = {"image": "i", "ports": [{"container_port": 80, "host_port": 8080, "protocol": "tcp"},
                                    {"container_port": 53, "protocol": "udp"}],
            "expose": ["53/udp", "80/tcp", "3000/tcp", "5353/udp"]}
    args = create_args(spec, {})
    assert args["ports"] == [(80, "tcp"), (53, "udp"), (3000, "tcp"), (5353, "udp")]
    assert args["host_config"]["port_bindings"] == {"80/tcp": 8080, "53/udp": None}
    only = create_args({"image": "i", "expose": ["3000/tcp", "9000/sctp"]}, {})
    assert only["ports"] == [(3000, "tcp"), (9000, "sctp")] and "port_bindings" not in only["host_config"]


def test_a_swarm_service_has_no_exposed_ports(tmp_path: Path) -> None:
    c = _render(tmp_path, 'ports: ["8080:80"]\nexpose: ["3000", "53/udp"]')
    assert c.spec["expose"] == ["53/udp", "3000/tcp"]
    body = swarm.service_spec(c, {})
    assert body["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]
    assert "3000" not in str(body)  # expose reaches no part of the service spec
