"""The spec hash is a contract: changing it recreates every container of every user."""

from __future__ import annotations

from syncer.core import labels as L

FIXED_SPEC = {
    "image": "syncer-local/busybox:latest",
    "command": ["sh", "-c", "echo hi"],
    "env": {"B": "2", "A": "1", "PASSWORD": "<<secret:DB_PASSWORD:0123456789abcdef0123456789abcdef>>"},
    "ports": [{"container_port": 8080, "host_port": 18080, "protocol": "tcp"}],
    "resources": {"memory": "64m"},
    "volumes": [{"mount_path": "/data", "name": "web_1"}],
    "labels": {"tier": "front", "ünïcode": "värde"},
}


def test_spec_hash_is_pinned() -> None:
    # If this fails, hashing changed: every deployed container would be recreated.
    assert L.spec_hash(FIXED_SPEC) == PINNED


def test_spec_hash_ignores_key_order() -> None:
    reordered = dict(reversed(list(FIXED_SPEC.items())))
    reordered["env"] = dict(reversed(list(FIXED_SPEC["env"].items())))  # type: ignore[call-overload]
    assert L.spec_hash(reordered) == L.spec_hash(FIXED_SPEC)


def test_canonical_json_is_compact_sorted_utf8() -> None:
    assert L.canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'


def test_secret_refs_are_keyed_and_revealed_only_on_request() -> None:
    ref = L.secret_ref("DB", "hunter2", b"k" * 32)
    assert "hunter2" not in ref and ref == L.secret_ref("DB", "hunter2", b"k" * 32)
    assert ref != L.secret_ref("DB", "hunter2", b"j" * 32)
    assert ref != L.secret_ref("DB", "hunter3", b"k" * 32)
    assert L.reveal(f"pw={ref};", {"DB": "hunter2"}) == "pw=hunter2;"
    assert L.has_secret({"a": [ref]}) and not L.has_secret({"a": ["x"]})
    assert L.secret_names({"a": ref}) == {"DB"}


def test_container_names_and_labels() -> None:
    assert L.container_name("web", 1) == "web" and L.container_name("web", 3) == "web-3"
    lab = L.container_labels(project="p", definition="web", replica=2, revision=7, spec_hash_="sha256:x",
                             template_ref="box@1.0", commit="abc", spec={"image": "i"})
    assert lab == {"syncer.project": "p", "syncer.definition": "web", "syncer.replica": "2",
                   "syncer.revision": "7", "syncer.spec-hash": "sha256:x", "syncer.template": "box@1.0",
                   "syncer.commit": "abc", "syncer.spec": '{"image":"i"}'}


PINNED = "sha256:c3441de0cc6cba179f406ab33097435ce2013bd8e10f75c7f7464cbb66da401a"


def test_pull_policy_is_not_part_of_the_hash() -> None:
    assert L.spec_hash({**FIXED_SPEC, "pull_policy": "never"}) == PINNED
