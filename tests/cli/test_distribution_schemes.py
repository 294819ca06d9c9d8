"""The scheme probe and certificate errors against the CNCF distribution registry (a Go
server, as most registries are), plain HTTP and HTTPS on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from freight.errors import EXIT_NETWORK
from support.registry import Registry
from support.secureregistry import TlsFiles, make_tls, start_secure_registry

from .conftest import Run, one_error_line

pytestmark = pytest.mark.integration


def test_plain_distribution_is_probed_as_plain_http(freight: Run, registry: Registry) -> None:
    result = freight("-v", "catalog", registry.host)
    assert result.exit_code == 0, result.stderr
    assert f"{registry.host} speaks plain HTTP" in result.stderr


def test_https_distribution_on_loopback(freight: Run, tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    served = start_secure_registry(tmp_path / "reg", tls=tls, name="tls-probe")
    try:
        result = freight("-v", "catalog", served.host, "--ca-cert", str(tls.ca_cert))
        untrusted = freight("catalog", served.host)
    finally:
        served.stop()
    assert result.exit_code == 0, result.stderr
    assert f"{served.host} speaks HTTPS" in result.stderr
    assert f"GET https://{served.host}/v2/_catalog" in result.stderr
    one_error_line(untrusted, EXIT_NETWORK, "not trusted", "--ca-cert")


def test_distribution_certificate_for_another_name(freight: Run, tmp_path: Path) -> None:
    directory = tmp_path / "other"
    directory.mkdir()
    ca = trustme.CA()
    issued = ca.issue_cert("registry.example")
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    issued.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    issued.private_key_pem.write_to_path(str(directory / "server.key"))
    tls = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    served = start_secure_registry(tmp_path / "reg", tls=tls, name="tls-name")
    try:
        one_error_line(freight("catalog", served.host, "--ca-cert", str(tls.ca_cert)),
                       EXIT_NETWORK, "is for registry.example, not 127.0.0.1")
    finally:
        served.stop()
