"""Making a registry client from what a user gives: host, TLS choices, credentials."""

from __future__ import annotations

from dataclasses import dataclass

from freight.errors import UsageError
from freight.reference import Reference
from freight.transport.auth import Credentials
from freight.transport.client import RegistryClient


@dataclass(frozen=True)
class Connection:
    """How to reach registries: shared by every command that talks to one."""

    plain_http: bool | None = None  # None: plain HTTP for loopback registries only, like docker
    insecure: bool = False
    username: str | None = None
    password: str | None = None
    ca_cert: str | None = None  # a PEM bundle to trust besides the system CAs and certs.d

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise UsageError("give both a username and a password, or neither")

    def client(self, registry: str, *, jobs: int = 4) -> RegistryClient:
        """A client for `registry` (as written in a reference: docker.io is mapped)."""
        creds = None
        if self.username is not None and self.password is not None:
            creds = Credentials(self.username, self.password)
        host = Reference(registry, "x").api_host
        return RegistryClient(host, plain_http=self.plain_http, insecure=self.insecure,
                              credentials=creds, max_connections=jobs * 2,
                              ca_cert=self.ca_cert)
