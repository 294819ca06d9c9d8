"""Making a registry client from what a user gives: host, TLS choices, credentials."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from freight.errors import UsageError
from freight.reference import Reference
from freight.transport.auth import Credentials
from freight.transport.client import CredentialSource, RegistryClient
from freight.transport.credentials import lookup


@dataclass(frozen=True)
class Connection:
    """How to reach registries: shared by every command that talks to one.

    `plain_http`: None decides like docker does for an insecure registry (a loopback one,
    or any with `insecure`): HTTPS when the registry speaks it, else plain HTTP; elsewhere
    HTTPS. True forces plain HTTP (`--plain-http`), False forces HTTPS (`--https`).
    `insecure` skips certificate verification (`--tls-verify=false`). Credentials are
    `username` + `password` when given, else looked up in `authfile` only when given, else
    where docker looks (DOCKER_AUTH_CONFIG, config.json, credential helpers, auth.json).
    """

    plain_http: bool | None = None
    insecure: bool = False
    username: str | None = None
    password: str | None = None
    ca_cert: str | None = None  # a PEM bundle to trust besides the system CAs and certs.d
    authfile: str | None = None

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise UsageError("give both a username and a password, or neither")

    def with_credentials(self, username: str | None, password: str | None) -> Connection:
        """The same connection with other credentials (None, None: the configured ones)."""
        return replace(self, username=username, password=password)

    @property
    def credentials(self) -> Credentials | None:
        if self.username is not None and self.password is not None:
            return Credentials(self.username, self.password)
        return None

    def client(self, registry: str, *, jobs: int = 4) -> RegistryClient:
        """A client for `registry` (as written in a reference: docker.io is mapped)."""
        host = Reference(registry, "x").api_host
        given = self.credentials
        source: CredentialSource | Credentials | None = given
        if given is None and self.authfile is not None:
            source = functools.partial(lookup, host, authfile=self.authfile)
        return RegistryClient(host, plain_http=self.plain_http, insecure=self.insecure,
                              credentials=source, max_connections=jobs * 2,
                              ca_cert=self.ca_cert,
                              config_credentials=given is None and self.authfile is None)
