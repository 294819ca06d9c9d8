"""Fail fast on what cannot succeed, keep retrying what can; bodies capped while read;
credentials never sent to a plain-HTTP token realm of an HTTPS registry; retry loops with a
budget that progress cannot reset forever."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from freight.errors import EXIT_AUTH, EXIT_NETWORK, EXIT_REGISTRY, NetworkError
from freight.transport.client import RegistryClient
from freight.transport.retry import RetryPolicy
from support.procs import free_port

from .conftest import Certs, Run, one_error_line
from .scripted import Resetting, Scripted, reply


def client(host: str, sleeps: list[float]) -> RegistryClient:
    return RegistryClient(host, retry=RetryPolicy(sleep=sleeps.append),
                          config_credentials=False)


def test_refused_on_loopback_is_not_retried(freight: Run) -> None:
    port = free_port()  # nothing listens there
    sleeps: list[float] = []
    with pytest.raises(NetworkError, match="connection refused"):
        client(f"127.0.0.1:{port}", sleeps).ping()
    assert sleeps == []  # one attempt, no wait
    one_error_line(freight("tags", f"127.0.0.1:{port}/team/app"), EXIT_NETWORK,
                   "connection refused")


def test_resets_are_still_retried() -> None:
    server = Resetting()
    sleeps: list[float] = []
    try:
        with pytest.raises(NetworkError):
            client(server.host, sleeps).ping()
    finally:
        server.stop()
    policy = RetryPolicy()
    assert len(sleeps) == policy.attempts - 1
    assert server.accepted >= policy.attempts


def test_retry_budget_is_not_reset_by_progress() -> None:
    sleeps: list[float] = []
    budget = RetryPolicy(attempts=3, max_total_failures=5, sleep=sleeps.append).budget()
    rounds = 0
    while budget.failed():
        budget.progress()  # a chunk got through between every two failures
        rounds += 1
        assert rounds < 100
    assert budget.total == 5 and len(sleeps) == 4


@pytest.fixture
def endless() -> Iterator[tuple[Scripted, list[int]]]:
    """A "registry" whose manifest (and error) bodies never end; counts bytes it sent."""
    sent = [0]

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path == "/v2/":
            reply(h, 200, b"{}")
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        h.end_headers()  # no Content-Length: the body ends when the connection does
        block = b" " * (1 << 20)
        try:
            for _ in range(256):  # bounded: 256 MiB at most
                h.wfile.write(block)
                sent[0] += len(block)
        except OSError:
            pass
        h.close_connection = True

    server = Scripted(handle)
    yield server, sent
    server.stop()


def test_manifest_body_capped_while_reading(freight: Run,
                                            endless: tuple[Scripted, list[int]]) -> None:
    server, sent = endless
    one_error_line(freight("manifest", f"{server.host}/team/app:1"), EXIT_REGISTRY,
                   "sent more than", "stopped reading")
    assert sent[0] < 64 << 20  # the client hung up near the cap, long before the end


def test_no_credentials_to_a_plain_http_realm(freight: Run, certs: Certs) -> None:
    token = Scripted(lambda h: reply(h, 200, json.dumps({"token": "t"}).encode()))
    realm = f"http://{token.host}/token"

    def registry(h: BaseHTTPRequestHandler) -> None:
        reply(h, 401, b'{"errors": []}', {
            "WWW-Authenticate": f'Bearer realm="{realm}",service="reg"',
            "Content-Type": "application/json"})

    secure = Scripted(registry, cert=(certs.cert, certs.key))
    try:
        one_error_line(freight("tags", f"{secure.host}/team/app", "--ca-cert", str(certs.ca),
                               "--creds", "alice:secret"),
                       EXIT_AUTH, "plain-HTTP token server", "will not send credentials")
    finally:
        secure.stop()
        token.stop()
    assert all("Authorization" not in headers for _, _, headers in token.seen)


def test_verbose_shows_requests_with_secrets_redacted(freight: Run, tmp_path: Path) -> None:
    import bcrypt

    from freight.server.auth import BasicAuth

    from .conftest import serving

    users = {"alice": bcrypt.hashpw(b"s3cret-pw", bcrypt.gensalt(rounds=4))}
    with serving(tmp_path / "root", auth=BasicAuth(users)) as served:
        result = freight("--debug", "tags", f"{served.host}/team/app",
                         "--creds", "alice:s3cret-pw")
    assert result.exit_code in (0, 7), result.stderr  # the repository may not exist
    assert f"> GET http://{served.host}/v2/team/app/tags/list" in result.stderr
    assert "< 401" in result.stderr
    assert "authorization: Basic <redacted>" in result.stderr
    assert "s3cret-pw" not in result.stderr
    import base64

    assert base64.b64encode(b"alice:s3cret-pw").decode() not in result.stderr



def test_unresolvable_host_is_not_retried() -> None:
    """No DNS traffic leaves this machine in tests: the failure is the one httpx raises
    when the resolver says the name does not exist."""
    import socket

    import httpx

    from freight.transport.client import _retryable

    try:
        raise socket.gaierror(-2, "Name or service not known")
    except socket.gaierror as cause:
        failure = httpx.ConnectError(str(cause))
        failure.__cause__ = cause
    assert not _retryable(failure, "registry.invalid:5000")
    reset = httpx.ReadError("connection reset by peer")
    assert _retryable(reset, "registry.example")


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # the test reads freight's stderr, which this process shares


class _CatchAll(_QuietHandler):
    """A web app that answers every path with its page (an SPA's fallback route)."""

    PAGE = b"<html><body>app</body></html>"

    def _page(self, body: bool = True) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.PAGE)))
        self.end_headers()
        if body:
            self.wfile.write(self.PAGE)

    def do_GET(self) -> None:
        self._page()

    def do_HEAD(self) -> None:
        self._page(body=False)

    do_POST = do_PUT = do_PATCH = do_GET


@pytest.fixture(params=["404 pages", "catch-all app"])
def web_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A web server where a registry was expected: the stdlib's file server (HTML 404 for
    every registry path, as `python -m http.server` answers), or a web app answering
    every path with 200 and its page."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Files(SimpleHTTPRequestHandler, _QuietHandler):
        pass

    (tmp_path / "index.html").write_text("<html>hello</html>")
    handler: Any = functools.partial(Files, directory=str(tmp_path)) \
        if request.param == "404 pages" else _CatchAll
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("command", [["tags", "{host}/team/app"], ["catalog", "{host}"],
                                     ["manifest", "{host}/team/app:1"],
                                     ["digest", "{host}/team/app:1"],
                                     ["pull", "{host}/team/app:1", "{out}"],
                                     ["push", "{archive}", "{host}/team/app:1"]],
                         ids=lambda c: c[0])
def test_a_web_server_is_not_a_registry(freight: Run, web_server: str, tmp_path: Path,
                                        command: list[str]) -> None:
    """A wrong address answers web pages: say it is not a registry, never "no such
    repository", and never report a push as done."""
    from freight.testing import random_image

    archive = tmp_path / "image.tar"
    random_image(archive, layers=1)
    args = [a.format(host=web_server, out=tmp_path / "out.tar", archive=archive)
            for a in command]
    line = one_error_line(freight(*args), EXIT_REGISTRY)
    assert "not a registry" in line or "is it a registry?" in line or \
        "not JSON" in line, line
    assert not (tmp_path / "out.tar").exists()


def test_a_connection_ecr_cuts_says_to_create_the_repository() -> None:
    """ECR closes the connection on a push to a repository that does not exist."""
    import httpx

    ecr = RegistryClient("123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                         config_credentials=False)
    message = str(ecr._network_error(httpx.RemoteProtocolError("peer closed"), "pushing"))
    assert "create it first" in message and "plain-http" not in message
    other = RegistryClient("registry.example.com", config_credentials=False)
    assert "create it first" not in str(other._network_error(httpx.ReadError("reset"), ""))
