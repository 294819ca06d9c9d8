"""`freight serve --workers N`: N processes serving one listening socket and one store.

Each worker is a whole registry built from the same `ServeSpec`, with its own storage
client, thread pool and caches; upload sessions, tags and manifests live in the store, so
N workers are one registry exactly as N replicas behind a load balancer are (s3.py,
uploads.py). The kernel spreads connections over the workers accepting on the socket.

Workers are started with `spawn` (a fresh interpreter: no threads, locks or open
connections of the parent carried over) and receive the socket itself. The parent only
supervises: SIGINT/SIGTERM make it ask every worker to shut down gracefully (SIGTERM: a
worker finishes its running requests, up to runner.GRACEFUL_SHUTDOWN seconds); a worker
that dies while serving is replaced; a worker that cannot start stops them all.
Limits (--max-uploads), metrics and the caches are per worker, as they are per replica.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from types import FrameType

from freight.errors import FreightError
from freight.server.runner import GRACEFUL_SHUTDOWN, ServeSpec

STARTUP_FAILURE = 3  # a worker's exit code when it could not build its registry
WATCH_INTERVAL = 0.5  # seconds between checks that every worker is alive
STOP_MARGIN = 10.0  # seconds past the graceful shutdown before a worker is killed

log = logging.getLogger("freight.server")


class WorkerFailed(FreightError):
    """A worker process could not start serving."""


def serve_workers(spec: ServeSpec, sock: socket.socket, count: int, *,
                  started: Callable[[], None]) -> None:
    """Serve `spec` from `count` worker processes on `sock` until SIGINT/SIGTERM; then
    stop them gracefully and return. `started` is called once they are launched."""
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    with _stop_on_signals(stop):
        workers = [_start(context, spec, sock) for _ in range(count)]
        try:
            started()
            _watch(workers, stop, lambda: _start(context, spec, sock))
        finally:
            _stop_all(workers)


def _start(context: multiprocessing.context.SpawnContext, spec: ServeSpec,
           sock: socket.socket) -> BaseProcess:
    process = context.Process(target=_worker, args=(spec, sock), name="freight-worker")
    process.start()
    return process


def _watch(workers: list[BaseProcess], stop: threading.Event,
           replace: Callable[[], BaseProcess]) -> None:
    while not stop.wait(WATCH_INTERVAL):
        for n, process in enumerate(workers):
            if process.is_alive():
                continue
            if process.exitcode == STARTUP_FAILURE:
                raise WorkerFailed("a worker process could not start serving (its error is "
                                   "logged above)")
            log.warning("worker %s ended (exit code %s); starting another", process.pid,
                        process.exitcode)
            workers[n] = replace()


def _stop_all(workers: list[BaseProcess]) -> None:
    for process in workers:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn's graceful shutdown
    for process in workers:
        process.join(GRACEFUL_SHUTDOWN + STOP_MARGIN)
        if process.is_alive():
            process.kill()
            process.join()


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, handle) for sig in handled}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker(spec: ServeSpec, sock: socket.socket) -> None:
    """A worker process: build the registry from `spec` and serve `sock` until SIGTERM."""
    import sys

    import uvicorn

    from freight.server.runner import _serve, _structured_logging

    _structured_logging()
    # Ctrl-C reaches every process of the terminal's group; until its server takes over
    # signals (graceful shutdown), a worker ignores it: the parent sends SIGTERM anyway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server = uvicorn.Server(spec.config())
    except (FreightError, OSError) as exc:
        log.error("worker could not start: %s", exc)
        sys.exit(STARTUP_FAILURE)
    _serve(server, sock, lambda: None)
