"""Finding and storing credentials as docker and podman do (protocol.md §4.6, §4.7)."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest

from freight.errors import AuthError
from freight.transport import credentials as creds
from freight.transport.credentials import Credentials

HELPER = '''
import json, os, sys
store = os.environ["HELPER_STORE"]
data = json.load(open(store)) if os.path.exists(store) else {}
action, payload = sys.argv[1], sys.stdin.read().strip()
if action == "get":
    if payload not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps({"ServerURL": payload, **data[payload]}))
elif action == "store":
    entry = json.loads(payload)
    data[entry["ServerURL"]] = {"Username": entry["Username"], "Secret": entry["Secret"]}
elif action == "erase":
    data.pop(payload, None)
json.dump(data, open(store, "w"))
'''


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path


def install_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """`docker-credential-unit` on PATH running `script`; returns its store file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    program = bindir / "docker-credential-unit"
    program.write_text(f"#!{sys.executable}\n{script}")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    store = tmp_path / "store.json"
    monkeypatch.setenv("HELPER_STORE", str(store))
    return store


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return install_helper(tmp_path, monkeypatch, HELPER)


def config(home: Path, data: dict[str, object]) -> Path:
    path = home / "docker" / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_auths_entry_splits_on_the_first_colon_and_trims_nul(home: Path) -> None:
    config(home, {"auths": {"reg.example:5000": {"auth": b64("bob:pa:ss\x00\x00")}}})
    assert creds.lookup("reg.example:5000") == Credentials("bob", "pa:ss")


@pytest.mark.parametrize("host", ["docker.io", "registry-1.docker.io", "index.docker.io"])
def test_docker_hub_uses_the_legacy_key(home: Path, host: str) -> None:
    config(home, {"auths": {"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}})
    assert creds.lookup(host) == Credentials("hub", "pw")


def test_legacy_url_keys_match_by_hostname(home: Path) -> None:
    config(home, {"auths": {"https://reg.example/v1/": {"auth": b64("u:p")}}})
    assert creds.lookup("reg.example") == Credentials("u", "p")


def test_identity_and_registry_tokens(home: Path) -> None:
    config(home, {"auths": {"a.example": {"identitytoken": "refresh"},
                            "b.example": {"registrytoken": "bearer"},
                            "c.example": {}}})
    assert creds.lookup("a.example") == Credentials("", "", identity_token="refresh")
    assert creds.lookup("b.example") == Credentials("", "", registry_token="bearer")
    assert creds.lookup("c.example") is None


def test_secrets_stay_out_of_repr() -> None:
    text = repr(Credentials("bob", "hunter2", identity_token="tok-123"))
    assert "hunter2" not in text and "tok-123" not in text and "bob" in text


def test_damaged_auth_is_a_clear_error(home: Path) -> None:
    config(home, {"auths": {"r.example": {"auth": "%%%"}}})
    with pytest.raises(AuthError, match="damaged"):
        creds.lookup("r.example")


def test_podman_auth_file_and_registry_auth_file(home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = home / "run"
    (runtime / "containers").mkdir(parents=True)
    (runtime / "containers" / "auth.json").write_text(
        json.dumps({"auths": {"p.example": {"auth": b64("pod:man")}}}))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    assert creds.lookup("p.example") == Credentials("pod", "man")
    explicit = home / "explicit.json"
    explicit.write_text(json.dumps({"auths": {"p.example": {"auth": b64("ex:plicit")}}}))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(explicit))
    assert creds.lookup("p.example") == Credentials("ex", "plicit")


def test_helper_precedence_and_protocol(home: Path, helper: Path) -> None:
    helper.write_text(json.dumps({"r.example": {"Username": "h", "Secret": "s"},
                                  "t.example": {"Username": "<token>", "Secret": "idt"}}))
    config(home, {"credsStore": "missing-helper", "credHelpers": {"r.example": "unit",
                                                                  "t.example": "unit",
                                                                  "n.example": "unit"},
                  "auths": {"r.example": {"auth": b64("inline:ignored")}}})
    assert creds.lookup("r.example") == Credentials("h", "s")
    assert creds.lookup("t.example") == Credentials("<token>", "", identity_token="idt")
    assert creds.lookup("n.example") is None  # "credentials not found": anonymous
    with pytest.raises(AuthError, match=r"docker-credential-missing-helper.*not on PATH"):
        creds.lookup("other.example")  # falls to credsStore, which is not installed


def test_store_and_erase_write_what_docker_reads(home: Path) -> None:
    path = config(home, {"auths": {"keep.example": {"auth": b64("k:k")}}, "psFormat": "x"})
    creds.store("docker.io", Credentials("me", "pw"))
    data = json.loads(path.read_text())
    assert data["auths"]["https://index.docker.io/v1/"] == {"auth": b64("me:pw")}
    assert data["psFormat"] == "x" and "keep.example" in data["auths"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert creds.erase("docker.io") is True
    assert "https://index.docker.io/v1/" not in json.loads(path.read_text())["auths"]
    assert creds.erase("docker.io") is False


def test_store_through_creds_store(home: Path, helper: Path) -> None:
    path = config(home, {"credsStore": "unit"})
    creds.store("r.example", Credentials("me", "pw"))
    assert json.loads(path.read_text())["auths"] == {"r.example": {}}
    assert json.loads(helper.read_text()) == {"r.example": {"Username": "me", "Secret": "pw"}}
    assert "pw" not in path.read_text()
    assert creds.erase("r.example") is True
    assert json.loads(helper.read_text()) == {}
