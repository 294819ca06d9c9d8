"""TLS settings as docker reads them (src/freight/transport/tls.py), with trustme
certificates and real handshakes on loopback: where certs.d directories are looked for,
which files in one count, mutual TLS, `--tls-verify=false` with a CA given, the lazily
built transport, and the names a certificate carries (to explain a mismatch). Written
against mutation testing of the module; test_tls.py has the basics."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from http.server import HTTPServer
from pathlib import Path

import httpx
import pytest
import trustme

from freight.errors import UsageError
from freight.transport import tls
from freight.transport.tls import (
    DEFAULT_CERTS_DIRS,
    LazyTLSTransport,
    certificate_names,
    certs_dirs,
    plain_http_context,
    registry_certs_dir,
    ssl_context,
)

from .test_tls import _Ok, serve_tls

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()



def _serve(ca: trustme.CA, *names: str, client_ca: trustme.CA | None = None) -> Iterator[str]:
    def configure(context: ssl.SSLContext) -> None:
        ca.issue_cert(*names).configure_cert(context)
        if client_ca is not None:
            client_ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED

    return serve_tls(configure)


@pytest.fixture
def server(ca: trustme.CA) -> Iterator[str]:
    yield from _serve(ca, "127.0.0.1", "registry.test")


def _get(host: str, context: ssl.SSLContext) -> int:
    return httpx.get(f"https://{host}/v2/", verify=context, timeout=5).status_code


def test_certs_dirs_are_dockers_then_podmans_then_the_users(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FREIGHT_CERTS_DIRS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert certs_dirs() == [Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d"),
                            tmp_path / ".config" / "containers" / "certs.d"]
    assert DEFAULT_CERTS_DIRS == ("/etc/docker/certs.d", "/etc/containers/certs.d")


def test_freight_certs_dirs_replaces_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_CERTS_DIRS", os.pathsep.join(["/a", "", "/b"]))
    assert certs_dirs() == [Path("/a"), Path("/b")]
    monkeypatch.setenv("FREIGHT_CERTS_DIRS", "")
    assert certs_dirs() == []


def test_the_first_certs_dir_of_the_host_wins(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    (second / "r:5000").mkdir(parents=True)
    first.mkdir()
    (first / "r:5000").write_text("a file, not a directory")
    monkeypatch.setenv("FREIGHT_CERTS_DIRS", os.pathsep.join([str(first), str(second)]))
    assert registry_certs_dir("r:5000") == second / "r:5000"
    (first / "r:5000").unlink()
    (first / "r:5000").mkdir()
    assert registry_certs_dir("r:5000") == first / "r:5000"
    assert registry_certs_dir("r:5001") is None
    assert registry_certs_dir("r:5000", []) is None


def test_a_certs_dir_trusts_each_crt_and_ignores_other_files(
        server: str, ca: trustme.CA, tmp_path: Path) -> None:
    (tmp_path / server).mkdir()
    other = trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / server / "a-other.crt"))
    ca.cert_pem.write_to_path(str(tmp_path / server / "b-mine.crt"))
    (tmp_path / server / "notes.txt").write_text("not a certificate")
    (tmp_path / server / "ca.pem").write_text("not read: only .crt files are CAs")
    assert _get(server, ssl_context(server, roots=[tmp_path])) == 200


def test_a_ca_given_and_a_certs_dir_are_both_trusted(server: str, ca: trustme.CA,
                                                     tmp_path: Path) -> None:
    (tmp_path / server).mkdir()
    trustme.CA().cert_pem.write_to_path(str(tmp_path / server / "other.crt"))
    ca.cert_pem.write_to_path(str(tmp_path / "mine.pem"))
    assert _get(server, ssl_context(server, ca_cert=tmp_path / "mine.pem",
                                    roots=[tmp_path])) == 200


def test_insecure_with_a_ca_given_still_skips_verification(server: str,
                                                          tmp_path: Path) -> None:
    (tmp_path / "missing.pem").unlink(missing_ok=True)
    context = ssl_context(server, insecure=True, ca_cert=tmp_path / "missing.pem", roots=[])
    assert _get(server, context) == 200  # the CA file is not even read
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_insecure_with_a_certs_dir_skips_its_cas(server: str, tmp_path: Path) -> None:
    (tmp_path / server).mkdir()
    (tmp_path / server / "broken.crt").write_text("not a certificate")
    context = ssl_context(server, insecure=True, roots=[tmp_path])
    assert _get(server, context) == 200


def test_a_broken_crt_is_a_usage_error_naming_the_host(tmp_path: Path) -> None:
    (tmp_path / "r:5000").mkdir()
    (tmp_path / "r:5000" / "ca.crt").write_text("not a certificate")
    with pytest.raises(UsageError, match=r"^cannot load the TLS certificates for r:5000: "):
        ssl_context("r:5000", roots=[tmp_path])


def test_a_client_certificate_is_presented(ca: trustme.CA, tmp_path: Path) -> None:
    clients = trustme.CA()
    served = _serve(ca, "127.0.0.1", client_ca=clients)
    host = next(served)
    try:
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        with pytest.raises(httpx.HTTPError):  # no client certificate: refused
            _get(host, ssl_context(host, ca_cert=tmp_path / "ca.pem", roots=[]))
        client = clients.issue_cert("client")
        (tmp_path / host).mkdir()
        client.cert_chain_pems[0].write_to_path(str(tmp_path / host / "client.cert"))
        client.private_key_pem.write_to_path(str(tmp_path / host / "client.key"))
        assert _get(host, ssl_context(host, ca_cert=tmp_path / "ca.pem",
                                      roots=[tmp_path])) == 200
        client.cert_chain_pems[0].write_to_path(str(tmp_path / "given.cert"))
        client.private_key_pem.write_to_path(str(tmp_path / "given.key"))
        given = ssl_context(host, ca_cert=tmp_path / "ca.pem", roots=[],
                            client_cert=(tmp_path / "given.cert", tmp_path / "given.key"))
        assert _get(host, given) == 200
        insecure = ssl_context(host, insecure=True, roots=[tmp_path])
        assert _get(host, insecure) == 200  # insecure still presents the certificate
    finally:
        next(served, None)


def test_a_client_certificate_without_its_key_names_the_key(ca: trustme.CA,
                                                            tmp_path: Path) -> None:
    (tmp_path / "r:5000").mkdir()
    ca.issue_cert("client").cert_chain_pems[0].write_to_path(str(tmp_path / "r:5000" / "c.cert"))
    with pytest.raises(UsageError, match=rf"^{tmp_path}/r:5000/c\.cert has no matching c\.key "
                                         r"\(client certificate and key come in pairs\)$"):
        ssl_context("r:5000", roots=[tmp_path])


def test_a_client_certificate_alone_gets_a_context_of_its_own(ca: trustme.CA,
                                                              tmp_path: Path) -> None:
    client = ca.issue_cert("client")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "c.cert"))
    client.private_key_pem.write_to_path(str(tmp_path / "c.key"))
    own = ssl_context("r", roots=[], client_cert=(tmp_path / "c.cert", tmp_path / "c.key"))
    assert own is not ssl_context("r", roots=[])
    assert own.verify_mode == ssl.CERT_REQUIRED and own.check_hostname


def test_shared_contexts_verify_or_not_as_asked() -> None:
    verifying = ssl_context("r", roots=[])
    assert verifying is tls.default_context()
    assert verifying.verify_mode == ssl.CERT_REQUIRED and verifying.check_hostname
    unverified = ssl_context("r", roots=[], insecure=True)
    assert unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname
    assert ssl_context("r", roots=[], insecure=True, shared=False) is not unverified
    assert plain_http_context() is plain_http_context()
    assert plain_http_context().verify_mode == ssl.CERT_REQUIRED


def test_a_certs_dir_host_is_verified_against_the_system_cas_too(server: str,
                                                                 tmp_path: Path) -> None:
    (tmp_path / server).mkdir()
    (tmp_path / server / "README").write_text("nothing to trust")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(server, ssl_context(server, roots=[tmp_path]))


def test_the_lazy_transport_builds_once_on_first_use_and_closes(server: str,
                                                                ca: trustme.CA) -> None:
    built: list[httpx.HTTPTransport] = []
    context = ssl.create_default_context()
    ca.configure_trust(context)

    def build() -> httpx.HTTPTransport:
        built.append(httpx.HTTPTransport(verify=context))
        return built[-1]

    lazy = LazyTLSTransport(build)
    lazy.close()  # nothing built: nothing to close
    assert built == []
    with httpx.Client(transport=lazy) as client:
        for _ in range(2):
            assert client.get(f"https://{server}/v2/").status_code == 200
    assert len(built) == 1


def test_certificate_names_reads_the_alt_names(server: str, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    assert certificate_names(server, context) == ["127.0.0.1", "registry.test"]
    assert not context.check_hostname


def _self_signed_without_alt_names(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate naming its host only in the subject's CN (no
    subjectAltName), as old private registries have them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "only-a-cn.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cn.pem", tmp_path / "cn.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_certificate_names_falls_back_to_the_common_name(tmp_path: Path) -> None:
    cert, key = _self_signed_without_alt_names(tmp_path)
    served = serve_tls(lambda context: context.load_cert_chain(str(cert), str(key)))
    host = next(served)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        assert certificate_names(host, context) == ["only-a-cn.test"]
    finally:
        next(served, None)


def test_certificate_names_of_an_untrusted_or_absent_server_is_none(server: str) -> None:
    assert certificate_names(server, ssl_context(server, roots=[], shared=False)) is None
    with HTTPServer(("127.0.0.1", 0), _Ok) as closed:
        port = closed.server_address[1]
    assert certificate_names(f"127.0.0.1:{port}", ssl.create_default_context(),
                             timeout=1) is None
