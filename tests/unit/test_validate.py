"""syncer.stages.validate on data: input normalisation, version selection, cycles, whole projects."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from syncer.core.errors import InvalidProject
from syncer.stages.load import DirTree
from syncer.stages.validate import build_project, check_name, find_cycles, normalise_inputs

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


@dataclass
class MemTree:
    """A repository held in memory: the Tree protocol without a disk."""

    files: Mapping[str, str] = field(default_factory=dict)

    def read(self, path: str) -> bytes | None:
        text = self.files.get(path)
        return None if text is None else text.encode("utf-8")

    def yaml_files(self, folder: str) -> list[str]:
        prefix = folder.rstrip("/") + "/"
        return sorted(p for p in self.files if p.startswith(prefix) and p.endswith((".yaml", ".yml")))


def repo(files: Mapping[str, str]) -> MemTree:
    return MemTree({k: textwrap.dedent(v).lstrip("\n") for k, v in files.items()})


def diagnostics(tree: MemTree) -> list[str]:
    with pytest.raises(InvalidProject) as info:
        build_project(tree, "/repo")
    return info.value.lines()


WEB = """
    id: web
    version: "{version}"
    deprecated: {deprecated}
    inputs:
      type: object
      properties:
        message: {{type: string}}
    spec:
      image: busybox:{version}
      env: {{MESSAGE: "${{inputs.message}}"}}
    profiles:
      development: {{resources: {{memory: 64m}}}}
    """


def web(version: str, deprecated: bool = False) -> str:
    return WEB.format(version=version, deprecated=str(deprecated).lower())


# --- normalise_inputs --------------------------------------------------------------------

def test_short_form_becomes_json_schema() -> None:
    short = {
        "root_password": {"type": "password", "required": True},
        "database": {"type": "string", "required": True, "pattern": "^[a-z_]+$"},
        "port": {"type": "integer", "default": 3306},
        "debug": "boolean",
    }
    assert normalise_inputs(short) == {
        "type": "object",
        "properties": {
            "root_password": {"type": "string", "format": "password", "writeOnly": True},
            "database": {"type": "string", "pattern": "^[a-z_]+$"},
            "port": {"type": "integer", "default": 3306},
            "debug": {"type": "boolean"},
        },
        "required": ["root_password", "database"],
    }
    assert short["root_password"] == {"type": "password", "required": True}  # input untouched


def test_short_form_without_required_inputs_has_no_required_list() -> None:
    assert normalise_inputs({"queue": {"type": "string", "required": False}}) == {
        "type": "object", "properties": {"queue": {"type": "string"}},
    }


def test_json_schema_is_kept_and_only_password_types_change() -> None:
    full = {
        "type": "object",
        "required": ["pw"],
        "additionalProperties": False,
        "properties": {"pw": {"type": "password", "minLength": 12}, "n": {"type": "integer"}},
    }
    assert normalise_inputs(full) == {
        "type": "object",
        "required": ["pw"],
        "additionalProperties": False,
        "properties": {
            "pw": {"type": "string", "format": "password", "writeOnly": True, "minLength": 12},
            "n": {"type": "integer"},
        },
    }


def test_empty_inputs_are_an_empty_object_schema() -> None:
    assert normalise_inputs({}) == {"type": "object", "properties": {}}


# --- find_cycles -------------------------------------------------------------------------

def test_find_cycles_reports_each_cycle_once_from_its_smallest_name() -> None:
    graph = {"c": ("a",), "a": ("b",), "b": ("c",), "x": ("y",), "y": ()}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_find_cycles_finds_separate_cycles_and_ignores_dags() -> None:
    graph = {"a": ("b",), "b": ("a",), "m": ("n",), "n": ("o",), "o": ("m",), "p": ("a", "m")}
    assert sorted(find_cycles(graph)) == [["a", "b"], ["m", "n", "o"]]
    assert find_cycles({"a": ("b", "c"), "b": ("c",), "c": ()}) == []
    assert find_cycles({}) == []


def test_check_name() -> None:
    assert check_name("mysql_producao-2.x")
    assert not check_name("-web") and not check_name("my web") and not check_name("")


# --- whole projects ----------------------------------------------------------------------

def test_demo_builds_into_a_project() -> None:
    project = build_project(DirTree(DEMO), str(DEMO))
    assert project.config.name == "demo"
    assert sorted(t.ref for t in project.templates) == ["web@1.0", "worker@1.0"]
    by_name = {d.name: d for d in project.definitions}
    assert sorted(by_name) == ["demo-web", "demo-worker"]
    worker = by_name["demo-worker"]
    assert (worker.template, worker.template_version, worker.replicas) == ("worker", "1.0", 2)
    assert worker.depends_on == ("demo-web",)
    assert worker.origin.file == "definitions/apps/worker.yaml"
    assert (by_name["demo-web"].server, by_name["demo-web"].profile) == ("local", "development")
    worker_tpl = next(t for t in project.templates if t.id == "worker")
    assert worker_tpl.inputs["required"] == ["interval"]  # the short form, normalised
    assert worker_tpl.spec_hash.startswith("sha256:")


def test_unpinned_template_takes_the_highest_non_deprecated_version() -> None:
    tree = repo({
        "syncer.yaml": "project: p\n",
        "templates/a.yaml": web("1.9"),
        "templates/b.yaml": web("1.10"),
        "templates/c.yaml": web("2.0", deprecated=True),
        "templates/d.yaml": web("1.2"),
        "definitions/x.yaml": """
            name: latest
            template: web
            params: {message: hi}
            ---
            name: pinned
            template: web@2.0
            params: {message: hi}
            """,
    })
    project = build_project(tree, "/repo")
    versions = {d.name: d.template_version for d in project.definitions}
    assert versions == {"latest": "1.10", "pinned": "2.0"}  # 1.10 > 1.9: numeric, not text


def test_when_every_version_is_deprecated_the_newest_is_used() -> None:
    tree = repo({
        "syncer.yaml": "project: p\n",
        "templates/a.yaml": web("1.0", deprecated=True),
        "templates/b.yaml": web("3.0", deprecated=True),
        "definitions/x.yaml": "name: xx\ntemplate: web\n",
    })
    assert build_project(tree, "/repo").definitions[0].template_version == "3.0"


LITERAL = "literal-PASSWORD-1234"


def secret_repo(allow: bool, value: str) -> MemTree:
    return repo({
        "syncer.yaml": f"project: p\nallow_literal_secrets: {str(allow).lower()}\n",
        "templates/db.yaml": """
            id: db
            version: "1"
            inputs:
              root_password: {type: password, required: true}
            spec:
              image: busybox
              env: {PW: "${inputs.root_password}"}
            """,
        "definitions/db.yaml": f"name: db\ntemplate: db\nparams:\n  root_password: {value}\n",
    })


def test_allow_literal_secrets_accepts_a_literal_password() -> None:
    project = build_project(secret_repo(True, LITERAL), "/repo")
    assert project.config.allow_literal_secrets is True
    assert project.definitions[0].params == {"root_password": LITERAL}


def test_a_literal_password_is_refused_by_default_without_echoing_it() -> None:
    lines = diagnostics(secret_repo(False, LITERAL))
    assert lines == [
        ("definitions/db.yaml:4:18: params.root_password is a password input: give {secret: NAME},"
         " not a literal value (or set allow_literal_secrets: true in syncer.yaml)"),
    ]
    assert LITERAL not in "\n".join(lines)


def test_a_secret_reference_is_accepted() -> None:
    project = build_project(secret_repo(False, "{secret: DB_ROOT_PASSWORD}"), "/repo")
    assert project.definitions[0].params == {"root_password": {"secret": "DB_ROOT_PASSWORD"}}


def test_defaults_come_from_syncer_yaml() -> None:
    tree = repo({
        "syncer.yaml": """
            project: p
            servers:
              a: {environment: staging}
              b: {environment: production}
            defaults: {server: b, profile: development}
            """,
        "templates/web.yaml": web("1.0"),
        "definitions/x.yaml": "name: xx\ntemplate: web\n",
    })
    project = build_project(tree, "/repo")
    d = project.definitions[0]
    assert (d.server, d.profile, d.replicas) == ("b", "development", None)
    assert project.config.servers["b"].environment == "production"


def test_every_problem_is_reported_at_once_sorted_by_file_and_line() -> None:
    tree = repo({
        "syncer.yaml": "project: p\n",
        "templates/web.yaml": web("1.0"),
        "definitions/b.yaml": "name: bb\ntemplate: web\nprofile: nope\n",
        "definitions/a.yaml": "name: aa\ntemplate: nope\n---\nname: cc\ntemplate: web\nreplicas: x\n",
    })
    assert diagnostics(tree) == [
        "definitions/a.yaml:2:11: unknown template 'nope' (known: web)",
        "definitions/a.yaml:6:11: replicas: expected integer, got string",
        "definitions/b.yaml:3:10: template 'web@1.0' has no profile 'nope' (profiles: development)",
    ]


def test_a_broken_template_does_not_make_its_definitions_report_it_unknown() -> None:
    tree = repo({
        "syncer.yaml": "project: p\n",
        "templates/web.yaml": 'id: web\nversion: "1"\nspec: {image: busybox, restart: sometimes}\n',
        "definitions/x.yaml": "name: xx\ntemplate: web\n",
    })
    lines = diagnostics(tree)
    assert len(lines) == 1 and lines[0].startswith("templates/web.yaml:3:")


def test_an_unknown_default_server_is_reported_once_in_syncer_yaml() -> None:
    tree = repo({
        "syncer.yaml": "project: p\ndefaults: {server: nowhere}\n",
        "templates/web.yaml": web("1.0"),
        "definitions/x.yaml": "name: xx\ntemplate: web\n",
    })
    assert diagnostics(tree) == ["syncer.yaml:2:20: unknown server 'nowhere' (known: local)"]


def test_folders_outside_the_repository_are_reported_and_never_read() -> None:
    class Guarded(MemTree):
        def yaml_files(self, folder: str) -> list[str]:
            assert not folder.startswith("/") and ".." not in folder.split("/"), folder
            return super().yaml_files(folder)

    tree = Guarded({"syncer.yaml": "project: p\ntemplates: [/etc, ../x]\n"})
    with pytest.raises(InvalidProject) as info:
        build_project(tree, "/repo")
    assert info.value.lines() == [
        "syncer.yaml:2:13: templates[0]: folders must be inside the repository",
        "syncer.yaml:2:19: templates[1]: folders must be inside the repository",
    ]


def test_a_missing_syncer_yaml_inside_a_tree_is_a_diagnostic() -> None:
    assert diagnostics(MemTree({})) == ["syncer.yaml: file not found"]


def _tls_project(tls: str) -> MemTree:
    return repo({"syncer.yaml": f"""
        project: p
        servers:
          db:
            docker: tcp://db.example.com:2376
            tls: {tls}
        """})


def test_tls_files_resolve_inside_the_repository_or_name_a_variable() -> None:
    from syncer.core.model import TLS, FileRef

    project = build_project(_tls_project("{ca: certs/ca.pem, cert: certs/c.pem, key: {env: DB_KEY}, verify: true}"),
                            "/repo")
    assert project.config.servers["db"].tls == TLS(FileRef("certs/ca.pem", "/repo"), FileRef("certs/c.pem", "/repo"),
                                                   FileRef(env="DB_KEY"), True)


def test_tls_files_outside_the_repository_and_a_lone_cert_are_refused_without_the_key_path() -> None:
    found = diagnostics(_tls_project("{ca: ../ca.pem, cert: certs/c.pem, key: /etc/keys/secret-db.pem}"))
    assert found == ["syncer.yaml:5:15: tls.ca: the file must be inside the repository (or use {env: VAR})",
                     "syncer.yaml:5:50: tls.key: the file must be inside the repository (or use {env: VAR})"]
    assert not any("/etc/keys" in line for line in found)
    lone = diagnostics(_tls_project("{ca: certs/ca.pem, cert: certs/c.pem}"))
    assert lone == ["syncer.yaml:5:35: tls: a client certificate needs its key (cert and key go together)"]
    lone = diagnostics(_tls_project("{ca: certs/ca.pem, key: {env: DB_KEY}}"))
    assert lone == ["syncer.yaml:5:34: tls: a client key needs its certificate (cert and key go together)"]


def test_a_profile_takes_every_field_a_spec_takes() -> None:
    """The docs say a profile takes the fields of a spec; the profile's schema was a copy that
    had fallen behind (no placement, update, files, env_file, network_mode, …). It is the spec's."""
    tree = repo({
        "syncer.yaml": "project: p\n",
        "templates/web.yaml": """
            id: web
            version: "1.0"
            spec: {image: busybox}
            profiles:
              production:
                replicas: 3
                placement: {constraints: [node.role == worker], max_replicas_per_node: 1}
                update: {order: stop-first, parallelism: 2}
                rollback: {parallelism: 1}
                restart_policy: {delay: 5s}
                service_labels: {traefik.enable: "true"}
                endpoint_mode: dnsrr
                project_network: true
                networks: {}
              edge: {mode: global, env_file: [web.env]}
            """,
        "definitions/x.yaml": "name: xx\ntemplate: web\nprofile: production\n",
    })
    [template] = build_project(tree, "/repo").templates
    assert template.profiles["production"]["placement"] == {"constraints": ["node.role == worker"],
                                                            "max_replicas_per_node": 1}
    assert template.profiles["edge"]["mode"] == "global"
    bad = repo({**tree.files, "templates/web.yaml": tree.files["templates/web.yaml"].replace("dnsrr", "dns")})
    assert diagnostics(bad) == ['templates/web.yaml:12:20: profiles.production.endpoint_mode: "dns" is not one of'
                                ' "vip", "dnsrr"']


def test_a_name_the_server_kind_cannot_carry_is_refused_at_validate_not_at_apply() -> None:
    """The name becomes a container's (Docker: two characters at least) or a Swarm service's
    (a DNS name component, <= 63): what the engine would refuse at apply, validate refuses."""
    long = "s" + "x" * 63
    tree = repo({
        "syncer.yaml": "project: p\nservers:\n  local: {}\n  sw: {kind: swarm}\ndefaults: {server: local}\n",
        "templates/web.yaml": web("1.0"),
        "definitions/c.yaml": "name: c\ntemplate: web\n---\nname: c.2\ntemplate: web\n",
        "definitions/s.yaml": "".join(f"name: {n}\ntemplate: web\nserver: sw\n---\n"
                                      for n in ("s.1", "s-", "_s", long, "s", "my_app", "s--x", long[:63])),
    })
    assert diagnostics(tree) == [
        "definitions/c.yaml:1:7: definition name 'c' cannot name a container: Docker wants at least two characters",
        "definitions/s.yaml:1:7: definition name 's.1' cannot name a Swarm service: letters and digits,"
        " joined by '-' or '_' (no '.', no '-' or '_' at either end)",
        "definitions/s.yaml:5:7: definition name 's-' cannot name a Swarm service: letters and digits,"
        " joined by '-' or '_' (no '.', no '-' or '_' at either end)",
        'definitions/s.yaml:9:7: name: "_s" does not match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$',  # (any server's)
        f"definitions/s.yaml:13:7: definition name '{long}' is 64 characters; a Swarm service name is at most 63",
    ]


def test_a_named_volumes_propagation_is_a_located_error_at_validate() -> None:
    tree = repo({
        "syncer.yaml": "project: p\n",
        "templates/web.yaml": 'id: web\nversion: "1"\nspec:\n  image: busybox\n'
                              '  volumes: ["/:/rootfs:ro,rslave", "data:/data:rshared", {name: x, mount_path: /x, propagation: slave}]\n',
        "definitions/x.yaml": "name: xx\ntemplate: web\n",
    })
    assert diagnostics(tree) == [
        "templates/web.yaml:5:36: spec.volumes[1]: /data: propagation is a host_path bind's (a named volume has none)",
        "templates/web.yaml:5:58: spec.volumes[2]: /x: propagation is a host_path bind's (a named volume has none)",
    ]


def test_replicas_are_capped_at_1000_in_a_profile_and_an_override_as_in_a_definition() -> None:
    tree = repo({
        "syncer.yaml": "project: p\n",
        "templates/web.yaml": 'id: web\nversion: "1"\nspec: {image: busybox}\nprofiles:\n  development: {replicas: 100000}\n',
        "definitions/x.yaml": "name: xx\ntemplate: web\noverrides: {replicas: 5000}\n",
    })
    assert diagnostics(tree) == [
        "definitions/x.yaml:3:23: overrides.replicas: 5000 is greater than the maximum of 1000",
        "templates/web.yaml:5:27: profiles.development.replicas: 100000 is greater than the maximum of 1000",
    ]
