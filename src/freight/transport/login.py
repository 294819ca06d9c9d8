"""`freight login` / `freight logout` as library calls: check credentials, then store them
where docker (and freight) will find them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from freight.errors import AuthError, UsageError
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
          config: str | Path | None = None) -> str:
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
    except AuthError as exc:
        raise _refused(host, username, exc) from None
    finally:
        client.close()
    return creds.store(host, given, Path(config) if config is not None else None)


def _refused(host: str, username: str, exc: AuthError) -> AuthError:
    """The login failed: say so, and what to check; never "run freight login"."""
    status = f" (HTTP {exc.status}{' ' + exc.code if exc.code else ''})"  # unused if None
    if exc.status is None:  # no answer to judge them by (a token server out of reach)
        why = f"the credentials for {username!r} could not be checked at {host}: {exc}"
    elif exc.status == 403:
        why = f"{host} accepted no login for {username!r}{status}: the account may be locked"
    elif exc.status == 401:
        why = f"{host} refused the user name or password for {username!r}{status}"
    else:
        why = f"{host} did not accept the credentials for {username!r}{status}: {exc}"
    return AuthError(f"login failed: {why}; check them (a token needs the registry's "
                     "read scope) and try again; nothing was saved",
                     status=exc.status, code=exc.code, detail=exc.detail)


def logout(registry: str, *, config: Path | None = None) -> bool:
    """Forget the registry's credentials; False when there were none."""
    return creds.erase(registry_host(registry), config)
