"""A process that used the embedded registry and then forks (multiprocessing, mutmut's
one child per mutant): the child's own registry must answer. The registry's thread pool
(freight/server/threads.py) is one per process; a forked child inherits it without its
threads, so each request touching storage would wait for ever, unless the pool is
forgotten at fork (it is)."""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable

import httpx
import pytest

from freight.server import threads
from freight.testing import serve_in_thread

pytestmark = pytest.mark.timeout(20)
CHILD_WAIT = 2.0  # seconds for the child to get its answer (it takes milliseconds)
BLOB = "/v2/app/blobs/sha256:" + "0" * 64  # a request the registry answers from storage


def _in_a_child(work: Callable[[], bool]) -> bool:
    """Fork; True if `work()` returned True in the child within the wait."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = b"n"
        try:
            code = b"y" if work() else b"n"
        except BaseException:
            pass
        finally:
            os.write(write, code)
            os._exit(0)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], CHILD_WAIT * 2)
        answer = os.read(read, 1) if ready else b""
    finally:
        os.close(read)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return answer == b"y"


def _pool_used_and_idle() -> None:
    """Run a call on the pool, then wait until its worker marked itself idle: forked
    before that, the child's pool would start a thread and the bug would hide."""
    assert threads._executor().submit(lambda: 1).result(timeout=CHILD_WAIT) == 1
    pool = threads._pool
    assert pool is not None
    deadline = time.monotonic() + CHILD_WAIT
    while pool._idle_semaphore._value < 1 and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)


def test_a_forked_child_can_still_use_the_registry_pool() -> None:
    _pool_used_and_idle()
    assert _in_a_child(lambda: threads._executor().submit(lambda: 2).result(
        timeout=CHILD_WAIT) == 2)


def test_a_forked_child_s_registry_answers() -> None:
    _pool_used_and_idle()

    def registry_answers() -> bool:
        with serve_in_thread() as registry:
            return httpx.head(f"{registry.url}{BLOB}", timeout=CHILD_WAIT).status_code == 404

    assert _in_a_child(registry_answers)
