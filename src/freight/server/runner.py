"""Serving the registry with uvicorn: address parsing, the listening socket, TLS, start-up line.

uvicorn is imported only here, when a server actually starts (start-up speed of the CLI).
SIGINT/SIGTERM are handled by uvicorn: it stops accepting, lets running requests finish
(up to `GRACEFUL_SHUTDOWN` seconds) and exits; upload sessions live on disk regardless.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import time
from collections.abc import Callable
from pathlib import Path

from freight.errors import UsageError
from freight.server.app import make_app
from freight.server.auth import BasicAuth, load_htpasswd
from freight.server.gc import collect
from freight.server.storage import FilesystemStorage

DEFAULT_ADDRESS = "127.0.0.1:5000"  # loopback: never expose a registry by accident
GRACEFUL_SHUTDOWN = 30  # seconds granted to running requests on SIGTERM
MAX_HEADER_BYTES = 64 * 1024  # h11 limit on request line + headers; refuses absurd requests


def default_root() -> Path:
    """The per-user data directory for the registry's content."""
    import platformdirs

    return platformdirs.user_data_path("freight") / "registry"


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `:PORT` (loopback) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"invalid address {text!r}: use HOST:PORT, e.g. {DEFAULT_ADDRESS}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1024)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def url_of(sock: socket.socket, *, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{host}:{port}"


def run(root: Path | None = None, address: str = DEFAULT_ADDRESS, *,
        htpasswd: Path | None = None, read_only: bool = False,
        tls_cert: Path | None = None, tls_key: Path | None = None, gc: bool = False,
        announce: Callable[[str], None] | None = None) -> None:
    """Serve the registry stored under `root` on `address` until SIGINT/SIGTERM.

    `announce` receives the start-up line (default: stderr). Raises UsageError for a bad
    address, htpasswd file or TLS files, before anything is served.
    """
    import uvicorn

    _structured_logging()
    root = Path(root) if root is not None else default_root()
    storage = FilesystemStorage(root)
    if gc:
        collect(root)
    auth = BasicAuth(load_htpasswd(htpasswd)) if htpasswd is not None else None
    app = make_app(storage, auth=auth, read_only=read_only, access_log=sys.stderr)
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("TLS needs both --tls-cert and --tls-key")
    config = uvicorn.Config(
        app, lifespan="off", log_config=None, access_log=False, server_header=False,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        config.load()
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load TLS certificate or key: {exc}") from None
    sock = listen(*parse_address(address))
    line = f"freight registry serving {root} on {url_of(sock, tls=tls_cert is not None)}"
    (announce or _to_stderr)(line)
    uvicorn.Server(config).run(sockets=[sock])


class _JSONFormatter(logging.Formatter):
    """Log records as JSON lines, like the access log, so one parser reads all of stderr."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
                 "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _structured_logging() -> None:
    """Warnings and errors of the server and of uvicorn go to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JSONFormatter())
    for name in ("freight.server", "uvicorn"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.WARNING)  # uvicorn's INFO lines repeat our start-up line
        logger.propagate = False


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
