"""Serving the registry with uvicorn: address parsing, the listening socket, TLS, start-up line.

uvicorn is imported only here, when a server actually starts (start-up speed of the CLI).
SIGINT/SIGTERM are handled by uvicorn: it stops accepting, lets running requests finish
(up to `GRACEFUL_SHUTDOWN` seconds) and returns; `run` then returns normally, so the
process exits 0 (uvicorn would re-raise the signal, and die of it, otherwise). Upload
sessions live on disk regardless.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freight.errors import UsageError
from freight.server.app import make_app
from freight.server.auth import BasicAuth, load_htpasswd
from freight.server.exchange import MAX_HEADER_BYTES
from freight.server.gc import Policy, Schedule, collect
from freight.server.storage import Storage, open_storage

if TYPE_CHECKING:
    import uvicorn

DEFAULT_ADDRESS = "127.0.0.1:5000"  # loopback: never expose a registry by accident
GRACEFUL_SHUTDOWN = 30  # seconds granted to running requests on SIGTERM
DEFAULT_HEADER_TIMEOUT = 10.0  # seconds for request line + headers (slowloris); Go uses ~10 s
REGISTRY_DIRS = ("blobs", "repositories")  # what marks a directory as a registry's root
ACCESS_LOGS = ("json", "off")

log = logging.getLogger("freight.server")


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


def check_root(root: Path) -> None:
    """UsageError unless `root` is new, an empty directory, or a registry's root already:
    never scatter blobs/ and repositories/ into a directory that holds something else."""
    if not root.exists():
        return
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory; give a registry root with --root")
    try:
        if any(True for _ in root.iterdir()) and not any((root / d).is_dir()
                                                          for d in REGISTRY_DIRS):
            raise UsageError(f"{root} is not a registry root (it has no blobs/ or "
                             "repositories/) and is not empty; give a registry's root or "
                             "a new directory")
    except PermissionError:
        raise UsageError(f"cannot read {root}: permission denied") from None


def check_tls(cert: Path, key: Path) -> None:
    """UsageError unless `cert` and `key` load as a server certificate and its key."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load TLS certificate or key: {exc}") from None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`: addresses no other machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_clear_text(auth: bool, tls: bool, host: str) -> None:
    """Log a warning when Basic auth is served over plain HTTP beyond loopback."""
    if auth and not tls and not is_loopback(host):
        log.warning("Basic auth over plain HTTP on %s: passwords cross the network in clear "
                    "text; serve HTTPS with --tls-cert and --tls-key", host)


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


@dataclass(frozen=True)
class ServeSpec:
    """How to build the registry one process serves (picklable: a worker process builds
    its own from it). `where` is a root directory or `s3://BUCKET/PREFIX`."""

    where: str
    s3_redirect: bool = False
    htpasswd: Path | None = None
    read_only: bool = False
    access_log: str = "json"
    max_uploads: int | None = None
    max_blob_size: int | None = None
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def config(self, storage: Storage | None = None) -> uvicorn.Config:
        """The uvicorn.Config serving this registry (on `storage`, else opened here)."""
        if storage is None:
            storage = open_storage(self.where, s3_redirect=self.s3_redirect)
        auth = BasicAuth(load_htpasswd(self.htpasswd)) if self.htpasswd is not None else None
        app = make_app(storage, auth=auth, read_only=self.read_only,
                       access_log=sys.stderr if self.access_log == "json" else None,
                       max_uploads=self.max_uploads, max_blob_size=self.max_blob_size)
        return uvicorn_config(app, header_timeout=self.header_timeout,
                              tls_cert=self.tls_cert, tls_key=self.tls_key)


def run(root: Path | None = None, address: str = DEFAULT_ADDRESS, *,
        htpasswd: Path | None = None, read_only: bool = False,
        tls_cert: Path | None = None, tls_key: Path | None = None, gc: bool = False,
        announce: Callable[[str], None] | None = None, access_log: str = "json",
        max_uploads: int | None = None, max_blob_size: int | None = None,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT, storage_url: str | None = None,
        s3_redirect: bool = False, gc_every: float | None = None,
        gc_policy: Policy | None = None, workers: int = 1) -> None:
    """Serve the registry stored under `root` on `address` until SIGINT/SIGTERM.

    `announce` receives the start-up line (default: stderr). Raises UsageError for a bad
    address, a busy port, a root that is no registry's, an htpasswd file or TLS files,
    before anything is created or served. `access_log` is "json" (a line per request on
    stderr) or "off"; `max_uploads`, `max_blob_size` and `header_timeout` are the limits of
    `Registry` and of the protocol (seconds for the request head). `storage_url`
    (`s3://BUCKET/PREFIX`) replaces `root`; `gc_every` seconds runs `gc_policy` while serving.
    `workers` > 1 serves from that many processes on the one socket and store (workers.py).
    """
    _structured_logging()
    if access_log not in ACCESS_LOGS:
        raise UsageError(f"--access-log must be one of {', '.join(ACCESS_LOGS)}")
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("TLS needs both --tls-cert and --tls-key")
    host, port = parse_address(address)
    root = Path(root) if root is not None else default_root()
    if storage_url is None:
        check_root(root)
    if tls_cert is not None and tls_key is not None:
        check_tls(tls_cert, tls_key)
    if htpasswd is not None:
        load_htpasswd(htpasswd)  # checked now: a worker would fail with it only later
    spec = ServeSpec(storage_url or str(root), s3_redirect, htpasswd, read_only, access_log,
                     max_uploads, max_blob_size, header_timeout, tls_cert, tls_key)
    sock = listen(host, port)  # the port is checked before anything is created
    try:
        storage = open_storage(spec.where, s3_redirect=s3_redirect)
        if gc:
            collect(storage)
        config = spec.config(storage) if workers == 1 else None
    except BaseException:
        sock.close()
        raise
    warn_if_clear_text(htpasswd is not None, tls_cert is not None, host)
    schedule = Schedule(storage, gc_every, gc_policy or Policy()) if gc_every else None
    url = url_of(sock, tls=tls_cert is not None)
    line = f"freight registry serving {storage.location} on {url}"
    try:
        if config is None:
            from freight.server.workers import serve_workers

            serve_workers(spec, sock, workers, started=lambda: _started(line, announce, schedule))
        else:
            import uvicorn

            _serve(uvicorn.Server(config), sock, lambda: _started(line, announce, schedule))
    finally:
        if schedule is not None:
            schedule.stop()


def _started(line: str, announce: Callable[[str], None] | None,
             schedule: Schedule | None) -> None:
    (announce or _to_stderr)(line)
    if schedule is not None:
        schedule.start()


def _serve(server: uvicorn.Server, sock: socket.socket, started: Callable[[], None]) -> None:
    """Run `server` on `sock` until SIGINT/SIGTERM; `started` is called once signals are
    routed to it (a client may act on the start-up line at once)."""
    with _signals_to(server):
        started()
        server.run(sockets=[sock])


def uvicorn_config(app: Any, *, header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                   tls_cert: Path | None = None, tls_key: Path | None = None) -> uvicorn.Config:
    """The uvicorn.Config serving `app`: guarded h11 protocol, graceful shutdown, loaded."""
    import uvicorn

    from freight.server.protocol import protocol_options

    config = uvicorn.Config(
        app, lifespan="off", log_config=None, access_log=False, server_header=False,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        **protocol_options(header_timeout, MAX_HEADER_BYTES))
    try:
        config.load()
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load TLS certificate or key: {exc}") from None
    return config


@contextmanager
def _signals_to(server: uvicorn.Server) -> Iterator[None]:
    """SIGINT/SIGTERM ask `server` to shut down gracefully, also before it runs.

    uvicorn re-raises the signal it handled once it has shut down, to the handler that was
    there before it started: that is this one, so the process exits 0 instead of dying.
    """
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, server.handle_exit) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
