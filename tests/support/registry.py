"""The CNCF distribution registry (Debian ``docker-registry``) on 127.0.0.1, one per call."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import bcrypt
import httpx

from .env import require_binary
from .procs import Service, free_port, wait_until

START_ATTEMPTS = 3  # free_port() can race with another process grabbing the port
BCRYPT_ROUNDS = 4  # the minimum; these are throwaway test passwords and speed matters


@dataclass
class Registry:
    """A running registry; ``host`` is what goes into image references."""

    host: str
    storage: Path
    service: Service
    username: str | None = None
    password: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def client(self) -> httpx.Client:
        """An httpx client for the registry API, with credentials when the registry has them."""
        auth = (self.username, self.password) if self.username and self.password else None
        return httpx.Client(base_url=self.url, auth=auth, timeout=60)

    def stop(self) -> None:
        self.service.stop()


def _config(port: int, storage: Path, htpasswd: Path | None,
            read_only: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False},
                            "readonly": {"enabled": read_only}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": "freight-tests"},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "freight-tests", "path": str(htpasswd)}}
    return config


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """An htpasswd file with bcrypt hashes (the only kind distribution accepts)."""
    lines = []
    for user, password in users.items():
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
        lines.append(f"{user}:{hashed.decode()}")
    path.write_text("\n".join(lines) + "\n")
    return path


def start_registry(
    workdir: Path, *, users: dict[str, str] | None = None, name: str = "registry",
    read_only: bool = False,
) -> Registry:
    """Start ``docker-registry serve`` in ``workdir``; with ``users``, htpasswd auth is on;
    ``read_only`` is distribution's maintenance mode (every write refused, as during GC).

    The registry's config is JSON, which is YAML too.
    """
    binary = require_binary("docker-registry", package="docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    htpasswd = write_htpasswd(workdir / "htpasswd", users) if users else None
    last_error: Exception | None = None
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(json.dumps(_config(port, storage, htpasswd, read_only), indent=2))
        service = Service([binary, "serve", str(config)], log=workdir / f"{name}.{attempt}.log")
        host = f"127.0.0.1:{port}"
        try:
            wait_until(partial(_answers, service, host), what=f"{name} on {host}", timeout=20)
        except (TimeoutError, RuntimeError) as error:
            service.stop()
            last_error = error
            continue
        user, password = next(iter(users.items())) if users else (None, None)
        return Registry(host, storage, service, username=user, password=password)
    raise RuntimeError(f"could not start {name}: {last_error}")


def _answers(service: Service, host: str) -> bool:
    service.check_alive()
    status = httpx.get(f"http://{host}/v2/", timeout=2).status_code
    return status in (200, 401)
