"""The worker threads that run the registry's blocking calls (storage I/O, bcrypt).

asyncio's own executor has `cores + 4` threads: 6 on this 2-core machine, so at most 6
requests could wait on the object store at once and every other request queued behind
them, however idle the store. Storage calls mostly wait on sockets, not the CPU, so the
pool is sized to the S3 client's connection pool instead.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

STORAGE_THREADS = 64  # = s3_objects.MAX_CONNECTIONS: one thread per connection to the store
SIDE_THREADS = 16  # second requests in flight at once (past it they queue: slower, not stuck)

P = ParamSpec("P")
T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:  # one per process (a uvicorn worker starts its own)
            _pool = ThreadPoolExecutor(STORAGE_THREADS, thread_name_prefix="freight-io")
        return _pool


def start(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """`func(*args, **kwargs)` started in the storage pool; its concurrent Future (await it
    with asyncio.wrap_future). Unlike `offload`, the caller keeps the Future itself: its
    done callbacks run once the call has really ended, even after the awaiting task is
    cancelled (a stream closes its file only then, never under a read in flight)."""
    return _executor().submit(func, *args, **kwargs)


_side: ThreadPoolExecutor | None = None


def beside(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """Start `func(*args, **kwargs)` in a second pool, for a blocking storage call that
    needs two independent store requests: one waits here while the caller makes the other
    (one round trip instead of two). Its own pool: a call already in a worker thread never
    waits for a thread of the pool it holds (no deadlock when all are busy)."""
    global _side
    with _pool_lock:
        if _side is None:
            _side = ThreadPoolExecutor(SIDE_THREADS, thread_name_prefix="freight-side")
    return _side.submit(func, *args, **kwargs)


def _forget_pools_in_a_child() -> None:
    """A forked child inherits the pools but none of their threads: every call would wait
    for ever (a registry started in the child never answers). It starts its own instead."""
    global _pool, _side, _pool_lock
    _pool, _side, _pool_lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_in_a_child)


async def offload(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(*args, **kwargs)` in a worker thread, never blocking the event loop."""
    call = functools.partial(func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


__all__ = ["STORAGE_THREADS", "beside", "offload", "start"]
