"""Render on data: substitution, profiles, overrides, replicas, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.core.errors import SecretError
from syncer.core.labels import has_secret, secret_ref
from syncer.stages.load import DirTree
from syncer.stages.render import deep_merge, render
from syncer.stages.validate import build_project
from tests.helpers import write_files

KEY = b"k" * 32

TEMPLATE = """
id: app
version: "2.0"
inputs:
  type: object
  required: [name]
  properties:
    name: {type: string}
    port: {type: integer, default: 8080}
    debug: {type: boolean, default: false}
    extra_port: {type: integer}
    note: {type: string}
    password: {type: string, format: password, writeOnly: true}
spec:
  image: {repository: registry.local/app, tag: "2.0"}
  command: "serve --port ${inputs.port}"
  env:
    APP_NAME: ${inputs.name}
    DEBUG: ${inputs.debug}
    WHERE: "${server.name}/${server.environment}/${profile}/${definition.name}"
    NOTE: ${inputs.note}
    DB_URL: "postgres://app:${inputs.password}@db/app"
  ports:
    - {container_port: 8080, host_port: "${inputs.port}"}
    - {container_port: 9090, host_port: "${inputs.extra_port}"}
  volumes: [{mount_path: /data}]
profiles:
  development: {resources: {memory: 64m}, env: {LEVEL: debug}}
  production: {resources: {memory: 1g, cpus: 2}, restart: always, replicas: 3}
"""


def _project(tmp_path: Path, definition: str, extra: str = ""):  # type: ignore[no-untyped-def]
    write_files(tmp_path, {
        "syncer.yaml": "project: r\nservers:\n  s1: {environment: staging}\n" + extra,
        "templates/app.yaml": TEMPLATE,
        "definitions/d.yaml": definition,
    })
    return build_project(DirTree(tmp_path), str(tmp_path))


def test_substitution_types_profiles_and_optional_inputs(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: web\ntemplate: app\nparams: {name: shop, port: 9000}\n")
    [c] = render(p, secrets={}, secret_key=KEY).containers
    spec = c.spec
    assert spec["image"] == "registry.local/app:2.0"
    assert spec["command"] == ["serve", "--port", "9000"]
    assert spec["env"] == {"APP_NAME": "shop", "DEBUG": "false", "WHERE": "s1/staging/development/web",
                           "LEVEL": "debug"}  # NOTE and DB_URL dropped: optional inputs without value
    assert spec["ports"] == [{"container_port": 8080, "host_port": 9000, "protocol": "tcp"}]
    assert spec["resources"] == {"memory": "64m"}
    assert spec["volumes"] == [{"mount_path": "/data", "name": "web_1"}]
    assert c.template_ref == "app@2.0" and c.server == "s1"


def test_whole_value_substitution_keeps_the_input_type(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: web\ntemplate: app\nparams: {name: shop, port: 9000}\n")
    [c] = render(p, secrets={}, secret_key=KEY).containers
    assert isinstance(c.spec["ports"][0]["host_port"], int)


def test_profile_replicas_and_overrides(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: api\ntemplate: app\nprofile: production\n"
                 "params: {name: x}\noverrides: {env: {TZ: UTC}, resources: {memory: 2g}, ports: [{container_port: 8080}]}\n")
    cs = render(p, secrets={}, secret_key=KEY).containers
    assert [c.name for c in cs] == ["api", "api-2", "api-3"]
    assert cs[0].spec["resources"] == {"memory": "2g", "cpus": 2} and cs[0].spec["restart"] == "always"
    assert cs[0].spec["env"]["TZ"] == "UTC"
    assert cs[1].spec["volumes"] == [{"mount_path": "/data", "name": "api-2_1"}]
    assert len({c.spec_hash for c in cs}) == 3  # volumes differ per replica


def test_definition_replicas_win_over_profile(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: api\ntemplate: app\nprofile: production\nreplicas: 1\nparams: {name: x}\n")
    assert len(render(p, secrets={}, secret_key=KEY).containers) == 1


def test_secrets_become_keyed_references(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: web\ntemplate: app\nparams:\n  name: x\n  password: {secret: DB_PW}\n")
    [c] = render(p, secrets={"DB_PW": "hunter2"}, secret_key=KEY).containers
    assert c.spec["env"]["DB_URL"] == f"postgres://app:{secret_ref('DB_PW', 'hunter2', KEY)}@db/app"
    assert "hunter2" not in str(c.spec) and has_secret(c.spec)
    [rotated] = render(p, secrets={"DB_PW": "hunter3"}, secret_key=KEY).containers
    assert rotated.spec_hash != c.spec_hash


def test_a_secret_as_a_label_is_refused_not_written_as_its_reference(tmp_path: Path) -> None:
    """Labels are never revealed (syncer reads them back; anyone who lists containers sees
    them): the container got the label `<<secret:DB_PW:...>>`, silently."""
    from syncer.stages.shortforms import SpecError

    for field in ("labels", "service_labels"):
        p = _project(tmp_path, "name: web\ntemplate: app\nparams:\n  name: x\n  password: {secret: DB_PW}\n"
                               f"overrides:\n  {field}: {{leak: 'pw=${{inputs.password}}'}}\n")
        with pytest.raises(SpecError, match=f"definitions/d.yaml: definition 'web': {field}.leak: a secret cannot be"
                                            " a label: labels are shown to whoever lists containers"):
            render(p, secrets={"DB_PW": "hunter2"}, secret_key=KEY)


def test_missing_secret_names_it(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: web\ntemplate: app\nparams:\n  name: x\n  password: {secret: DB_PW}\n")
    with pytest.raises(SecretError, match="secret DB_PW is not set"):
        render(p, secrets={}, secret_key=KEY)


@pytest.mark.parametrize("allowed", ["[DB_PW]", "[DB_*]"])
def test_a_missing_secret_that_syncer_yaml_allows_asks_only_for_its_value(tmp_path: Path, allowed: str) -> None:
    """It said to allow it in syncer.yaml (secrets: {env: [DB_PW]}) when syncer.yaml did already."""
    p = _project(tmp_path, "name: web\ntemplate: app\nparams:\n  name: x\n  password: {secret: DB_PW}\n",
                 f"secrets: {{env: {allowed}}}\n")
    with pytest.raises(SecretError) as caught:
        render(p, secrets={"OTHER": "CANARY-other-value"}, secret_key=KEY)
    assert str(caught.value).endswith("definition 'web': secret DB_PW is not set: set the environment variable"
                                      " DB_PW (syncer.yaml allows it) or put it in --secrets-file")
    assert "CANARY" not in str(caught.value)


def test_a_missing_secret_not_allowed_asks_to_allow_it_too(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: web\ntemplate: app\nparams:\n  name: x\n  password: {secret: DB_PW}\n",
                 "secrets: {env: [OTHER]}\n")
    with pytest.raises(SecretError, match=r"secret DB_PW is not set: put it in --secrets-file, or set the"
                                          r" environment variable and allow it in syncer.yaml \(secrets: \{env: "
                                          r"\[DB_PW\]\}\)"):
        render(p, secrets={}, secret_key=KEY)


def test_render_is_deterministic(tmp_path: Path) -> None:
    p = _project(tmp_path, "name: web\ntemplate: app\nparams: {name: shop}\n")
    a = render(p, secrets={}, secret_key=KEY)
    b = render(p, secrets={}, secret_key=KEY)
    assert [c.spec_hash for c in a.containers] == [c.spec_hash for c in b.containers]


def test_deep_merge() -> None:
    assert deep_merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"c": 3}, "l": [2]}) == {"a": {"b": 1, "c": 3}, "l": [2]}


def test_a_literal_brace_expression_reaches_the_container_as_written_once(tmp_path: Path) -> None:
    """`$${POSTGRES_USER}` in a healthcheck is the container's own variable, for its shell:
    no input to declare, and Docker gets `${POSTGRES_USER}`."""
    write_files(tmp_path, {
        "syncer.yaml": "project: r\n",
        "templates/db.yaml": "id: db\nversion: '1'\ninputs: {type: object, properties: {db: {type: string}}}\n"
                             "spec:\n  image: postgres\n  healthcheck:\n"
                             "    test: [CMD-SHELL, 'pg_isready -U $${POSTGRES_USER} -d ${inputs.db}']\n",
        "definitions/d.yaml": "name: pg\ntemplate: db\nparams: {db: shop}\n",
    })
    [c] = render(build_project(DirTree(tmp_path), str(tmp_path)), secrets={}, secret_key=KEY).containers
    assert c.spec["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready -U ${POSTGRES_USER} -d shop"]
