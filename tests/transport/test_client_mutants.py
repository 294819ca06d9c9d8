"""The registry HTTP client (src/freight/transport/client.py) as a user meets it: the one line
each failure ends in (connection refused, a name that does not resolve, a proxy in the way,
ECR hanging up, TLS trouble with the option that fixes it, a registry's refusal), what is
retried and what fails at once, HTTPS found on loopback, and streamed bodies sent again
after a 401. Against stub registries, TLS servers and a forward proxy on loopback. Written
against mutation testing of the module."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from freight.errors import AuthError, NetworkError, NotARegistry, NotFound, RegistryError
from freight.transport import scheme
from freight.transport.client import USER_AGENT, RegistryClient
from freight.transport.credentials import Credentials
from freight.transport.retry import RetryPolicy
from support.forward_proxy import ForwardProxy

from .conftest import StubFactory
from .stubregistry import CUT, Answer, Seen, StubRegistry, error
from .test_tls import serve_tls

pytestmark = pytest.mark.timeout(20)

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                   "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
HINT = "is the registry running and the address right?"
Made = Callable[..., RegistryClient]


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No proxy from the environment; the per-process scheme probe forgotten after."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    scheme.forget_all()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    running = ForwardProxy({}).start()
    yield running
    running.stop()


def _closed_port() -> str:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return f"127.0.0.1:{sock.getsockname()[1]}"


def _answering(stub: StubRegistry, path: str, answer: Answer) -> StubRegistry:
    stub.script.append(lambda seen: answer if seen.path == path else None)
    return stub


def _failure(client: RegistryClient, what: str = "checking") -> str:
    with pytest.raises(NetworkError) as caught:
        client.request("GET", "/v2/", ok=(200,), what=what)
    return str(caught.value)


# --- connections that fail -------------------------------------------------------------


def test_a_refused_port_on_loopback_fails_at_once_and_says_so(make: Made,
                                                              sleeps: list[float]) -> None:
    host = _closed_port()
    assert _failure(make(host, plain_http=True), "listing tags") == (
        f"cannot connect to {host} while listing tags: connection refused (nothing listens "
        f"on that port); {HINT}")
    assert sleeps == []  # nothing listens there, and nothing will in a few seconds


def test_a_failure_without_a_doing_names_only_the_host(make: Made) -> None:
    host = _closed_port()
    assert _failure(make(host, plain_http=True), "").startswith(
        f"cannot connect to {host}: connection refused")


def _resolving(monkeypatch: pytest.MonkeyPatch, names: dict[str, str | None]) -> None:
    """The resolver, offline: each of `names` resolves to its address, or not at all."""
    real = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host in names:
            address = names[str(host)]
            if address is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = address
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_that_does_not_resolve_fails_at_once(make: Made, sleeps: list[float],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _resolving(monkeypatch, {"registry.test": None})
    message = _failure(make("registry.test:5000", plain_http=True))
    assert message == (f"cannot connect to registry.test:5000 while checking: the host name "
                       f"does not resolve; {HINT}")
    assert sleeps == []


def test_a_dead_proxy_is_named_redacted_and_not_retried(make: Made, sleeps: list[float],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    dead = _closed_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://me:hunter2@{dead}")
    message = _failure(make("registry.test:5000", plain_http=True))
    assert message == (
        f"cannot connect to registry.test:5000 while checking (through the proxy "
        f"http://{dead}; NO_PROXY lists hosts to reach direct): connection refused (nothing "
        f"listens on that port); {HINT}")
    assert sleeps == []  # the first hop is the proxy, on loopback: refused for good


def test_a_refused_proxy_on_another_host_is_tried_again(make: Made, sleeps: list[float],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused connection to another machine may be a restart: tried again. The proxy
    is the host a connection goes to first, so it decides, not the registry's name."""
    port = _closed_port().rsplit(":", 1)[1]
    _resolving(monkeypatch, {"proxy.test": "127.0.0.1"})
    monkeypatch.setenv("HTTP_PROXY", f"http://proxy.test:{port}")
    message = _failure(make("registry.test:5000", plain_http=True))
    assert f"(through the proxy http://proxy.test:{port};" in message
    assert len(sleeps) == RetryPolicy().attempts - 1


def test_a_refused_registry_on_another_host_is_tried_again(
        make: Made, sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    host = _closed_port().replace("127.0.0.1", "registry.test")
    _resolving(monkeypatch, {"registry.test": "127.0.0.1"})
    assert "connection refused" in _failure(make(host, plain_http=True))
    assert len(sleeps) == RetryPolicy().attempts - 1


@pytest.mark.parametrize(("name", "ecr"), [
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", True),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", True),
    ("123456789012.dkr.ecr.eu-west-1.example.com", False),
    ("registry.eu-west-1.amazonaws.com", False),
])
def test_ecr_hanging_up_is_explained(stubs: StubFactory, proxy: ForwardProxy, make: Made,
                                     monkeypatch: pytest.MonkeyPatch, name: str,
                                     ecr: bool) -> None:
    """ECR closes the connection for a repository that does not exist (field-notes §5);
    the ECR host is only reachable by its name, so through the proxy."""
    stub = stubs()
    stub.script.append(lambda seen: CUT)
    port = int(stub.host.rsplit(":", 1)[1])
    proxy.routes[f"{name}:{port}"] = ("127.0.0.1", port)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    message = _failure(make(f"{name}:{port}", plain_http=True))
    assert message.startswith(f"connection to {name}:{port} failed while checking (through "
                              f"the proxy {proxy.url}; NO_PROXY lists hosts to reach direct): ")
    assert "Server disconnected without sending a response." in message  # httpx's words kept
    explained = message.endswith(" (ECR closes the connection when the repository does not "
                                 "exist: create it first, e.g. `aws ecr create-repository`)")
    assert explained is ecr
    assert message.endswith(" (if the registry speaks HTTPS, drop --plain-http)") is not ecr


def test_a_plain_http_registry_hanging_up_suggests_https(stubs: StubFactory, make: Made,
                                                         sleeps: list[float]) -> None:
    stub = stubs()
    stub.script.append(lambda seen: CUT)
    message = _failure(make(stub.host, plain_http=True))
    assert message == (f"connection to {stub.host} failed while checking: Server "
                       "disconnected without sending a response. (if the registry speaks "
                       "HTTPS, drop --plain-http)")
    assert len(sleeps) == RetryPolicy().attempts - 1  # a hang-up may pass: tried again


def test_an_https_registry_hanging_up_suggests_plain_http(ca: trustme.CA, ca_file: str,
                                                          one_shot: Callable[..., str],
                                                          make: Made) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    def hang_up(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)  # the request, then nothing

    host = one_shot(hang_up)
    assert _failure(make(host, plain_http=False, ca_cert=ca_file)) == (
        f"connection to {host} failed while checking: Server disconnected without sending a "
        "response. (if the registry speaks plain HTTP, use --plain-http)")


def test_a_registry_that_never_answers_times_out(one_shot: Callable[..., str], make: Made,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from freight.transport import client

    monkeypatch.setattr(client, "IO_TIMEOUT", 0.2)  # not 5 minutes: the test's patience
    host = one_shot(lambda conn: conn.recv(1 << 20) and conn.recv(1))  # reads, never answers
    assert _failure(make(host, plain_http=True)) == f"{host} timed out while checking"


def test_a_cut_upload_chunk_is_not_sent_again(stubs: StubFactory, make: Made,
                                              sleeps: list[float]) -> None:
    """`resend_after_cut=False`: the caller must ask the registry what arrived first."""
    stub = stubs()
    stub.script.append(lambda seen: CUT)
    with pytest.raises(NetworkError, match="failed while sending a chunk"):
        make(stub.host, plain_http=True).request(
            "PATCH", "/v2/r/blobs/uploads/x", ok=(202,), content=b"chunk",
            what="sending a chunk", resend_after_cut=False)
    assert len(stub.requests("PATCH")) == 1 and sleeps == []


def test_a_streamed_body_that_was_cut_is_not_sent_again(stubs: StubFactory, make: Made,
                                                        sleeps: list[float]) -> None:
    """An iterator is consumed by the first try; only a `body` factory can be re-sent."""
    stub = stubs()
    stub.script.append(lambda seen: CUT)
    client = make(stub.host, plain_http=True)
    with pytest.raises(NetworkError):
        client.request("PUT", "/v2/r/blobs/uploads/x", ok=(201,), content=iter([b"a", b"b"]))
    assert len(stub.requests("PUT")) == 1 and sleeps == []
    with pytest.raises(NetworkError):
        client.request("PUT", "/v2/r/blobs/uploads/y", ok=(201,),
                       body=lambda: iter([b"a", b"b"]))
    assert len(stub.requests("PUT", "/y")) == RetryPolicy().attempts


def test_retry_false_sends_once(stubs: StubFactory, make: Made, sleeps: list[float]) -> None:
    stub = _answering(stubs(), "/v2/", error(503, "UNAVAILABLE"))
    with pytest.raises(RegistryError) as caught:
        make(stub.host, plain_http=True).request("GET", "/v2/", ok=(200,), retry=False)
    assert len(stub.requests("GET")) == 1 and sleeps == []
    assert str(caught.value) == f"{stub.host} answered HTTP 503 (UNAVAILABLE: stub)"  # no "while"


def test_a_busy_registry_is_asked_again_when_it_says(stubs: StubFactory, make: Made,
                                                     sleeps: list[float]) -> None:
    stub = stubs()
    answers = iter([(429, {"Retry-After": "7"}, b""), (503, {}, b"")])
    stub.script.append(lambda seen: next(answers, None))
    reply = make(stub.host, plain_http=True).request("GET", "/v2/", ok=(200,))
    assert reply.status_code == 200 and len(stub.requests("GET")) == 3
    assert sleeps[0] == 7.0 and len(sleeps) == 2


# --- TLS -------------------------------------------------------------------------------


def _server(ca: trustme.CA, *names: str, client_ca: trustme.CA | None = None,
            tls12: bool = False) -> Iterator[str]:
    def configure(context: ssl.SSLContext) -> None:
        ca.issue_cert(*names).configure_cert(context)
        if client_ca is not None:
            client_ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        if tls12:
            context.maximum_version = ssl.TLSVersion.TLSv1_2

    return serve_tls(configure)


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[str]:
    yield from _server(ca, "127.0.0.1")


def _tls_failure(client: RegistryClient) -> str:
    message = _failure(client)
    prefix = f"TLS error talking to {client.host} while checking: "
    assert message.startswith(prefix), message
    return message.removeprefix(prefix)


def test_an_untrusted_certificate_says_how_to_trust_it(server: str, make: Made,
                                                       sleeps: list[float]) -> None:
    assert _tls_failure(make(server, plain_http=False)) == (
        "its certificate is not trusted (unable to get local issuer certificate): give its "
        "CA with --ca-cert, or put it in /etc/docker/certs.d/HOST:PORT/ca.crt "
        "(--tls-verify=false skips verification)")
    assert sleeps == []  # a setup problem: trying again cannot fix it


def test_a_certificate_for_other_names_says_which(ca: trustme.CA, ca_file: str,
                                                  make: Made) -> None:
    for host in _server(ca, "registry.test", "mirror.test"):
        assert _tls_failure(make(host, plain_http=False, ca_cert=ca_file)) == (
            "its certificate is for registry.test, mirror.test, not 127.0.0.1: connect by one "
            "of those names, or give the registry a certificate for this one "
            "(--tls-verify=false skips the check)")


def test_explaining_a_mismatch_leaves_the_name_check_on(ca: trustme.CA, ca_file: str,
                                                        make: Made,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The names are read over a handshake that skips the name check: on a context of its
    own, never the one every client of the process shares. The test's CA stands for one
    in the system's store: OpenSSL's SSL_CERT_FILE for new contexts, and loaded into the
    shared one (built once per process, maybe before)."""
    from freight.transport.tls import default_context

    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    default_context().load_verify_locations(cafile=ca_file)
    for host in _server(ca, "registry.test"):
        for _ in range(2):  # the second client is refused just the same
            assert _tls_failure(make(host, plain_http=False)).startswith(
                "its certificate is for registry.test, not 127.0.0.1: ")


def test_the_names_are_read_with_the_client_certificate(ca: trustme.CA, ca_file: str,
                                                        make: Made, tmp_path: Path) -> None:
    """Under TLS 1.2 a registry that wants a client certificate ends the handshake without
    one: the names are only learnt by showing it, as the request did."""
    cert, key = tmp_path / "client.cert", tmp_path / "client.key"
    leaf = ca.issue_cert("client")
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    for host in _server(ca, "registry.test", client_ca=ca, tls12=True):
        client = make(host, plain_http=False, ca_cert=ca_file, client_cert=(str(cert), str(key)))
        assert _tls_failure(client).startswith("its certificate is for registry.test, not "
                                               "127.0.0.1: ")


@pytest.mark.parametrize("tls12", [False, True])
def test_a_registry_wanting_a_client_certificate_says_where_to_put_it(
        ca: trustme.CA, ca_file: str, make: Made, tls12: bool) -> None:
    for host in _server(ca, "127.0.0.1", client_ca=trustme.CA(), tls12=tls12):
        assert _tls_failure(make(host, plain_http=False, ca_cert=ca_file)) == (
            "the registry wants a client certificate: put client.cert and client.key in "
            "/etc/docker/certs.d/HOST:PORT/")


def test_https_to_a_plain_http_registry_says_use_plain_http(stubs: StubFactory, make: Made,
                                                            sleeps: list[float]) -> None:
    assert _tls_failure(make(stubs().host, plain_http=False)) == (
        "the registry speaks plain HTTP, not HTTPS: use --plain-http")
    assert sleeps == []


def _replying(reply: bytes) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(reply)
    return answer


def test_another_tls_failure_is_shown_with_what_to_check(
        one_shot: Callable[..., str], make: Made, sleeps: list[float]) -> None:
    """A TLS alert that none of the known causes explains (here: "internal error")."""
    told = _tls_failure(make(one_shot(_replying(b"\x15\x03\x03\x00\x02\x02\x50")),
                             plain_http=False))
    assert "alert internal error" in told and told.startswith("[SSL")
    assert told.endswith(" (check --ca-cert, /etc/docker/certs.d, or use --tls-verify=false / "
                         "--plain-http)")
    assert sleeps == []


def test_a_refused_client_certificate_says_where_to_put_one(one_shot: Callable[..., str],
                                                           make: Made) -> None:
    """The registry's "bad certificate" alert (OpenSSL: SSLV3_ALERT_BAD_CERTIFICATE)."""
    told = _tls_failure(make(one_shot(_replying(b"\x15\x03\x03\x00\x02\x02\x2a")),
                             plain_http=False))
    assert told.startswith("the registry wants a client certificate: ")


def test_an_answer_too_long_for_a_tls_record_is_plain_http(one_shot: Callable[..., str],
                                                           make: Made) -> None:
    """Some TLS libraries read a plain HTTP answer as a record too long
    (PACKET_LENGTH_TOO_LONG) rather than a wrong version."""
    told = _tls_failure(make(one_shot(_replying(b"\x16\x03\x03\xff\xff" + b"x" * 100)),
                             plain_http=False))
    assert told == "the registry speaks plain HTTP, not HTTPS: use --plain-http"


def test_a_certificate_that_cannot_be_read_again_names_other_hosts(
        ca: trustme.CA, ca_file: str, one_shot: Callable[..., str], make: Made) -> None:
    """The names are read over a second handshake; when that fails too (the registry went
    away), the message still says what is wrong."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("registry.test").configure_cert(context)
    connections: list[int] = []

    def once(conn: socket.socket) -> None:
        connections.append(1)
        if len(connections) == 1:
            with contextlib.suppress(ssl.SSLError, OSError), \
                    context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)

    assert _tls_failure(make(one_shot(once), plain_http=False, ca_cert=ca_file)) == (
        "its certificate names other hosts, not 127.0.0.1: connect by one of those names, or "
        "give the registry a certificate for this one (--tls-verify=false skips the check)")


def _tls_or_plain(ca: trustme.CA, plain: bytes | None, *,
                  basic_auth: bool = False) -> Callable[[socket.socket], None]:
    """A OneShotServer answer: TLS (a certificate for 127.0.0.1, then 200 to any request,
    or with `basic_auth` 401 to one without credentials) to a ClientHello; to plain HTTP,
    `plain` as the answer, or a clean hang-up for None (what uvicorn does)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    def answer(conn: socket.socket) -> None:
        if conn.recv(1, socket.MSG_PEEK) != b"\x16":
            conn.recv(65536)
            if plain is not None:
                conn.sendall(plain)
            return
        with context.wrap_socket(conn, server_side=True) as tls:
            asked = tls.recv(65536).lower()
            if basic_auth and b"\r\nauthorization: basic " not in asked:
                tls.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n"
                            b"WWW-Authenticate: Basic realm=\"x\"\r\nConnection: close\r\n\r\n")
                return
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n"
                        b"Content-Type: application/json\r\n\r\n{}")

    return answer


@pytest.fixture
def one_shot() -> Iterator[Callable[[Callable[[socket.socket], None]], str]]:
    from .test_capped_and_scheme import OneShotServer

    servers: list[OneShotServer] = []

    def start(answer: Callable[[socket.socket], None]) -> str:
        servers.append(OneShotServer(answer))
        return servers[-1].host

    yield start
    for server in servers:
        server.stop()


@pytest.mark.parametrize("hang_up", ["clean", "reset"])
def test_plain_http_to_an_https_registry_says_drop_plain_http(
        ca: trustme.CA, server: str, one_shot: Callable[..., str], make: Made,
        sleeps: list[float], hang_up: str) -> None:
    """A TLS server hangs up on plain HTTP, cleanly (uvicorn) or with a reset (Python's
    ssl): one probe tells that from a flaky network, at once."""
    host = one_shot(_tls_or_plain(ca, None)) if hang_up == "clean" else server
    assert _failure(make(host, plain_http=True)) == (
        f"{host} speaks HTTPS, but freight spoke plain HTTP to it: drop --plain-http")
    assert sleeps == []


def test_a_registry_that_answered_is_not_taken_for_https_when_it_hangs_up(
        stubs: StubFactory, make: Made, sleeps: list[float]) -> None:
    """Only a registry that never answered plain HTTP can be a TLS server in disguise,
    even where the process once saw TLS on that port (remembered: another server)."""
    stub = stubs()
    scheme.remember(stub.host, tls=True)
    client = make(stub.host, plain_http=True)
    client.ping()
    stub.script.append(lambda seen: CUT)
    assert _failure(client).startswith(f"connection to {stub.host} failed while checking: ")
    assert len(sleeps) == RetryPolicy().attempts - 1


# --- refusals ----------------------------------------------------------------------------


def _refusal(stub: StubRegistry, make: Made, path: str = "/v2/r/tags/list",
             what: str = "listing tags") -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        make(stub.host, plain_http=True).request("GET", path, ok=(200,), what=what, retry=False)
    return caught.value


def _detailed(status: int, code: str) -> Answer:
    body = json.dumps({"errors": [{"code": code, "message": "stub", "detail": {"n": 1}}]})
    return status, {"Content-Type": "application/json"}, body.encode()


def test_a_401_says_how_to_log_in(stubs: StubFactory, make: Made) -> None:
    stub = _answering(stubs(), "/v2/r/tags/list", _detailed(401, "UNAUTHORIZED"))
    refused = _refusal(stub, make)
    assert type(refused) is AuthError and refused.status == 401
    assert (refused.code, refused.detail) == ("UNAUTHORIZED", {"n": 1})
    assert str(refused) == (f"{stub.host} answered HTTP 401 while listing tags (UNAUTHORIZED: "
                            f"stub); log in with `freight login {stub.host}` or give --creds "
                            "USER[:PASSWORD]")


def test_a_403_says_the_credentials_lack_permission(stubs: StubFactory, make: Made) -> None:
    stub = _answering(stubs(), "/v2/r/tags/list", _detailed(403, "DENIED"))
    refused = _refusal(stub, make)
    assert type(refused) is AuthError and (refused.status, refused.code) == (403, "DENIED")
    assert refused.detail == {"n": 1}
    assert str(refused) == (f"{stub.host} answered HTTP 403 while listing tags (DENIED: stub); "
                            "the credentials lack permission for this")


def test_a_404_is_not_found(stubs: StubFactory, make: Made) -> None:
    stub = _answering(stubs(), "/v2/r/tags/list", _detailed(404, "NAME_UNKNOWN"))
    refused = _refusal(stub, make, what="")
    assert type(refused) is NotFound and (refused.status, refused.code) == (404, "NAME_UNKNOWN")
    assert refused.detail == {"n": 1}
    assert str(refused) == f"{stub.host} answered HTTP 404 (NAME_UNKNOWN: stub)"


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (500, True), (503, True)])
def test_other_refusals_say_whether_to_try_again(stubs: StubFactory, make: Made, status: int,
                                                 retryable: bool) -> None:
    stub = _answering(stubs(), "/v2/r/tags/list", _detailed(status, "SOMETHING"))
    refused = _refusal(stub, make)
    assert type(refused) is RegistryError and refused.retryable is retryable
    assert (refused.status, refused.code, refused.detail) == (status, "SOMETHING", {"n": 1})


@pytest.mark.parametrize(("body", "said"), [
    (b"  busy\nplease wait  ", "busy please wait"),
    (b"x" * 120, "x" * 120),
    (b"y" * 121, "y" * 120 + "\u2026"),
    (b"", "Bad Request"),
])
def test_a_refusal_without_an_error_list_shows_its_text(stubs: StubFactory, make: Made,
                                                        body: bytes, said: str) -> None:
    stub = _answering(stubs(), "/v2/r/tags/list", (400, {"Content-Type": "text/plain"}, body))
    assert str(_refusal(stub, make)).endswith(f"answered HTTP 400 while listing tags ({said})")


def test_a_refusal_with_neither_text_nor_reason_invents_none(one_shot: Callable[..., str],
                                                            make: Made) -> None:
    def bare(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 499 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    host = one_shot(bare)
    with pytest.raises(RegistryError) as caught:
        make(host).request("GET", "/v2/", ok=(200,), what="checking")
    assert str(caught.value) == f"{host} answered HTTP 499 while checking ()"


# --- the API check -----------------------------------------------------------------------


def test_a_404_on_v2_is_not_a_registry(stubs: StubFactory, make: Made) -> None:
    stub = _answering(stubs(), "/v2/", error(404, "NOT_FOUND"))
    client = make(stub.host, plain_http=True)
    with pytest.raises(NotARegistry) as caught:
        client.ping()
    assert caught.value.status == 404 and len(stub.requests("GET")) == 1  # not tried again
    assert str(caught.value) == (f"{stub.host} is not a registry: GET /v2/ answered HTTP 404 "
                                 "(the registry API lives there); is the address (and port) "
                                 "right?")
    assert client.speaks_the_api() is False


def test_a_web_page_on_v2_is_not_a_registry(stubs: StubFactory, make: Made) -> None:
    page = (200, {"Content-Type": "text/html; charset=utf-8"}, b"<html>hello</html>")
    stub = _answering(stubs(), "/v2/", page)
    client = make(stub.host, plain_http=True)
    with pytest.raises(NotARegistry) as caught:
        client.ping()
    assert caught.value.status == 200
    assert str(caught.value) == (f"{stub.host} is not a registry: GET /v2/ answered with a web "
                                 "page (text/html), not the registry API; is the address (and "
                                 "port) right?")
    assert client.speaks_the_api() is False


def test_a_refused_api_check_says_what_was_checked(stubs: StubFactory, make: Made) -> None:
    stub = _answering(stubs(), "/v2/", error(400, "UNSUPPORTED"))
    with pytest.raises(RegistryError) as caught:
        make(stub.host).ping()
    assert str(caught.value) == (f"{stub.host} answered HTTP 400 while checking the registry "
                                 "API (/v2/) (UNSUPPORTED: stub)")


@pytest.mark.parametrize("answer", [(200, {"Content-Type": "application/json"}, b"{}"),
                                    (200, {}, b""), error(401, "UNAUTHORIZED"),
                                    error(503, "UNAVAILABLE")])
def test_a_registry_speaks_the_api_even_when_it_refuses(stubs: StubFactory, make: Made,
                                                        answer: Answer) -> None:
    """Auth trouble or a flaky answer: a registry, maybe (what `inspect` needs to know)."""
    stub = _answering(stubs(), "/v2/", answer)
    assert make(stub.host, plain_http=True).speaks_the_api() is True


# --- what is tried again -----------------------------------------------------------------


def test_a_url_of_another_protocol_fails_at_once(stubs: StubFactory, make: Made,
                                                 sleeps: list[float]) -> None:
    """An upload `Location` in a scheme httpx cannot speak: no retry can help."""
    message = _failure_at(make(stubs().host, plain_http=True), "ftp://127.0.0.1/upload")
    assert "unsupported protocol" in message and sleeps == []


def test_an_answer_that_does_not_decode_fails_at_once(stubs: StubFactory, make: Made,
                                                      sleeps: list[float]) -> None:
    """Not a connection problem (a gzip body that is not gzip): sending again brings the
    same bytes."""
    stub = _answering(stubs(), "/v2/", (200, {"Content-Encoding": "gzip"}, b"not gzip"))
    message = _failure_at(make(stub.host, plain_http=True), "/v2/")
    assert message.startswith(f"connection to {stub.host} failed while checking: ")
    assert len(stub.requests("GET")) == 1 and sleeps == []


def _failure_at(client: RegistryClient, url: str) -> str:
    with pytest.raises(NetworkError) as caught:
        client.request("GET", url, ok=(200,), what="checking")
    return str(caught.value)


# --- HTTPS found on loopback -------------------------------------------------------------

HTTPS_ONLY = (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 48\r\nConnection: close\r\n\r\n"
              b"Client sent an HTTP request to an HTTPS server.\n")  # Go's answer
_NGINX_PAGE = (b"<html>\r\n<head><title>400 The plain HTTP request was sent to HTTPS port</title>"
               b"</head>\r\n<body>\r\n</body>\r\n</html>\r\n")
NGINX_HTTPS_ONLY = (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\n"
                    b"Content-Length: " + str(len(_NGINX_PAGE)).encode() + b"\r\n"
                    b"Connection: close\r\n\r\n" + _NGINX_PAGE)


def test_a_loopback_registry_answering_use_https_is_spoken_https(
        ca: trustme.CA, ca_file: str, one_shot: Callable[..., str], make: Made) -> None:
    """The probe could not tell (remembered as plain HTTP here), the registry says so."""
    host = one_shot(_tls_or_plain(ca, HTTPS_ONLY))
    scheme.remember(host, tls=False)
    client = make(host, ca_cert=ca_file)
    assert client.request("GET", "/v2/", ok=(200,)).content == b"{}"
    assert client.base == f"https://{host}"
    assert scheme.speaks_tls(host) is True  # the next client starts with HTTPS


def test_the_switch_to_https_keeps_the_credentials(ca: trustme.CA, ca_file: str,
                                                  one_shot: Callable[..., str],
                                                  make: Made) -> None:
    host = one_shot(_tls_or_plain(ca, HTTPS_ONLY, basic_auth=True))
    scheme.remember(host, tls=False)
    client = make(host, ca_cert=ca_file, credentials=Credentials("u", "p"))
    assert client.request("GET", "/v2/", ok=(200,)).content == b"{}"


@pytest.mark.parametrize("answer", [HTTPS_ONLY, NGINX_HTTPS_ONLY], ids=["go", "nginx"])
def test_plain_http_asked_for_is_not_switched_but_explained(
        ca: trustme.CA, one_shot: Callable[..., str], make: Made, answer: bytes) -> None:
    host = one_shot(_tls_or_plain(ca, answer))
    assert _failure(make(host, plain_http=True)) == (
        f"{host} speaks HTTPS, but freight spoke plain HTTP to it: drop --plain-http")


def test_a_body_that_cannot_be_sent_again_is_not_switched(
        ca: trustme.CA, ca_file: str, one_shot: Callable[..., str], make: Made) -> None:
    host = one_shot(_tls_or_plain(ca, HTTPS_ONLY))
    scheme.remember(host, tls=False)
    with pytest.raises(NetworkError, match="drop --plain-http"):
        make(host, ca_cert=ca_file).request("PUT", "/v2/", ok=(200,), content=iter([b"x"]))


def test_a_loopback_registry_is_probed_for_https(server: str, stubs: StubFactory, ca_file: str,
                                                 make: Made) -> None:
    assert make(server, ca_cert=ca_file).base == f"https://{server}"
    stub = stubs()
    assert make(stub.host).base == f"http://{stub.host}"


def _plain_http(conn: socket.socket) -> None:
    """A OneShotServer answer: 400 to a ClientHello (as HTTP servers do), else 200 `{}`."""
    hello = conn.recv(65536).startswith(b"\x16")
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" if hello else
                 b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


def test_an_insecure_registry_elsewhere_is_probed_too(one_shot: Callable[..., str], make: Made,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`--tls-verify=false` as docker's insecure registries: plain HTTP if that is what
    the registry speaks; without it, HTTPS always."""
    host = one_shot(_plain_http).replace("127.0.0.1", "registry.test")
    _resolving(monkeypatch, {"registry.test": "127.0.0.1"})
    make(host, insecure=True).ping()
    with pytest.raises(NetworkError, match="speaks plain HTTP, not HTTPS: use --plain-http"):
        make(host).ping()


def test_an_insecure_registry_that_cannot_be_told_gets_https(
        one_shot: Callable[..., str], make: Made, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only loopback falls back to plain HTTP when the probe learns nothing."""
    host = one_shot(lambda conn: None)  # hangs up on everything
    assert make(host).base == f"http://{host}"
    name = host.replace("127.0.0.1", "registry.test")
    _resolving(monkeypatch, {"registry.test": "127.0.0.1"})
    assert make(name, insecure=True).base == f"https://{name}"


@pytest.mark.parametrize(("no_proxy", "expected"), [(False, "https"), (True, "http")],
                         ids=["proxied", "no-proxy-names-its-port"])
def test_an_insecure_registry_behind_a_proxy_is_not_probed(
        one_shot: Callable[..., str], proxy: ForwardProxy, make: Made,
        monkeypatch: pytest.MonkeyPatch, no_proxy: bool, expected: str) -> None:
    """No direct probe through a proxy: what answers there need not be what the proxy
    reaches. A NO_PROXY entry naming the host with its port is reached directly, so probed
    (and it speaks plain HTTP)."""
    host = one_shot(_plain_http)
    name = host.replace("127.0.0.1", "registry.test")
    _resolving(monkeypatch, {"registry.test": "127.0.0.1"})
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", name)  # this port of it only
    assert make(name, insecure=True).base == f"{expected}://{name}"


def test_another_connect_failure_keeps_the_system_s_words(make: Made,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> object:
        raise OSError(113, "No route to host")  # what the OS says, offline

    monkeypatch.setattr(socket, "getaddrinfo", unreachable)
    assert _failure(make("registry.test:5000", plain_http=True)) == (
        f"cannot connect to registry.test:5000 while checking: [Errno 113] No route to host; "
        f"{HINT}")


# --- what is sent ------------------------------------------------------------------------


def test_requests_name_freight(stubs: StubFactory, make: Made) -> None:
    stub = stubs()
    make(stub.host).ping()
    assert stub.seen[0].headers["user-agent"] == USER_AGENT == "freight/0.1"


def test_credentials_are_looked_up_as_docker_does_unless_told_not_to(
        stubs: StubFactory, make: Made, monkeypatch: pytest.MonkeyPatch) -> None:
    stub = stubs(users={"u": "p"})
    auth = base64.b64encode(b"u:p").decode()
    monkeypatch.setenv("DOCKER_AUTH_CONFIG", json.dumps({"auths": {stub.host: {"auth": auth}}}))
    make(stub.host, config_credentials=True).ping()
    with pytest.raises(AuthError):
        make(stub.host, config_credentials=False).ping()
    make(stub.host, config_credentials=False, credentials=Credentials("u", "p")).ping()


def test_a_streamed_body_is_sent_again_once_auth_learnt_from_the_401(
        stubs: StubFactory, make: Made) -> None:
    """httpx cannot replay a stream after a 401: the client does, from the body factory."""
    stub = stubs(users={"u": "p"})
    client = make(stub.host, credentials=Credentials("u", "p"))
    reply = client.request("PUT", "/v2/", ok=(200,), body=lambda: iter([b"data"]))
    assert reply.status_code == 200
    puts = stub.requests("PUT")
    assert ["authorization" in p.headers for p in puts] == [False, True]
    assert [p.body_length for p in puts] == [4, 4]


def test_a_streamed_body_refused_twice_is_refused(stubs: StubFactory, make: Made) -> None:
    stub = stubs(users={"u": "p"})
    client = make(stub.host, credentials=Credentials("u", "wrong"))
    with pytest.raises(AuthError, match="HTTP 401"):
        client.request("PUT", "/v2/", ok=(200,), body=lambda: iter([b"data"]))
    assert len(stub.requests("PUT")) == 2


def test_a_body_of_one_pass_is_not_sent_again_after_a_401(stubs: StubFactory,
                                                          make: Made) -> None:
    """An iterator cannot be replayed: the 401 is the answer (auth learnt for the next)."""
    stub = stubs(users={"u": "p"})
    client = make(stub.host, credentials=Credentials("u", "p"))
    with pytest.raises(AuthError, match="HTTP 401"):
        client.request("PUT", "/v2/", ok=(200,), content=iter([b"data"]))
    assert len(stub.requests("PUT")) == 1


def test_credentials_refused_before_are_not_sent_again_with_a_stream(stubs: StubFactory,
                                                                     make: Made) -> None:
    """The stream's first try already carried them (auth knows the challenge from the
    ping): a second try with the same credentials cannot do better."""
    stub = stubs(users={"u": "p"})
    client = make(stub.host, credentials=Credentials("u", "wrong"))
    with pytest.raises(AuthError):
        client.ping()
    with pytest.raises(AuthError):
        client.request("PUT", "/v2/", ok=(200,), body=lambda: iter([b"data"]))
    (put,) = stub.requests("PUT")
    assert "authorization" in put.headers


def test_a_streamed_body_refused_with_a_revoked_token_goes_again_with_a_new_one(
        stubs: StubFactory, make: Made) -> None:
    """The token the first try carried (fetched for an earlier request) was refused: auth
    drops it, and the stream is sent once more with a fresh one."""
    from .test_auth_mutants import Scripted

    tokens = Scripted([(200, {"token": "old"}), (200, {"token": "new"})])
    try:
        challenge = {"WWW-Authenticate": f'Bearer realm="{tokens.realm}",service="svc"'}
        stub = stubs()

        def bearer(seen: Seen) -> Answer:
            given = seen.headers.get("authorization")
            if (seen.method == "GET" and given) or given == "Bearer new":
                return 200, {}, b"{}"
            return 401, challenge, b""

        stub.script.append(bearer)
        client = make(stub.host)
        client.ping()  # learns the challenge, fetches "old"
        client.request("PUT", "/v2/r/blobs/uploads/x", ok=(200,), body=lambda: iter([b"data"]))
        assert [p.headers.get("authorization") for p in stub.requests("PUT")] == [
            "Bearer old", "Bearer new"]
    finally:
        tokens.stop()


def test_an_answer_past_its_cap_is_refused(stubs: StubFactory, make: Made) -> None:
    stub = _answering(stubs(), "/v2/big", (200, {}, b"z" * 100))
    client = make(stub.host)
    with pytest.raises(RegistryError, match="sent more than 99 bytes"):
        client.request("GET", "/v2/big", ok=(200,), max_body=99)
    assert client.request("GET", "/v2/big", ok=(200,), max_body=100).content == b"z" * 100


def test_redirects_are_followed_only_when_asked(stubs: StubFactory, make: Made) -> None:
    stub = _answering(stubs(), "/v2/moved", (307, {"Location": "/v2/"}, b""))
    client = make(stub.host)
    assert client.request("GET", "/v2/moved", ok=(200,), follow_redirects=True).content == b"{}"
    with pytest.raises(RegistryError, match="HTTP 307"):
        client.request("GET", "/v2/moved", ok=(200,))


# --- an error body read from a stream --------------------------------------------------


def test_an_endless_error_body_is_read_up_to_its_cap(one_shot: Callable[..., str],
                                                     make: Made) -> None:
    """A blob download refused with a body that never ends (here: exactly 64 KiB, then
    nothing): the error is read from the first 64 KiB, and freight does not wait for
    the rest."""
    import time

    from freight.digest import Digest
    from freight.sources.registry import RegistryReader
    from freight.transport.client import MAX_ERROR_BODY

    text = b"the storage backend is down; " * 3000

    def endless(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10000000\r\n\r\n"
                     + text[:50])
        time.sleep(0.05)  # a second packet, so the body comes in two reads (mostly)
        conn.sendall(text[50:MAX_ERROR_BODY])
        conn.settimeout(None)
        conn.recv(1)  # until freight hangs up, however long that takes

    host = one_shot(endless)
    digest = Digest.of(b"absent")
    reader = RegistryReader(make(host, plain_http=True), "app")
    with pytest.raises(RegistryError) as caught:
        reader.open_blob(digest)
    shown = text[:120].decode()
    assert str(caught.value) == (f"{host} answered HTTP 503 while downloading blob "
                                 f"{digest.short} ({shown}\u2026)")
