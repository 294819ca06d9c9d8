"""`freight login` / `freight logout` as library calls: check credentials, then store them
where docker (and freight) will find them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from freight.errors import UsageError
from freight.transport import credentials as creds
from freight.transport.client import RegistryClient
from freight.transport.credentials import Credentials

DOCKER_HUB_API = "registry-1.docker.io"  # where docker.io's API lives


def registry_host(text: str) -> str:
    """`localhost:5000`, `https://host/v1/` or `docker.io` → the host[:port] to file under."""
    host = urlsplit(text).netloc if "://" in text else text.split("/", 1)[0]
    if not host:
        raise UsageError(f"{text!r} is not a registry (examples: localhost:5000, ghcr.io)")
    return host.lower()


def login(registry: str, username: str, password: str, *, plain_http: bool | None = None,
          insecure: bool = False, ca_cert: str | Path | None = None,
          config: Path | None = None) -> str:
    """Prove the credentials against the registry (GET /v2/ with them, through the token
    server when it uses one), then save them; returns where they were saved."""
    if not username or not password:
        raise UsageError("login needs a user name and a password")
    host = registry_host(registry)
    given = Credentials(username, password)
    api = DOCKER_HUB_API if host in creds.DOCKER_HUB_HOSTS else host
    client = RegistryClient(api, plain_http=plain_http, insecure=insecure, ca_cert=ca_cert,
                            credentials=given, config_credentials=False)
    try:
        client.ping()
    finally:
        client.close()
    return creds.store(host, given, config)


def logout(registry: str, *, config: Path | None = None) -> bool:
    """Forget the registry's credentials; False when there were none."""
    return creds.erase(registry_host(registry), config)
