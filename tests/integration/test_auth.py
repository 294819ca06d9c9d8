"""Auth, credentials and TLS against real registries (CNCF distribution 2.8).

* htpasswd (Basic) registries; credentials from flags, docker's config.json, a real
  credential-helper program, and ``freight login`` / ``freight logout``;
* token auth: distribution trusting our token server (support/tokenserver.py): scopes
  asked up front, a mount's extra scope, tokens that expire mid-push, OAuth2 refresh
  tokens (POST, and GET when POST is not offered), anonymous tokens;
* TLS with trustme certificates: docker's certs.d directory, ``ca_cert``, ``insecure``,
  mutual TLS, and plain HTTP spoken to HTTPS (and the reverse).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.errors import EXIT_AUTH, EXIT_NETWORK, NetworkError
from freight.testing import ImageSet, random_image
from freight.transport.client import RegistryClient
from support.faults import Fault, Reply, RequestInfo
from support.freightcli import FreightRun, UserDirs, run_freight
from support.proxy import RegistryProxy
from support.registry import Registry
from support.registry_api import tag_exists
from support.secureregistry import TlsFiles, make_tls, start_secure_registry
from support.tokenserver import TokenServer

pytestmark = pytest.mark.integration

USER, PASSWORD = "alice", "correct horse battery staple"
HELPER = "freighttest"  # docker-credential-freighttest, written by the helper fixture

HELPER_SOURCE = '''
import json, os, sys
store = os.environ["FREIGHT_TEST_HELPER_STORE"]
data = json.load(open(store)) if os.path.exists(store) else {}
action = sys.argv[1]
if data.get("broken"):
    print("the keychain is locked"); sys.exit(1)
if action == "get":
    server = sys.stdin.read().strip()
    if server not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps({"ServerURL": server, **data[server]}))
elif action == "store":
    entry = json.loads(sys.stdin.read())
    data[entry["ServerURL"]] = {"Username": entry["Username"], "Secret": entry["Secret"]}
elif action == "erase":
    server = sys.stdin.read().strip()
    if server not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    del data[server]
elif action == "list":
    print(json.dumps({k: v["Username"] for k, v in data.items() if k != "broken"}))
json.dump(data, open(store, "w"))
'''


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    return random_image(tmp_path_factory.mktemp("synth") / "small.tar",
                        layers=[3 << 20, 1 << 20], tags=["synth/small:1"])


@pytest.fixture(scope="module")
def basic_registry(registry_factory: object) -> Registry:
    return registry_factory(users={USER: PASSWORD}, name="htpasswd")  # type: ignore[operator]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TokenServer, Registry]]:
    server = TokenServer(users={USER: PASSWORD}).start()
    workdir = tmp_path_factory.mktemp("token-registry")
    registry = start_secure_registry(workdir, auth=server.registry_auth_config(
        workdir / "bundle.pem"), name="token")
    yield server, registry
    registry.stop()
    server.stop()


@pytest.fixture
def token_server(tokens: tuple[TokenServer, Registry]) -> Iterator[TokenServer]:
    """The token server, reset to its defaults after each test."""
    server = tokens[0]
    server.requests.clear()
    yield server
    server.lifetime, server.expires_in, server.field_name = 3600, 60, "token"
    server.oauth_post, server.refresh_tokens = True, {}


@pytest.fixture
def dirs(tmp_path: Path) -> UserDirs:
    return UserDirs.under(tmp_path / "user")


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real credential helper program on PATH; returns the file it keeps secrets in."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    program = bindir / f"docker-credential-{HELPER}"
    program.write_text(f"#!{sys.executable}\n{HELPER_SOURCE}")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    store = tmp_path / "helper-store.json"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FREIGHT_TEST_HELPER_STORE", str(store))
    return store


def write_config(dirs: UserDirs, config: dict[str, object]) -> None:
    (dirs.docker_config / "config.json").write_text(json.dumps(config))


def read_config(dirs: UserDirs) -> dict[str, object]:
    data: dict[str, object] = json.loads((dirs.docker_config / "config.json").read_text())
    return data


def basic_auth(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def push(image: ImageSet, host: str, repository: str, dirs: UserDirs, *extra: str,
         stdin: str | None = None) -> FreightRun:
    return run_freight("push", str(image.path), f"{host}/{repository}:1", "-q",
                       "--compression", "keep", *extra, dirs=dirs, stdin=stdin)


def assert_pushed(run: FreightRun) -> None:
    assert run.returncode == 0, run.describe()
    assert "Traceback" not in run.stderr, run.describe()


def assert_failed(run: FreightRun, code: int, *, secret: str = PASSWORD) -> None:
    assert run.returncode == code, run.describe()
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, \
        run.describe()
    assert secret not in run.stderr + run.stdout


# --- Basic auth (htpasswd) --------------------------------------------------------------

def test_basic_with_flags(basic_registry: Registry, image: ImageSet, dirs: UserDirs) -> None:
    run = push(image, basic_registry.host, "basic/flags", dirs, "-u", USER,
               "--password-stdin", stdin=PASSWORD + "\n")
    assert_pushed(run)


def test_basic_wrong_password_fails_without_echoing_it(basic_registry: Registry,
                                                      image: ImageSet, dirs: UserDirs) -> None:
    run = push(image, basic_registry.host, "basic/wrong", dirs, "-u", USER,
               "--password-stdin", stdin="not-the-password-42\n")
    assert_failed(run, EXIT_AUTH, secret="not-the-password-42")
    assert "login" in run.stderr


def test_basic_without_credentials_says_how_to_log_in(basic_registry: Registry,
                                                      image: ImageSet, dirs: UserDirs) -> None:
    run = push(image, basic_registry.host, "basic/none", dirs)
    assert_failed(run, EXIT_AUTH)
    assert "freight login" in run.stderr


def test_basic_from_docker_config(basic_registry: Registry, image: ImageSet,
                                  dirs: UserDirs) -> None:
    write_config(dirs, {"auths": {basic_registry.host: basic_auth()}})
    assert_pushed(push(image, basic_registry.host, "basic/config", dirs))


def test_login_verifies_then_writes_docker_config_and_logout_removes(
        basic_registry: Registry, image: ImageSet, dirs: UserDirs) -> None:
    host = basic_registry.host
    bad = run_freight("login", host, "-u", USER, "--password-stdin", stdin="nope-nope\n",
                      dirs=dirs)
    assert_failed(bad, EXIT_AUTH, secret="nope-nope")
    assert not (dirs.docker_config / "config.json").exists()
    good = run_freight("login", host, "-u", USER, "--password-stdin", stdin=PASSWORD + "\n",
                       dirs=dirs)
    assert good.returncode == 0, good.describe()
    assert PASSWORD not in good.stdout + good.stderr
    config = read_config(dirs)
    assert config["auths"] == {host: basic_auth()}  # what docker login writes
    assert stat.S_IMODE((dirs.docker_config / "config.json").stat().st_mode) == 0o600
    assert_pushed(push(image, host, "basic/login", dirs))
    out = run_freight("logout", host, dirs=dirs)
    assert out.returncode == 0, out.describe()
    assert host not in read_config(dirs).get("auths", {})  # type: ignore[operator]
    assert_failed(push(image, host, "basic/logout", dirs), EXIT_AUTH)


# --- credential helpers -----------------------------------------------------------------

def test_login_and_push_through_creds_store_helper(basic_registry: Registry, image: ImageSet,
                                                   dirs: UserDirs, helper: Path) -> None:
    host = basic_registry.host
    write_config(dirs, {"credsStore": HELPER})
    login = run_freight("login", host, "-u", USER, "--password-stdin", stdin=PASSWORD + "\n",
                        dirs=dirs)
    assert login.returncode == 0, login.describe()
    assert PASSWORD not in (dirs.docker_config / "config.json").read_text()
    assert json.loads(helper.read_text())[host] == {"Username": USER, "Secret": PASSWORD}
    assert_pushed(push(image, host, "helper/store", dirs))
    assert run_freight("logout", host, dirs=dirs).returncode == 0
    assert host not in json.loads(helper.read_text())


def test_cred_helpers_win_over_creds_store(basic_registry: Registry, image: ImageSet,
                                           dirs: UserDirs, helper: Path) -> None:
    host = basic_registry.host
    helper.write_text(json.dumps({host: {"Username": USER, "Secret": PASSWORD}}))
    write_config(dirs, {"credsStore": "not-installed", "credHelpers": {host: HELPER},
                        "auths": {host: basic_auth(password="stale")}})
    assert_pushed(push(image, host, "helper/precedence", dirs))


def test_helper_not_found_means_anonymous(basic_registry: Registry, image: ImageSet,
                                          dirs: UserDirs, helper: Path) -> None:
    write_config(dirs, {"credsStore": HELPER})
    run = push(image, basic_registry.host, "helper/none", dirs)
    assert_failed(run, EXIT_AUTH)
    assert "401" in run.stderr


def test_helper_errors_are_shown(basic_registry: Registry, image: ImageSet, dirs: UserDirs,
                                 helper: Path) -> None:
    helper.write_text(json.dumps({"broken": True}))
    write_config(dirs, {"credsStore": HELPER})
    run = push(image, basic_registry.host, "helper/broken", dirs)
    assert_failed(run, EXIT_AUTH)
    assert "the keychain is locked" in run.stderr and f"docker-credential-{HELPER}" in run.stderr


# --- token auth -------------------------------------------------------------------------

def test_token_push_asks_pull_push_up_front(tokens: tuple[TokenServer, Registry],
                                            token_server: TokenServer, image: ImageSet,
                                            dirs: UserDirs) -> None:
    registry = tokens[1]
    write_config(dirs, {"auths": {registry.host: basic_auth()}})
    assert_pushed(push(image, registry.host, "token/app", dirs))
    asked = [r for r in token_server.requests if r.scopes]
    assert asked and all(r.method == "GET" and r.account == USER for r in asked)
    assert {"repository:token/app:pull,push"} == set(asked[0].scopes)
    assert len(asked) == 1, "one token serves the whole push"


def test_token_mount_asks_pull_on_the_source(tokens: tuple[TokenServer, Registry],
                                             token_server: TokenServer, image: ImageSet,
                                             dirs: UserDirs) -> None:
    registry = tokens[1]
    write_config(dirs, {"auths": {registry.host: basic_auth()}})
    assert_pushed(push(image, registry.host, "token/first", dirs))
    run = push(image, registry.host, "token/second", dirs, "--json")
    assert_pushed(run)
    actions = {b["action"] for b in run.json_lines[0]["blobs"]}
    assert actions == {"mounted"}
    wide = {"repository:token/second:pull,push", "repository:token/first:pull"}
    assert any(set(r.scopes) == wide for r in token_server.requests)


class Pause(Fault):
    """Hold the ``nth`` matching request for ``seconds``: longer than a token lives."""

    def __init__(self, seconds: float, nth: int) -> None:
        self.seconds, self.nth, self.seen = seconds, nth, 0

    def before(self, request: RequestInfo) -> Reply | None:
        if request.kind == "upload" and request.method == "PATCH":
            self.seen += 1
            if self.seen == self.nth:
                time.sleep(self.seconds)
        return None


def test_token_expiring_mid_push_is_renewed(tokens: tuple[TokenServer, Registry],
                                            token_server: TokenServer, image: ImageSet,
                                            dirs: UserDirs) -> None:
    registry = tokens[1]
    # the registry refuses each token 3 s after it is made; one request is held back longer
    # than that. (With 1 s, a loaded CI machine could see a fresh token expire before use.)
    token_server.lifetime = 3
    proxy = RegistryProxy(registry.host).start()
    try:
        proxy.faults.append(Pause(4.5, nth=2))
        write_config(dirs, {"auths": {proxy.host: basic_auth()}})
        assert_pushed(push(image, proxy.host, "token/expiring", dirs, "--chunk-size", "1M",
                           "-j", "1"))
        refused = [e for e in proxy.exchanges if e.status == 401 and e.method == "PATCH"]
    finally:
        proxy.stop()
    assert refused, "the registry refused an expired token during the push"
    push_tokens = [r for r in token_server.requests if r.scopes]
    assert len(push_tokens) >= 2
    assert tag_exists_with_auth(registry, token_server, "token/expiring")


def tag_exists_with_auth(registry: Registry, server: TokenServer, repository: str) -> bool:
    client = RegistryClient(registry.host, config_credentials=False,
                            credentials=_creds())
    try:
        client.auth.want(f"repository:{repository}:pull")
        reply = client.request("GET", f"/v2/{repository}/tags/list", ok=(200,))
        return "1" in reply.json()["tags"]
    finally:
        client.close()


def _creds() -> object:
    from freight.transport.credentials import Credentials

    return Credentials(USER, PASSWORD)


@pytest.mark.parametrize("field", ["access_token", "both"])
def test_token_field_names_and_default_lifetime(tokens: tuple[TokenServer, Registry],
                                                token_server: TokenServer, image: ImageSet,
                                                dirs: UserDirs, field: str) -> None:
    registry = tokens[1]
    token_server.field_name, token_server.expires_in = field, None
    write_config(dirs, {"auths": {registry.host: basic_auth()}})
    assert_pushed(push(image, registry.host, f"token/field-{field.replace('_', '-')}", dirs))


def test_oauth_refresh_token_is_posted(tokens: tuple[TokenServer, Registry],
                                       token_server: TokenServer, image: ImageSet,
                                       dirs: UserDirs) -> None:
    registry = tokens[1]
    token_server.refresh_tokens = {"refresh-me-123": USER}
    write_config(dirs, {"auths": {registry.host: {"identitytoken": "refresh-me-123"}}})
    run = push(image, registry.host, "token/oauth", dirs)
    assert_pushed(run)
    assert "refresh-me-123" not in run.stderr
    posts = [r for r in token_server.requests if r.method == "POST"]
    assert posts and all(r.grant_type == "refresh_token" for r in posts)
    assert any("repository:token/oauth:pull,push" in r.scopes for r in posts)


def test_oauth_post_404_falls_back_to_get(tokens: tuple[TokenServer, Registry],
                                          token_server: TokenServer, image: ImageSet,
                                          dirs: UserDirs) -> None:
    registry = tokens[1]
    token_server.oauth_post = False
    entry = {**basic_auth(), "identitytoken": "refresh-me-456"}
    write_config(dirs, {"auths": {registry.host: entry}})
    assert_pushed(push(image, registry.host, "token/oauth-get", dirs))
    assert all(r.method == "GET" for r in token_server.requests)
    assert any(r.account == USER for r in token_server.requests)


def test_anonymous_token_cannot_push(tokens: tuple[TokenServer, Registry],
                                     token_server: TokenServer, image: ImageSet,
                                     dirs: UserDirs) -> None:
    registry = tokens[1]
    run = push(image, registry.host, "token/anonymous", dirs)
    assert_failed(run, EXIT_AUTH)
    assert token_server.requests and all(r.account is None for r in token_server.requests)
    assert not tag_exists(registry, "token/anonymous", "1")


def test_login_to_token_registry(tokens: tuple[TokenServer, Registry],
                                 token_server: TokenServer, dirs: UserDirs) -> None:
    registry = tokens[1]
    run = run_freight("login", registry.host, "-u", USER, "--password-stdin",
                      stdin=PASSWORD + "\n", dirs=dirs)
    assert run.returncode == 0, run.describe()
    assert token_server.requests[-1].account == USER
    bad = run_freight("login", registry.host, "-u", USER, "--password-stdin",
                      stdin="wrong-wrong\n", dirs=UserDirs.under(dirs.cache.parent / "other"))
    assert_failed(bad, EXIT_AUTH, secret="wrong-wrong")


# --- TLS --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TlsFiles]]:
    workdir = tmp_path_factory.mktemp("tls-registry")
    files = make_tls(workdir / "certs")
    registry = start_secure_registry(workdir, tls=files, name="tls")
    yield registry, files
    registry.stop()


@pytest.fixture(scope="module")
def mtls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TlsFiles]]:
    workdir = tmp_path_factory.mktemp("mtls-registry")
    files = make_tls(workdir / "certs", mutual=True)
    registry = start_secure_registry(workdir, tls=files, name="mtls")
    yield registry, files
    registry.stop()


def certs_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str,
            **files: Path) -> Path:
    """A docker-style certs.d holding ``files`` (name -> source) for ``host``."""
    root = tmp_path / "certs.d"
    (root / host).mkdir(parents=True)
    for name, source in files.items():
        (root / host / name.replace("_", ".")).write_bytes(source.read_bytes())
    monkeypatch.setenv("FREIGHT_CERTS_DIRS", str(root))
    return root


def test_tls_registry_trusted_through_certs_d(tls_registry: tuple[Registry, TlsFiles],
                                              image: ImageSet, dirs: UserDirs,
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    registry, files = tls_registry
    certs_d(tmp_path, monkeypatch, registry.host, ca_crt=files.ca_cert)
    assert_pushed(push(image, registry.host, "tls/certsd", dirs))


def test_tls_untrusted_certificate_is_a_clear_error(tls_registry: tuple[Registry, TlsFiles],
                                                    image: ImageSet, dirs: UserDirs,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    registry, _ = tls_registry
    monkeypatch.setenv("FREIGHT_CERTS_DIRS", str(tmp_path / "empty"))
    run = push(image, registry.host, "tls/untrusted", dirs)
    assert_failed(run, EXIT_NETWORK)
    assert "not trusted" in run.stderr and "--ca-cert" in run.stderr


def test_tls_ca_cert_and_insecure_in_the_library(tls_registry: tuple[Registry, TlsFiles],
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    registry, files = tls_registry
    monkeypatch.setenv("FREIGHT_CERTS_DIRS", str(tmp_path / "empty"))
    for client in (RegistryClient(registry.host, plain_http=False, ca_cert=files.ca_cert),
                   RegistryClient(registry.host, plain_http=False, insecure=True)):
        try:
            client.ping()
        finally:
            client.close()


def test_plain_http_to_https_and_back_are_named(tls_registry: tuple[Registry, TlsFiles],
                                                registry: Registry, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_CERTS_DIRS", str(tmp_path / "empty"))
    wrong = [(tls_registry[0].host, True, "drop --plain-http"),
             (registry.host, False, "use --plain-http")]
    for host, plain, hint in wrong:
        client = RegistryClient(host, plain_http=plain)
        with pytest.raises(NetworkError, match=hint):
            client.ping()
        client.close()


def test_mutual_tls_with_client_certificate_in_certs_d(
        mtls_registry: tuple[Registry, TlsFiles], image: ImageSet, dirs: UserDirs,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry, files = mtls_registry
    assert files.client_cert is not None and files.client_key is not None
    certs_d(tmp_path, monkeypatch, registry.host, ca_crt=files.ca_cert,
            client_cert=files.client_cert, client_key=files.client_key)
    assert_pushed(push(image, registry.host, "mtls/ok", dirs))


def test_mutual_tls_without_client_certificate_says_so(
        mtls_registry: tuple[Registry, TlsFiles], image: ImageSet, dirs: UserDirs,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry, files = mtls_registry
    certs_d(tmp_path, monkeypatch, registry.host, ca_crt=files.ca_cert)
    run = push(image, registry.host, "mtls/nocert", dirs)
    assert_failed(run, EXIT_NETWORK)
    assert "client certificate" in run.stderr
