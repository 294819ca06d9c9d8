"""Two small transport pieces against real sockets on loopback: the cap on bodies read into
memory (transport/capped.py) and the one-probe HTTPS-or-HTTP guess (transport/scheme.py)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from freight.errors import RegistryError
from freight.transport import log, scheme
from freight.transport.capped import MAX_BODY, CappedTransport

pytestmark = pytest.mark.timeout(20)
WAIT = 5  # seconds for a loopback server thread to answer


class OneShotServer:
    """Accepts connections on loopback and lets `answer(conn)` write whatever it likes."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(WAIT)
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._answer = answer
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(WAIT)
                with contextlib.suppress(OSError):
                    self._answer(conn)

    def stop(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept (Linux)
        self._listener.close()
        self._thread.join(WAIT)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], OneShotServer]]:
    servers: list[OneShotServer] = []

    def start(answer: Callable[[socket.socket], None]) -> OneShotServer:
        servers.append(OneShotServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
    scheme.forget_all()


def _http(body: bytes, *, length: int | None = None, chunked: bool = False
          ) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        if chunked:
            head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100])
                               for i in range(0, len(body), 100)) + b"0\r\n\r\n"
        else:
            size = len(body) if length is None else length
            head = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                    % size)
            payload = body
        conn.sendall(head + payload)
    return answer


def _get(server: OneShotServer, cap: int | None, path: str = "/v2/r/manifests/1"
         ) -> httpx.Response:
    extensions = {MAX_BODY: cap} if cap is not None else {}
    with httpx.Client(transport=CappedTransport(httpx.HTTPTransport())) as client:
        reply = client.get(f"http://{server.host}{path}", extensions=extensions)
        reply.read()
        return reply


# --- capped bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_past_its_cap_is_refused_while_read(serve, chunked: bool) -> None:  # type: ignore[no-untyped-def]
    server = serve(_http(b"x" * 5000, chunked=chunked))
    with pytest.raises(RegistryError) as caught:
        _get(server, 1000, "/v2/r/manifests/1?token=hunter2")
    message = str(caught.value)
    assert message.startswith(f"{server.host} sent more than 1000 bytes in answer to GET ")
    assert "/v2/r/manifests/1" in message and "stopped reading" in message
    assert "hunter2" not in message  # the URL is redacted


def test_a_lying_content_length_does_not_get_past_the_cap(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(_http(b"y" * 5000, length=5000))
    with pytest.raises(RegistryError, match="more than 10 bytes"):
        _get(server, 10)


def test_a_body_up_to_its_cap_is_read_whole(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(_http(b"z" * 1000, chunked=True))
    assert _get(server, 1000).content == b"z" * 1000


def test_a_request_without_a_cap_reads_everything(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(_http(b"w" * 50_000))
    assert len(_get(server, None).content) == 50_000


def test_closing_the_capped_transport_closes_its_pool() -> None:
    inner = httpx.HTTPTransport()
    closed: list[bool] = []
    original = inner.close
    inner.close = lambda: (closed.append(True), original())[1]  # type: ignore[method-assign]
    CappedTransport(inner).close()
    assert closed == [True]


# --- scheme probe --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    path = Path(tmp_path_factory.mktemp("tls")) / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    context.load_cert_chain(str(path))
    return context


def test_a_tls_server_is_told_apart_and_remembered(serve, tls_context) -> None:  # type: ignore[no-untyped-def]
    def handshake(conn: socket.socket) -> None:
        try:
            with tls_context.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass  # the probe hangs up after the first byte

    server = serve(handshake)
    assert scheme.speaks_tls(server.host) is True
    server.stop()
    assert scheme.speaks_tls(server.host) is True  # asked once per host per process


def test_a_tls_alert_also_means_tls(serve) -> None:  # type: ignore[no-untyped-def]
    def alert(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"\x15\x03\x03\x00\x02\x02\x28")
    assert scheme.speaks_tls(serve(alert).host) is True


def test_a_plain_http_server_is_told_apart_and_remembered(serve) -> None:  # type: ignore[no-untyped-def]
    def bad_request(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    server = serve(bad_request)
    assert scheme.speaks_tls(server.host) is False
    server.stop()
    assert scheme.speaks_tls(server.host) is False


@pytest.mark.parametrize("reply", [b"", b"SSH-2.0-OpenSSH\r\n"])
def test_a_server_that_hangs_up_or_speaks_something_else_cannot_tell(  # type: ignore[no-untyped-def]
        serve, reply: bytes) -> None:
    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(reply)

    server = serve(answer)
    assert scheme.speaks_tls(server.host) is None
    scheme.remember(server.host, tls=False)  # nothing was remembered: this is what counts
    assert scheme.speaks_tls(server.host) is False


def test_a_refused_port_cannot_tell_and_is_asked_again() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        host = f"127.0.0.1:{sock.getsockname()[1]}"
    assert scheme.speaks_tls(host) is None
    scheme.remember(host, tls=True)
    assert scheme.speaks_tls(host) is True
    scheme.forget_all()
    assert scheme.speaks_tls(host) is None


@pytest.mark.parametrize(("host", "split"), [
    ("127.0.0.1:5000", ("127.0.0.1", 5000)),
    ("registry.example", ("registry.example", 443)),
    ("registry.example:8443", ("registry.example", 8443)),
    ("[::1]:5000", ("::1", 5000)),
    ("[::1]", ("::1", 443)),
    ("::1", ("::1", 443)),
    ("host:http", ("host", 443)),
])
def test_split_host(host: str, split: tuple[str, int]) -> None:
    assert scheme.split_host(host) == split


def test_split_host_default_port() -> None:
    assert scheme.split_host("localhost", 80) == ("localhost", 80)
    assert scheme.split_host("[::1]", 80) == ("::1", 80)


def test_verbose_says_what_the_probe_found(serve, capsys) -> None:  # type: ignore[no-untyped-def]
    def bad_request(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    server = serve(bad_request)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    log.set_level(log.VERBOSE)
    try:
        scheme.speaks_tls(server.host)
        scheme.speaks_tls(closed)
        scheme.speaks_tls(server.host)  # known: no probe, no line
    finally:
        log.set_level(log.QUIET)
    assert capsys.readouterr().err.splitlines() == [
        f"freight: {server.host} speaks plain HTTP",
        f"freight: {closed} speaks nothing freight can tell (probe failed)",
    ]


def test_a_server_that_never_answers_cannot_tell_within_the_timeout(serve) -> None:  # type: ignore[no-untyped-def]
    release = threading.Event()

    def silent(conn: socket.socket) -> None:
        conn.recv(65536)
        release.wait(WAIT * 2)  # holds the connection open, says nothing

    server = serve(silent)
    answers: list[bool | None] = []
    probe = threading.Thread(target=lambda: answers.append(
        scheme.speaks_tls(server.host, timeout=0.2)), daemon=True)
    probe.start()
    probe.join(WAIT)
    release.set()
    assert answers == [None]  # gave up at its timeout, remembered nothing


def test_verbose_names_https(serve, tls_context, capsys) -> None:  # type: ignore[no-untyped-def]
    def handshake(conn: socket.socket) -> None:
        with contextlib.suppress(ssl.SSLError, OSError), \
                tls_context.wrap_socket(conn, server_side=True):
            pass

    server = serve(handshake)
    log.set_level(log.VERBOSE)
    try:
        scheme.speaks_tls(server.host)
    finally:
        log.set_level(log.QUIET)
    assert capsys.readouterr().err == f"freight: {server.host} speaks HTTPS\n"
