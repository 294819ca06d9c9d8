"""An in-process registry for tests: the embedded freight registry on 127.0.0.1, in a thread.

    >>> from freight.testing import serve_in_thread
    >>> with serve_in_thread() as registry:
    ...     freight.push(archive, f"{registry.host}/team/app:1")
    ...     registry.requests()  # every request it answered, one dict each

Real HTTP over loopback (a free port), the same code as `freight serve`: no mocks. It needs
no process of its own, so a test can read its storage and request log directly.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freight.server.auth import BasicAuth

LOOPBACK = "127.0.0.1"  # never reachable from another machine
STOP_WAIT = 30.0  # seconds for running requests to finish when the registry stops


@dataclass(frozen=True)
class Registry:
    """A running registry: `host` (`127.0.0.1:PORT`, for references), `url` and storage `root`."""

    host: str
    url: str
    root: Path
    _stop: Callable[[], None] = field(repr=False, compare=False)
    _log: io.StringIO = field(repr=False, compare=False)

    def stop(self) -> None:
        """Stop serving (idempotent); running requests get `STOP_WAIT` seconds to finish."""
        self._stop()

    def reference(self, repository: str, tag: str = "latest") -> str:
        """`HOST/repository:tag` on this registry."""
        return f"{self.host}/{repository}:{tag}"

    def requests(self) -> list[dict[str, Any]]:
        """Every request answered so far, oldest first: `method`, `path`, `status`,
        `bytes_in`, `bytes_out` (the server's access log entries)."""
        return [json.loads(line) for line in self._log.getvalue().splitlines() if line]


@contextmanager
def serve_in_thread(root: str | Path | None = None, *, auth: BasicAuth | None = None,
                    read_only: bool = False) -> Iterator[Registry]:
    """Serve a registry over `root` (default: a temporary directory, deleted afterwards)
    on a free loopback port, in a daemon thread, until the block ends."""
    temporary = root is None
    store = Path(tempfile.mkdtemp(prefix="freight-registry-")) if root is None else Path(root)
    try:
        registry = _start(store, auth=auth, read_only=read_only)
        try:
            yield registry
        finally:
            registry.stop()
    finally:
        if temporary:
            shutil.rmtree(store, ignore_errors=True)


def _start(root: Path, *, auth: BasicAuth | None, read_only: bool) -> Registry:
    import uvicorn  # only when a registry starts: it is not light

    from freight.server import FilesystemStorage, make_app
    from freight.server.runner import listen, uvicorn_config

    log = io.StringIO()
    app = make_app(FilesystemStorage(root), auth=auth, read_only=read_only, access_log=log)
    sock = listen(LOOPBACK, 0)  # listening before the thread starts: no wait for readiness
    # as `freight serve` runs: its guarded protocol (header limits, quiet refusal of a TLS
    # probe, sendfile bodies), stopping sooner
    config = uvicorn_config(app)
    config.timeout_graceful_shutdown = int(STOP_WAIT)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"freight-registry-{sock.getsockname()[1]}")
    thread.start()
    host = f"{LOOPBACK}:{sock.getsockname()[1]}"
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        server.should_exit = True
        thread.join(timeout=STOP_WAIT)
        sock.close()

    return Registry(host, f"http://{host}", root, stop, log)
