"""`freight login` against HTTPS registries on loopback (transport/login.py): the TLS
options reach the check of the credentials, `--force-https` is kept, and docker.io's
credentials are checked against its API host (seen through a forward proxy on loopback,
which routes that name to a local server). Written against mutation testing of the
module; test_login.py has the basics."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from freight.errors import FreightError
from freight.transport import scheme
from freight.transport.credentials import DOCKER_HUB_KEY
from freight.transport.login import DOCKER_HUB_API, login
from support.forward_proxy import ForwardProxy

from .stubregistry import StubRegistry
from .test_tls import serve_tls

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https(ca: trustme.CA) -> Iterator[str]:
    """An HTTPS registry on loopback that lets anyone in (GET /v2/ is 200)."""
    yield from serve_tls(ca.issue_cert("127.0.0.1", DOCKER_HUB_API).configure_cert)
    scheme.forget_all()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if "proxy" in n.lower()]:
        monkeypatch.delenv(name)


def _saved(config: Path) -> list[str]:
    return list(json.loads(config.read_text())["auths"])


def test_login_trusts_the_ca_it_is_given(https: str, ca_file: Path, tmp_path: Path,
                                         no_proxy_env: None) -> None:
    config = tmp_path / "config.json"
    login(https, "alice", "s3cret", ca_cert=ca_file, config=config)
    assert _saved(config) == [https]


def test_login_without_the_ca_refuses_the_certificate_and_saves_nothing(
        https: str, tmp_path: Path, no_proxy_env: None) -> None:
    config = tmp_path / "config.json"
    with pytest.raises(FreightError, match="certificate"):
        login(https, "alice", "s3cret", plain_http=False, config=config)
    assert not config.exists()


def test_login_with_tls_verify_off_accepts_an_unknown_certificate(
        https: str, tmp_path: Path, no_proxy_env: None) -> None:
    config = tmp_path / "config.json"
    login(https, "alice", "s3cret", insecure=True, config=config)
    assert _saved(config) == [https]


def test_force_https_to_a_plain_http_registry_fails_and_saves_nothing(
        stubs, tmp_path: Path, no_proxy_env: None) -> None:  # type: ignore[no-untyped-def]
    """`--force-https`: no falling back to plain HTTP, even on loopback."""
    registry: StubRegistry = stubs(users={"alice": "s3cret"})
    config = tmp_path / "config.json"
    with pytest.raises(FreightError, match="speaks plain HTTP, not HTTPS"):
        login(registry.host, "alice", "s3cret", plain_http=False, config=config)
    assert not config.exists()
    assert registry.seen == []  # a TLS hello is no HTTP request


def test_docker_io_is_checked_against_its_api_host_and_saved_under_docker_s_key(
        https: str, ca_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, no_proxy_env: None) -> None:
    proxy = ForwardProxy({f"{DOCKER_HUB_API}:443": ("127.0.0.1", int(https.split(":")[1]))})
    proxy.start()
    try:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        config = tmp_path / "config.json"
        login("docker.io", "alice", "s3cret", ca_cert=ca_file, config=config)
    finally:
        proxy.stop()
    assert proxy.seen == [f"CONNECT {DOCKER_HUB_API}:443 HTTP/1.1"]
    assert _saved(config) == [DOCKER_HUB_KEY]


def _token_server(registry: StubRegistry, *, challenge: str, token_status: int) -> None:
    """The registry asks for a Bearer token (`challenge`); its own /token answers
    `token_status` with no token."""
    registry.script.append(lambda seen: (token_status, {}, b"")
                           if seen.path.startswith("/token") else None)
    registry.script.append(lambda seen: (401, {"WWW-Authenticate": challenge}, b"")
                           if seen.path == "/v2/" else None)


def _failed_login(registry: StubRegistry, tmp_path: Path) -> str:
    """The message of a login to `registry` that fails; nothing may have been saved."""
    config = tmp_path / "config.json"
    with pytest.raises(FreightError) as caught:
        login(registry.host, "alice", "s3cret", plain_http=True, config=config)
    assert not config.exists()
    return str(caught.value)


def test_a_failing_token_server_is_named_with_its_status(
        stubs, tmp_path: Path, no_proxy_env: None) -> None:  # type: ignore[no-untyped-def]
    registry: StubRegistry = stubs()
    _token_server(registry, challenge=f'Bearer realm="http://{registry.host}/token"',
                  token_status=500)
    assert _failed_login(registry, tmp_path) == (
        f"login failed: {registry.host} did not accept the credentials for 'alice' "
        f"(HTTP 500): the token server http://{registry.host} gave no token (HTTP 500); "
        "check them (a token needs the registry's read scope) and try again; "
        "nothing was saved")


def test_an_unreachable_token_server_is_not_called_a_wrong_password(
        stubs, tmp_path: Path, no_proxy_env: None) -> None:  # type: ignore[no-untyped-def]
    """Before, any refusal without an HTTP status read "refused the user name or password",
    which sent the user to check a password the registry never saw."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    registry: StubRegistry = stubs()
    _token_server(registry, challenge=f'Bearer realm="http://{closed}/token"',
                  token_status=500)
    message = _failed_login(registry, tmp_path)
    assert message.startswith(f"login failed: the credentials for 'alice' could not be "
                              f"checked at {registry.host}: cannot reach the token server "
                              f"http://{closed}: ConnectError")
    assert "refused the user name or password" not in message and "HTTP" not in message
    assert message.endswith("; check them (a token needs the registry's read scope) and "
                            "try again; nothing was saved")


def test_a_challenge_without_a_token_server_says_so(
        stubs, tmp_path: Path, no_proxy_env: None) -> None:  # type: ignore[no-untyped-def]
    registry: StubRegistry = stubs()
    _token_server(registry, challenge='Bearer service="stub"', token_status=500)
    assert _failed_login(registry, tmp_path) == (
        f"login failed: the credentials for 'alice' could not be checked at {registry.host}: "
        "the registry asked for a token but named no token server (realm); check them (a "
        "token needs the registry's read scope) and try again; nothing was saved")
