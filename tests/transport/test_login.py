"""`freight login` / `logout` as library calls (transport/login.py) against a registry on
loopback that checks Basic credentials: what is saved, what is refused, and the words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freight.errors import AuthError, UsageError
from freight.transport.login import login, logout, registry_host

from .stubregistry import StubRegistry, error

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def registry(stubs) -> StubRegistry:  # type: ignore[no-untyped-def]
    return stubs(users={"alice": "s3cret"})


def test_login_checks_then_saves_where_docker_looks(registry: StubRegistry,
                                                    tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    where = login(registry.host, "alice", "s3cret", plain_http=True, config=config)
    assert str(config) in where
    auths = json.loads(config.read_text())["auths"]
    assert list(auths) == [registry.host]
    assert registry.requests("GET", "/v2/")  # the credentials were tried first
    assert logout(registry.host, config=config) is True
    assert json.loads(config.read_text()).get("auths") == {}
    assert logout(registry.host, config=config) is False


def test_login_saves_to_docker_s_config_by_default(registry: StubRegistry, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    where = login(registry.host, "alice", "s3cret", plain_http=True)
    saved = tmp_path / "docker" / "config.json"
    assert str(saved) in where
    assert list(json.loads(saved.read_text())["auths"]) == [registry.host]
    assert logout(registry.host) is True


def test_a_wrong_password_saves_nothing_and_says_so(registry: StubRegistry,
                                                   tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    with pytest.raises(AuthError) as caught:
        login(registry.host, "alice", "wrong", plain_http=True, config=config)
    assert str(caught.value) == (
        f"login failed: {registry.host} refused the user name or password for 'alice' "
        "(HTTP 401); check them (a token needs the registry's read scope) and try again; "
        "nothing was saved")
    assert caught.value.status == 401
    assert not config.exists()


def test_a_locked_account_is_told_apart(registry: StubRegistry, tmp_path: Path) -> None:
    registry.script.append(
        lambda seen: error(403, "DENIED") if "authorization" in seen.headers else None)
    with pytest.raises(AuthError) as caught:
        login(registry.host, "alice", "s3cret", plain_http=True, config=tmp_path / "c.json")
    assert str(caught.value).startswith(
        f"login failed: {registry.host} accepted no login for 'alice' (HTTP 403 DENIED): "
        "the account may be locked; check them")
    assert caught.value.status == 403 and caught.value.code == "DENIED"
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize(("user", "password"), [("", "pw"), ("alice", ""), ("", "")])
def test_login_needs_both_a_user_and_a_password(registry: StubRegistry, tmp_path: Path,
                                                user: str, password: str) -> None:
    with pytest.raises(UsageError) as caught:
        login(registry.host, user, password, plain_http=True, config=tmp_path / "c.json")
    assert str(caught.value) == "login needs a user name and a password"
    assert registry.seen == []


@pytest.mark.parametrize(("text", "host"), [
    ("localhost:5000", "localhost:5000"),
    ("https://Registry.Example/v1/", "registry.example"),
    ("http://127.0.0.1:5000", "127.0.0.1:5000"),
    ("ghcr.io/owner/image", "ghcr.io"),
    ("Docker.IO", "docker.io"),
])
def test_registry_host(text: str, host: str) -> None:
    assert registry_host(text) == host


@pytest.mark.parametrize("text", ["", "https://", "/path"])
def test_a_registry_that_is_no_host_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        registry_host(text)
    assert str(caught.value) == \
        f"{text!r} is not a registry (examples: localhost:5000, ghcr.io)"


def test_a_refusal_keeps_the_registry_code_and_detail(registry: StubRegistry,
                                                      tmp_path: Path) -> None:
    body = json.dumps({"errors": [{"code": "DENIED", "message": "locked",
                                   "detail": {"reason": "too many attempts"}}]}).encode()
    registry.script.append(lambda seen: (403, {"Content-Type": "application/json"}, body)
                           if "authorization" in seen.headers else None)
    with pytest.raises(AuthError) as caught:
        login(registry.host, "alice", "s3cret", plain_http=True, config=tmp_path / "c.json")
    assert caught.value.code == "DENIED"
    assert caught.value.detail == {"reason": "too many attempts"}
