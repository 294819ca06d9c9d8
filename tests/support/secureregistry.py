"""The distribution registry with token auth and/or TLS (mutual TLS with client CAs).

Builds on ``support.registry`` (same config, same process handling) and adds the ``auth``
and ``http.tls`` sections; certificates come from trustme, written to files the registry
reads.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trustme

from .env import require_binary
from .procs import Service, free_port, wait_until
from .registry import Registry, _config

START_ATTEMPTS = 3


@dataclass(frozen=True)
class TlsFiles:
    """The registry's CA (what a client must trust) and, for mutual TLS, a client pair."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    def registry_section(self) -> dict[str, Any]:
        section: dict[str, Any] = {
            "certificate": str(self.server_cert),
            "key": str(self.server_key),
        }
        if self.client_ca is not None:
            section["clientcas"] = [str(self.client_ca)]
        return section


def make_tls(directory: Path, *, mutual: bool = False,
             names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """A CA and a server certificate for `names`; with ``mutual``, a client CA and a
    client certificate it issued."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*names)
    ca.cert_pem.write_to_path(str(directory / "ca.crt"))
    server.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    if not mutual:
        return files
    client_ca = trustme.CA()
    client = client_ca.issue_cert("freight-test-client")
    client_ca.cert_pem.write_to_path(str(directory / "client-ca.crt"))
    client.cert_chain_pems[0].write_to_path(str(directory / "client.cert"))
    client.private_key_pem.write_to_path(str(directory / "client.key"))
    return TlsFiles(
        files.ca_cert,
        files.server_cert,
        files.server_key,
        directory / "client-ca.crt",
        directory / "client.cert",
        directory / "client.key",
    )


def start_secure_registry(
    workdir: Path,
    *,
    auth: dict[str, Any] | None = None,
    tls: TlsFiles | None = None,
    name: str = "secure",
) -> Registry:
    """``docker-registry serve`` with the given ``auth`` section and TLS files."""
    binary = require_binary("docker-registry", package="docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        config: dict[str, Any] = _config(port, workdir / "storage", None)
        if auth is not None:
            config["auth"] = auth
        if tls is not None:
            config["http"]["tls"] = tls.registry_section()
        path = workdir / "config.yml"
        path.write_text(json.dumps(config, indent=2))
        service = Service([binary, "serve", str(path)], log=workdir / f"{name}.{attempt}.log")
        host = f"127.0.0.1:{port}"
        try:
            wait_until(partial(_listening, service, port), what=f"{name} on {host}", timeout=20)
        except (TimeoutError, RuntimeError) as error:
            service.stop()
            last_error = error
            continue
        return Registry(host, workdir / "storage", service)
    raise RuntimeError(f"could not start {name}: {last_error}")


def _listening(service: Service, port: int) -> bool:
    service.check_alive()
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return True
