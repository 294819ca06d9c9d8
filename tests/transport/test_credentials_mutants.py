"""Where credentials are found and how they are stored (src/freight/transport/credentials.py),
the way docker and podman do it: the lookup order over DOCKER_AUTH_CONFIG, the files and
credential helpers, what each entry may hold, and the one line a broken file or helper
gives. Real files and a real helper program (a Python script on PATH). Written against
mutation testing of the module; test_credentials.py has the basics."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from freight.errors import AuthError
from freight.transport import credentials as creds
from freight.transport.credentials import Credentials

from .test_credentials import install_helper

# a helper that answers from HELPER_STORE, or as HELPER_MODE says
HELPER = '''
import json, os, sys
mode = os.environ.get("HELPER_MODE", "")
store = os.environ["HELPER_STORE"]
data = json.load(open(store)) if os.path.exists(store) else {}
action, payload = sys.argv[1], sys.stdin.read().strip()
with open(store + ".log", "a") as log:
    log.write(f"{action} {payload}\\n")
if mode == "stderr":
    print("keychain locked", file=sys.stderr); sys.exit(3)
if mode == "silent":
    sys.exit(4)
if mode == "garbage":
    print("not json"); sys.exit(0)
if mode == "hang":
    import time; time.sleep(10); sys.exit(0)
if mode == "anonymous":
    print(json.dumps({"Secret": "s"})); sys.exit(0)
if mode == "list":
    print("[1, 2]"); sys.exit(0)
if action == "get":
    if payload not in data:
        print("Credentials Not Found"); sys.exit(1)
    print(json.dumps({"ServerURL": payload, **data[payload]}))
elif action == "store":
    entry = json.loads(payload)
    data[entry["ServerURL"]] = {"Username": entry["Username"], "Secret": entry["Secret"]}
elif action == "erase":
    if payload not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    data.pop(payload)
json.dump(data, open(store, "w"))
'''


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR",
                 "DOCKER_AUTH_CONFIG", "HELPER_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return install_helper(tmp_path, monkeypatch, HELPER)


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _config(home: Path, data: object) -> Path:
    return _write(home / "docker" / "config.json", data)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _auths(host: str, user: str, password: str = "pw") -> dict[str, object]:
    return {"auths": {host: {"auth": _b64(f"{user}:{password}")}}}


# -- where credentials are looked for ---------------------------------------------------


def test_docker_config_path(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert creds.docker_config_path() == home / "docker" / "config.json"
    monkeypatch.setenv("DOCKER_CONFIG", "")
    assert creds.docker_config_path() == home / "home" / ".docker" / "config.json"
    monkeypatch.delenv("DOCKER_CONFIG")
    assert creds.docker_config_path() == home / "home" / ".docker" / "config.json"


def test_config_paths(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert creds.config_paths() == [home / "docker" / "config.json"]
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    assert creds.config_paths() == [home / "docker" / "config.json",
                                    home / "run" / "containers" / "auth.json"]
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(home / "given.json"))
    assert creds.config_paths() == [home / "given.json"]


def test_the_environment_comes_first_then_docker_then_podman(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    _write(home / "run" / "containers" / "auth.json", {"auths": {
        "a.example": {"auth": _b64("podman:pw")}, "b.example": {"auth": _b64("podman:pw")},
        "c.example": {"auth": _b64("podman:pw")}}})
    _config(home, {"auths": {"a.example": {"auth": _b64("docker:pw")},
                             "b.example": {"auth": _b64("docker:pw")}}})
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", json.dumps(_auths("a.example", "env")))
    assert creds.lookup("a.example") == Credentials("env", "pw")
    assert creds.lookup("b.example") == Credentials("docker", "pw")
    assert creds.lookup("c.example") == Credentials("podman", "pw")
    assert creds.lookup("d.example") is None


def test_a_missing_docker_config_falls_through_to_podmans(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(home / "run"))
    _write(home / "run" / "containers" / "auth.json", _auths("a.example", "podman"))
    assert creds.lookup("a.example") == Credentials("podman", "pw")


def test_an_authfile_is_the_only_place_looked(home: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _config(home, _auths("a.example", "docker"))
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", json.dumps(_auths("a.example", "env")))
    given = _write(home / "given.json", _auths("b.example", "given"))
    assert creds.lookup("b.example", authfile=given) == Credentials("given", "pw")
    assert creds.lookup("a.example", authfile=str(given)) is None
    with pytest.raises(AuthError, match=rf"^the credentials file {home}/nothing\.json "
                                        r"\(--authfile\) does not exist$"):
        creds.lookup("a.example", authfile=home / "nothing.json")


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_environment_config_is_none(monkeypatch: pytest.MonkeyPatch,
                                             text: str) -> None:
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", text)
    assert creds.environment_config() is None
    assert creds.lookup("a.example") is None


def test_a_broken_environment_config_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", "{not json")
    with pytest.raises(AuthError, match=r"^DOCKER_AUTH_CONFIG is not JSON \(.*\); it must "
                                        r"hold a docker config such as \{\"auths\": "
                                        r"\{\"HOST\": \{\"auth\": \"BASE64\"\}\}\}$"):
        creds.lookup("a.example")
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", "[]")
    with pytest.raises(AuthError, match=r"^DOCKER_AUTH_CONFIG must hold a JSON object "
                                        r"\(a docker config\)$"):
        creds.lookup("a.example")
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", ' {"auths": {}} ')
    assert creds.environment_config() == {"auths": {}}


def test_a_broken_config_file_is_refused_naming_it(home: Path) -> None:
    path = home / "docker" / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text("{broken")
    with pytest.raises(AuthError, match=rf"^cannot read the credentials file {path}: "):
        creds.lookup("a.example")
    path.unlink()
    path.mkdir()
    with pytest.raises(AuthError, match=rf"^cannot read the credentials file {path}: "):
        creds.lookup("a.example")


def test_a_config_that_is_not_an_object_holds_nothing(home: Path) -> None:
    path = _config(home, ["a.example"])
    assert creds.read_config(path) is None
    assert creds.lookup("a.example") is None


# -- what an entry holds ----------------------------------------------------------------


def test_the_docker_hub_key_is_found_for_every_hub_name(home: Path) -> None:
    _config(home, _auths("https://index.docker.io/v1/", "hub"))
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io", "Docker.IO"):
        assert creds.lookup(host) == Credentials("hub", "pw")
    assert creds.config_key("quay.io") == "quay.io"
    assert creds.config_key("Reg.Example:5000") == "Reg.Example:5000"


@pytest.mark.parametrize("key", ["https://reg.example/v1/", "http://REG.example",
                                 "reg.example/v2/", "reg.example"])
def test_legacy_keys_match_by_host(home: Path, key: str) -> None:
    _config(home, {"auths": {"other.example": "not an entry", "x.example": {},
                             key: {"auth": _b64("legacy:pw")}}})
    assert creds.lookup("reg.example") == Credentials("legacy", "pw")


def test_a_non_object_entry_for_the_key_is_skipped(home: Path) -> None:
    _config(home, {"auths": {"reg.example": "junk", "https://reg.example/v1/":
                             {"auth": _b64("legacy:pw")}}})
    assert creds.lookup("reg.example") == Credentials("legacy", "pw")


def test_username_and_password_fields_are_read(home: Path) -> None:
    _config(home, {"auths": {"a.example": {"username": "u", "password": "p"},
                             "b.example": {"username": "u"},
                             "c.example": {"password": "p"},
                             "d.example": {"auth": ""},
                             "e.example": {}}})
    assert creds.lookup("a.example") == Credentials("u", "p")
    assert creds.lookup("b.example") == Credentials("u", "")
    assert creds.lookup("c.example") is None  # no user: nothing to log in as
    assert creds.lookup("d.example") is None
    assert creds.lookup("e.example") is None


def test_auth_wins_over_the_fields_and_keeps_colons_in_the_password(home: Path) -> None:
    _config(home, {"auths": {"a.example": {"auth": _b64("u:p:q\x00\x00"),
                                           "username": "other", "password": "x"}}})
    assert creds.lookup("a.example") == Credentials("u", "p:q")


@pytest.mark.parametrize("auth", ["not-base64!", "dTpw!", _b64("nocolon"),
                                  base64.b64encode(b"\xff\xfe:x").decode()])
def test_a_damaged_auth_is_refused(home: Path, auth: str) -> None:
    _config(home, {"auths": {"a.example": {"auth": auth}}})
    with pytest.raises(AuthError, match=r"^the saved credentials for a\.example are damaged "
                                        r"\(auth is not base64 of user:password\); run "
                                        r"freight login again$"):
        creds.lookup("a.example")


def test_only_nul_padding_is_trimmed_from_a_password(home: Path) -> None:
    _config(home, {"auths": {"a.example": {"auth": _b64("u:PASSX\x00")}}})
    assert creds.lookup("a.example") == Credentials("u", "PASSX")


def test_tokens_alone_are_credentials(home: Path) -> None:
    _config(home, {"auths": {"a.example": {"identitytoken": "idt"},
                             "b.example": {"registrytoken": "rt"},
                             "c.example": {"identitytoken": "", "registrytoken": ""}}})
    assert creds.lookup("a.example") == Credentials("", "", identity_token="idt")
    assert creds.lookup("b.example") == Credentials("", "", registry_token="rt")
    assert creds.lookup("c.example") is None


def test_basic_is_base64_of_user_colon_password() -> None:
    assert Credentials("me", "pw").basic() == "Basic " + _b64("me:pw")
    assert "pw" not in repr(Credentials("me", "pw", "idt", "rt"))


# -- credential helpers -----------------------------------------------------------------


def test_a_helper_is_asked_for_the_docker_key(home: Path, helper: Path) -> None:
    helper.write_text(json.dumps({"https://index.docker.io/v1/": {"Username": "hub",
                                                                  "Secret": "s"}}))
    _config(home, {"credHelpers": {"docker.io": "unit"}})
    assert creds.lookup("docker.io") == Credentials("hub", "s")
    _config(home, {"credHelpers": {"https://index.docker.io/v1/": "unit"}})
    assert creds.lookup("registry-1.docker.io") == Credentials("hub", "s")
    log = Path(f"{helper}.log").read_text().splitlines()
    assert log == ["get https://index.docker.io/v1/"] * 2


def test_a_creds_store_serves_every_registry_and_a_helper_entry_wins(
        home: Path, helper: Path) -> None:
    helper.write_text(json.dumps({"a.example": {"Username": "store", "Secret": "s"}}))
    _config(home, {"credsStore": "unit", "credHelpers": {"b.example": "absent"},
                   "auths": {"a.example": {"auth": _b64("inline:pw")}}})
    assert creds.lookup("a.example") == Credentials("store", "s")
    with pytest.raises(AuthError, match=r"^the credential helper docker-credential-absent "
                                        r"is configured \(credsStore or credHelpers in the "
                                        r"docker config\) but is not on PATH$"):
        creds.lookup("b.example")
    _config(home, {"credsStore": "", "auths": {"a.example": {"auth": _b64("inline:pw")}}})
    assert creds.lookup("a.example") == Credentials("inline", "pw")


@pytest.mark.parametrize(("mode", "said"), [("stderr", "keychain locked"),
                                            ("silent", "exit 4")])
def test_a_failing_helper_says_what_it_said(home: Path, helper: Path,
                                            monkeypatch: pytest.MonkeyPatch, mode: str,
                                            said: str) -> None:
    monkeypatch.setenv("HELPER_MODE", mode)
    _config(home, {"credsStore": "unit"})
    with pytest.raises(AuthError, match=rf"^the credential helper docker-credential-unit "
                                        rf"failed to get: {said}$"):
        creds.lookup("a.example")
    with pytest.raises(AuthError, match=rf"failed to erase: {said}$"):
        creds.erase("a.example")
    with pytest.raises(AuthError, match=rf"failed to store: {said}$"):
        creds.store("a.example", Credentials("me", "pw"))


@pytest.mark.parametrize("mode", ["garbage", "list"])
def test_a_helper_answer_that_is_not_json_is_refused(home: Path, helper: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     mode: str) -> None:
    monkeypatch.setenv("HELPER_MODE", mode)
    _config(home, {"credsStore": "unit"})
    with pytest.raises(AuthError, match=r"^the credential helper docker-credential-unit "
                                        r"gave an answer that is not JSON$"):
        creds.lookup("a.example")


def test_a_helper_that_hangs_is_given_up_on(home: Path, helper: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPER_MODE", "hang")
    monkeypatch.setattr(creds, "HELPER_TIMEOUT", 0.5)
    _config(home, {"credsStore": "unit"})
    with pytest.raises(AuthError, match=r"^the credential helper docker-credential-unit did "
                                        r"not answer within 0s$"):
        creds.lookup("a.example")


def test_a_helper_answer_without_a_user_is_a_secret_alone(home: Path, helper: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("HELPER_MODE", "anonymous")
    _config(home, {"credsStore": "unit"})
    assert creds.lookup("a.example") == Credentials("", "s")


def test_a_config_is_written_beside_itself_never_in_tmpdir(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(home / "no-such-tmpdir"))
    creds.store("a.example", Credentials("me", "pw"))
    assert creds.lookup("a.example") == Credentials("me", "pw")


def test_a_helper_without_a_secret_or_the_entry_gives_none(home: Path, helper: Path) -> None:
    helper.write_text(json.dumps({"a.example": {"Username": "u", "Secret": ""}}))
    _config(home, {"credsStore": "unit"})
    assert creds.lookup("a.example") is None
    assert creds.lookup("b.example") is None  # "Credentials Not Found", any case


def test_a_token_goes_to_a_helper_under_the_token_name(home: Path, helper: Path) -> None:
    _config(home, {"credsStore": "unit"})
    creds.store("a.example", Credentials("me", "", identity_token="idt"))
    assert json.loads(helper.read_text()) == {"a.example": {"Username": "<token>",
                                                            "Secret": "idt"}}
    assert creds.lookup("a.example") == Credentials("<token>", "", identity_token="idt")
    assert creds.erase("a.example") is True
    assert creds.erase("a.example") is False  # the helper had nothing to erase


# -- login and logout -------------------------------------------------------------------


def test_store_writes_a_token_as_docker_does(home: Path) -> None:
    path = home / "docker" / "config.json"
    where = creds.store("a.example", Credentials("me", "pw", identity_token="idt"))
    assert where == str(path)
    assert json.loads(path.read_text()) == {"auths": {"a.example": {"identitytoken": "idt"}}}
    assert path.read_text().startswith('{\n\t"auths"') and path.read_text().endswith("}\n")


def test_store_into_a_given_file_with_a_helper_says_where(home: Path, helper: Path) -> None:
    given = _write(home / "given.json", {"credsStore": "unit"})
    where = creds.store("a.example", Credentials("me", "pw"), given)
    assert where == "the credential helper docker-credential-unit"
    assert json.loads(given.read_text()) == {"credsStore": "unit", "auths": {"a.example": {}}}
    assert creds.erase("a.example", given) is True


def test_erase_forgets_legacy_keys_too(home: Path) -> None:
    path = _config(home, {"auths": {"https://a.example/v1/": {"auth": _b64("u:p")},
                                    "a.example": {}, "b.example": {"auth": _b64("u:p")}}})
    assert creds.erase("a.example") is True
    assert json.loads(path.read_text())["auths"] == {"b.example": {"auth": _b64("u:p")}}
    _config(home, {"auths": {"a.example": {}}})
    assert creds.erase("a.example") is False  # an empty entry held no credentials
    assert creds.erase("a.example", home / "none.json") is False
    assert not (home / "none.json").exists()


def test_write_config_is_atomic_and_private(home: Path) -> None:
    path = home / "deep" / "er" / "config.json"
    creds.write_config(path, {"auths": {}})
    assert json.loads(path.read_text()) == {"auths": {}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["config.json"]
    with pytest.raises(TypeError):
        creds.write_config(path, {"auths": {object()}})
    assert os.listdir(path.parent) == ["config.json"]  # no temporary file left
    assert json.loads(path.read_text()) == {"auths": {}}
