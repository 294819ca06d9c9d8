"""Threads for a transfer: a cancellation flag every loop checks, and a small worker pool.

The pool's threads are daemons and `shutdown` waits a bounded time: an interrupted transfer
returns at once even when a thread sits in a network call (it will find the flag set at its
next block and stop), and the interpreter never waits at exit for such a thread, as it does
for a ThreadPoolExecutor.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from typing import Any, TypeVar

from freight.errors import Interrupted

T = TypeVar("T")
_STOP = object()


class Cancelled(Interrupted):
    """Raised inside worker threads once the transfer is cancelled."""

    def __init__(self) -> None:
        super().__init__("interrupted")


class CancelToken:
    """Set once, read everywhere: `check()` raises Cancelled after `cancel()`."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class Workers:
    """`submit(fn) -> Future`, run by `count` daemon threads in submission order."""

    def __init__(self, count: int, name: str = "freight-blob") -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True)
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, fn))
        return future

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            future, fn = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def shutdown(self, timeout: float) -> None:
        """Cancel what has not started; wait up to `timeout` seconds for the rest."""
        pending: list[Future[Any]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                pending.append(item[0])
        for future in pending:
            future.cancel()
        for _ in self._threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def all_of(calls: Sequence[Callable[[], T]], *, at_once: int,
           name: str = "freight-lookup") -> list[T]:
    """Each call's result, in order, with up to `at_once` running together on daemon
    threads: the first error is raised (the rest are dropped), and an interrupt returns at
    once, leaving nothing the interpreter waits for at exit (unlike a ThreadPoolExecutor).
    Each call must end by itself (a request with its timeout), and none may wait for
    another."""
    if len(calls) <= 1:
        return [call() for call in calls]
    workers = Workers(min(at_once, len(calls)), name=name)
    try:
        futures = [workers.submit(call) for call in calls]
        wait(futures, return_when=FIRST_EXCEPTION)  # an error need not wait for the rest
        for future in futures:
            if future.done() and future.exception() is not None:
                future.result()  # raises it
        results = [future.result() for future in futures]
    except BaseException:
        workers.shutdown(timeout=0)
        raise
    workers.shutdown(timeout=1)
    return results
