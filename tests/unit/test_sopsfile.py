"""The SOPS file format read without decrypting (stages/sopsfile.py), on the SOPS project's
own functional-test files (tests/cases/sops/SOURCE.md), and syncer.yaml's `secrets.files`."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncer.core.errors import InvalidProject, SecretError
from syncer.stages.sopsfile import Rules, file_format, float_text, go_text, parse_sops
from syncer.stages.tree import DirTree
from syncer.stages.validate import build_project
from tests.helpers import simple_repo

CASES = Path(__file__).resolve().parents[1] / "cases" / "sops"
SOPS_TEST_KEY = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"


def _doc(name: str):  # type: ignore[no-untyped-def]
    return parse_sops(name, (CASES / name).read_bytes())


@pytest.mark.parametrize("name", ["format.enc.yaml", "format.enc.json", "format.enc.env"])
def test_each_format_yields_its_value_and_its_pgp_recipient(name: str) -> None:
    doc = _doc(name)
    assert [(leaf.name, leaf.value[:18]) for leaf in doc.leaves] == [("foo", "ENC[AES256_GCM,dat")]
    assert [(s.kind, s.recipient) for s in doc.stanzas] == [("pgp", SOPS_TEST_KEY)]
    assert doc.stanzas[0].enc.startswith("-----BEGIN PGP MESSAGE-----\n")
    assert doc.mac.startswith("ENC[AES256_GCM,") and doc.lastmodified.endswith("Z")
    assert doc.rules.unencrypted_suffix == "_unencrypted"


def test_dotenv_keeps_the_key_as_written_for_the_additional_data() -> None:
    leaf, = _doc("format.enc.env").leaves
    assert leaf.keys == ("foo ",) and leaf.name == "foo"


def test_multiple_recipients_are_all_named() -> None:
    doc = _doc("multiple_keys.yaml")
    assert doc.recipients() == f"pgp {SOPS_TEST_KEY}, pgp D7229043384BCC60326C6FB9D8720D957C3D3074"


def test_nested_keys_and_list_items_are_named_with_dots_but_lists_stay_out_of_the_path() -> None:
    text = b"db:\n  password: ENC[x]\n  hosts: [a, b]\nsops: {lastmodified: '2024-01-01T00:00:00Z', mac: m}\n"
    doc = parse_sops("s.yaml", text)
    assert [(leaf.keys, leaf.name) for leaf in doc.leaves] == [
        (("db", "password"), "db.password"), (("db", "hosts"), "db.hosts.0"), (("db", "hosts"), "db.hosts.1")]


def test_a_file_without_sops_metadata_is_refused_by_name() -> None:
    with pytest.raises(SecretError, match=r"^plain.yaml: not a SOPS file"):
        parse_sops("plain.yaml", b"password: hunter2\n")


def test_a_broken_file_is_located_and_never_quoted() -> None:
    with pytest.raises(SecretError) as err:
        parse_sops("s.env", b"GOOD=1\nhunter2\n")
    assert str(err.value) == "s.env:2:1: expected KEY=value"


def test_encryption_rules_follow_sops_suffix_and_regex_settings() -> None:
    assert not Rules(unencrypted_suffix="_unencrypted").encrypts(("a_unencrypted", "b"), "x")
    assert Rules(unencrypted_suffix="_unencrypted").encrypts(("a", "b"), "x")
    assert Rules(encrypted_regex="^(data|stringData)$").encrypts(("data", "x"), "v")
    assert not Rules(encrypted_regex="^(data|stringData)$").encrypts(("meta", "x"), "v")


def test_mac_bytes_are_gos() -> None:
    assert go_text(True) == b"True" and go_text(2) == b"2"
    assert [float_text(v) for v in (1.0, 0.5, 1e20, 1.5e-7)] == ["1", "0.5", "100000000000000000000", "0.00000015"]


def test_the_format_comes_from_the_name() -> None:
    assert [file_format(p) for p in ("a/s.json", "prod.env", ".env", "s.sops.yaml", "s")] == [
        "json", "dotenv", "dotenv", "yaml", "yaml"]


def test_secrets_files_outside_the_repository_are_located_errors(tmp_path: Path) -> None:
    simple_repo(tmp_path, "p", extra="secrets:\n  files: [secrets/ok.yaml, ../out.yaml, /etc/x.yaml, gone.yaml]\n")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "ok.yaml").write_text("a: b\n")
    with pytest.raises(InvalidProject) as err:
        build_project(DirTree(tmp_path), str(tmp_path))
    assert err.value.lines() == [
        "syncer.yaml:3:28: secrets.files[1]: SOPS files must be inside the repository",
        "syncer.yaml:3:41: secrets.files[2]: SOPS files must be inside the repository",
        "syncer.yaml:3:54: secrets.files[3]: no file 'gone.yaml' in the repository",
    ]
