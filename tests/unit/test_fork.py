"""A process that used the embedded registry and then forks: the child's own registry must
answer. The registry's thread pool (freight/server/threads.py) is one per process and is
not reset in a forked child, whose pool then has no threads: each request waits for ever.
tests/conftest.py works around it for the test suite (mutmut forks per mutant); this test
turns the workaround off to show the bug."""

from __future__ import annotations

import os
import select
import signal
import sys
import time

import httpx
import pytest

import conftest
from freight.testing import serve_in_thread

pytestmark = pytest.mark.timeout(20)
CHILD_WAIT = 2.0  # seconds for the child's registry to answer (it takes milliseconds)
BLOB = "/v2/app/blobs/sha256:" + "0" * 64  # a request the registry answers from storage


def _child_gets_an_answer() -> bool:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a registry of its own, one request, then out
        os.close(read)
        code = b"x"
        try:
            with serve_in_thread() as registry:
                reply = httpx.head(f"{registry.url}{BLOB}", timeout=CHILD_WAIT)
                code = b"y" if reply.status_code == 404 else b"n"
        except BaseException:
            code = b"n"
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


@pytest.mark.xfail(strict=True, reason="freight.server.threads keeps its pool across fork")
def test_a_forked_child_s_registry_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "RESET_POOL_AFTER_FORK", False)
    with serve_in_thread() as registry:  # the parent's pool now has threads
        assert httpx.head(f"{registry.url}{BLOB}", timeout=10).status_code == 404
        _until_the_pool_is_idle()
        assert _child_gets_an_answer()


def _until_the_pool_is_idle() -> None:
    """A worker marks itself idle just after answering: fork only once it has (else the
    child's pool starts a thread, and the bug hides)."""
    pool = sys.modules["freight.server.threads"]._pool  # type: ignore[attr-defined]
    deadline = time.monotonic() + CHILD_WAIT
    while pool._idle_semaphore._value < 1 and time.monotonic() < deadline:
        time.sleep(0.01)


def test_with_the_workaround_a_forked_child_s_registry_answers() -> None:
    with serve_in_thread() as registry:
        assert httpx.head(f"{registry.url}{BLOB}", timeout=10).status_code == 404
        assert _child_gets_an_answer()
