"""TLS contexts from docker's certs.d layout, with trustme certificates and a real handshake."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
import trustme

from freight.errors import UsageError
from freight.transport.tls import registry_certs_dir, ssl_context


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def serve_tls(configure: Callable[[ssl.SSLContext], None]) -> Iterator[str]:
    """An HTTPS server on loopback answering 200 to every GET, its server context set up by
    `configure` (certificate, client CAs): yields host:port, then stops."""
    httpd = HTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    configure(context)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[str]:
    yield from serve_tls(ca.issue_cert("127.0.0.1").configure_cert)


def get(host: str, context: ssl.SSLContext) -> int:
    return httpx.get(f"https://{host}/v2/", verify=context, timeout=5).status_code


def test_untrusted_by_default(server: str, tmp_path: Path) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get(server, ssl_context(server, roots=[tmp_path]))


def test_ca_cert_option(server: str, ca: trustme.CA, tmp_path: Path) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    assert get(server, ssl_context(server, ca_cert=tmp_path / "ca.pem", roots=[])) == 200


def test_certs_d_directory_named_host_port(server: str, ca: trustme.CA, tmp_path: Path) -> None:
    (tmp_path / server).mkdir()
    ca.cert_pem.write_to_path(str(tmp_path / server / "ca.crt"))
    assert registry_certs_dir(server, [tmp_path]) == tmp_path / server
    assert get(server, ssl_context(server, roots=[tmp_path])) == 200


def test_insecure_skips_verification(server: str) -> None:
    assert get(server, ssl_context(server, insecure=True, roots=[])) == 200


def test_client_cert_needs_its_key(ca: trustme.CA, tmp_path: Path) -> None:
    (tmp_path / "r:5000").mkdir()
    ca.issue_cert("client").cert_chain_pems[0].write_to_path(str(tmp_path / "r:5000" / "c.cert"))
    with pytest.raises(UsageError, match=r"c\.key"):
        ssl_context("r:5000", roots=[tmp_path])


def test_unreadable_ca_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="TLS certificates"):
        ssl_context("r", ca_cert=tmp_path / "missing.pem", roots=[])


def test_hosts_with_nothing_of_their_own_share_one_context(tmp_path: Path) -> None:
    """Building a verifying context loads the CA bundles (tens of ms): clients of plain
    hosts share one, and a context asked for on its own (to be changed) is a new one."""
    shared = ssl_context("a:5000", roots=[tmp_path])
    assert ssl_context("b:5000", roots=[tmp_path]) is shared
    assert ssl_context("a:5000", insecure=True, roots=[]) is ssl_context("b", insecure=True)
    own = ssl_context("a:5000", roots=[tmp_path], shared=False)
    assert own is not shared and own.check_hostname and shared.check_hostname
    assert ssl_context("a:5000", insecure=True, roots=[]).verify_mode == ssl.CERT_NONE


def test_a_host_with_a_certs_dir_gets_its_own_context(ca: trustme.CA, tmp_path: Path) -> None:
    (tmp_path / "r:5000").mkdir()
    ca.cert_pem.write_to_path(str(tmp_path / "r:5000" / "ca.crt"))
    assert ssl_context("r:5000", roots=[tmp_path]) is not ssl_context("s:5000", roots=[tmp_path])


def test_plain_http_clients_load_no_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the CA bundles costs tens of ms per context: a plain-HTTP registry client
    loads none (TLS is built only if a token server or redirect needs it), and HTTPS
    clients of hosts with nothing of their own share one context."""
    from freight.transport import tls
    from freight.transport.client import RegistryClient

    loads: list[str] = []
    real = ssl.SSLContext.load_verify_locations
    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations",
                        lambda self, *a, **k: (loads.append("ca"), real(self, *a, **k))[1])
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs",
                        lambda self, *a, **k: loads.append("default"))
    tls.default_context.cache_clear()
    for _ in range(3):
        RegistryClient("127.0.0.1:5999", plain_http=True).close()
    assert loads == []
    for _ in range(3):
        RegistryClient("registry.example:5000", plain_http=False).close()
    assert 0 < len(loads) <= 2  # one shared context: system CAs, then certifi's bundle
    tls.default_context.cache_clear()


def _system_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dir_cas: list[trustme.CA],
                  bundle_cas: list[trustme.CA]) -> ssl.DefaultVerifyPaths:
    """A system CA store of these CAs: OpenSSL's hashed directory and its bundle."""
    import subprocess

    capath, cafile = tmp_path / "certs", tmp_path / "ca-certificates.crt"
    capath.mkdir()
    for i, ca in enumerate(dir_cas):
        ca.cert_pem.write_to_path(str(capath / f"ca{i}.pem"))
    subprocess.run(["openssl", "rehash", str(capath)], check=True, capture_output=True)
    cafile.write_bytes(b"".join(ca.cert_pem.bytes() for ca in bundle_cas))
    paths = ssl.DefaultVerifyPaths(str(cafile), str(capath), "SSL_CERT_FILE", str(cafile),
                                   "SSL_CERT_DIR", str(capath))
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: paths)
    return paths


def test_system_cas_are_read_only_when_a_chain_names_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: str, ca: trustme.CA) -> None:
    """Parsing the whole CA bundle cost every HTTPS run 40 ms here. Where the hashed
    directory holds every CA of the bundle, only it is given to OpenSSL: nothing is read
    until a handshake, and the registry's CA is still found."""
    from freight.transport import tls

    _system_store(monkeypatch, tmp_path, [ca, trustme.CA()], [ca])
    context = tls._verifying_context()
    assert context.cert_store_stats()["x509_ca"] == 0
    assert get(server, context) == 200
    other = tmp_path / "other"
    other.mkdir()
    stranger = trustme.CA()
    _system_store(monkeypatch, other, [stranger], [stranger])  # without the server's CA
    lazy = tls._verifying_context()
    assert lazy.cert_store_stats()["x509_ca"] == 0
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get(server, lazy)


def test_a_bundle_the_directory_does_not_cover_is_read(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A CA appended to the bundle by hand (the bundle longer than the directory), or a
    bundle of the user's own in SSL_CERT_FILE, is read whole, as before."""
    from freight.transport import tls

    one, two = trustme.CA(), trustme.CA()
    paths = _system_store(monkeypatch, tmp_path, [one], [one, two])
    assert not tls._directory_suffices(paths)
    (tmp_path / "b").mkdir()
    paths = _system_store(monkeypatch, tmp_path / "b", [one, two], [one])
    assert tls._directory_suffices(paths)
    own = tmp_path / "own.pem"
    two.cert_pem.write_to_path(str(own))
    assert not tls._directory_suffices(ssl.DefaultVerifyPaths(
        str(own), paths.capath, "SSL_CERT_FILE", paths.openssl_cafile, "SSL_CERT_DIR",
        paths.openssl_capath))


def test_certifi_is_read_only_when_the_system_has_no_cas(monkeypatch: pytest.MonkeyPatch) -> None:
    """certifi's bundle was read on top of the system's (another 30 ms; docker, skopeo and
    podman trust the system's CAs alone). A system without CAs still gets it."""
    import certifi

    from freight.transport import tls

    real_where, reads = certifi.where, list[str]()
    monkeypatch.setattr(certifi, "where", lambda: (reads.append("certifi"), real_where())[1])
    monkeypatch.setattr(tls, "_directory_suffices", lambda paths: False)
    assert tls._verifying_context().cert_store_stats()["x509_ca"] > 0  # ca-certificates
    assert reads == []
    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", lambda self, *a, **k: None)
    context = tls._verifying_context()
    assert reads == ["certifi"] and context.cert_store_stats()["x509_ca"] > 0
