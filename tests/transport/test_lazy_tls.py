"""Next to a plain-HTTP registry, HTTPS (a token server, a redirect) is still verified."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme

from freight.transport.client import RegistryClient


class _Hello(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[str, trustme.CA]]:  # type: ignore[no-untyped-def]
    ca = trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}/", ca
    server.shutdown()


def test_https_beside_a_plain_http_registry_is_verified(tls_server) -> None:  # type: ignore[no-untyped-def]
    url, _ = tls_server
    client = RegistryClient("127.0.0.1:9")  # loopback: plain HTTP, TLS built only if needed
    assert client.plain_http
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.http.get(url)  # an untrusted certificate is refused, not ignored
    client.close()
