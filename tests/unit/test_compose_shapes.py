"""A list-only (or mapping-only) service field written in another shape is a located problem,
as Compose (`docker compose config`) refuses it, never read as something else. (QA:
`profiles: debug` was imported as an always-on service; `cap_add: NET_ADMIN` and the like
reached the repository as they were.)"""

from __future__ import annotations

import pytest

from syncer.stages.compose import import_compose


def _problems(field: str) -> list[str]:
    data = f"services:\n  web:\n    image: busybox\n    {field}\n".encode()
    got = import_compose("c.yaml", data, read=lambda rel: None, project="p", folder="p")
    return [str(p) for p in got.problems]


@pytest.mark.parametrize(("field", "said"), [
    ("profiles: debug", "4:5: service 'web': profiles: expected a list, got a string"),
    ("profiles: [1]", "4:16: service 'web': profiles.0: expected a string, got a number"),
    ("cap_add: NET_ADMIN", "4:5: service 'web': cap_add: expected a list, got a string"),
    ("cap_drop: ALL", "4:5: service 'web': cap_drop: expected a list, got a string"),
    ("dns_opt: use-vc", "4:5: service 'web': dns_opt: expected a list, got a string"),
    ("expose: 80", "4:5: service 'web': expose: expected a list, got a number"),
    ("group_add: wheel", "4:5: service 'web': group_add: expected a list, got a string"),
    ("security_opt: label:disable", "4:5: service 'web': security_opt: expected a list, got a string"),
    ("devices: /dev/x:/dev/x", "4:5: service 'web': devices: expected a list, got a string"),
    ("links: db", "4:5: service 'web': links: expected a list, got a string"),
    ("labels: a=b", "4:5: service 'web': labels: expected a list or a mapping, got a string"),
    ("sysctls: a=1", "4:5: service 'web': sysctls: expected a list or a mapping, got a string"),
    ("extra_hosts: a:1.2.3.4", "4:5: service 'web': extra_hosts: expected a list or a mapping, got a string"),
    ("ulimits: 5", "4:5: service 'web': ulimits: expected a mapping, got a number"),
    ("healthcheck: x", "4:5: service 'web': healthcheck: expected a mapping, got a string"),
    ("logging: x", "4:5: service 'web': logging: expected a mapping, got a string"),
    ("command: 1", "4:5: service 'web': command: expected a string or a list, got a number"),
    ("cap_add: [1]", "4:15: service 'web': cap_add.0: expected a string, got a number"),
    ("dns: [1]", "4:11: service 'web': dns.0: expected a string, got a number"),
    ("labels: [1]", "4:14: service 'web': labels.0: expected a string, got a number"),
    ("expose: [{a: 1}]", "4:14: service 'web': expose.0: expected a string or a number, got a mapping"),
])
def test_a_field_of_another_shape_than_composes_is_a_located_problem(field: str, said: str) -> None:
    assert _problems(field) == [f"c.yaml:{said} (Compose refuses it too)"]


@pytest.mark.parametrize("field", ["profiles: [debug]", "dns: 8.8.8.8", "dns_search: example.com", "expose: [80]",
                                   "group_add: [1, wheel]", "labels: {a: b}", "labels: [a=b]", "command: sleep 1",
                                   "extra_hosts: {a: 1.2.3.4}", "healthcheck: {test: [CMD, 'true']}"])
def test_the_shapes_compose_takes_are_no_problem(field: str) -> None:
    assert _problems(field) == []


def test_a_service_in_profiles_written_as_text_is_not_imported_as_always_on_silently() -> None:
    data = b"services:\n  web: {image: busybox}\n  debug:\n    image: busybox\n    profiles: debug\n"
    got = import_compose("c.yaml", data, read=lambda rel: None, project="p", folder="p")
    assert [str(p) for p in got.problems] == [
        "c.yaml:5:5: service 'debug': profiles: expected a list, got a string (Compose refuses it too)"]
