"""The engine's worker pool and cancellation flag (src/freight/engine/workers.py).

Every wait here has its own short deadline: a pool that loses a task or a thread fails in
seconds with the waiting test's name, instead of hanging until the suite's timeout (which
is what mutation testing of this module used to cost)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from freight.engine.workers import Cancelled, CancelToken, Workers
from freight.errors import EXIT_INTERRUPTED, Interrupted
from support.procs import assert_script_exits

WAIT = 5  # seconds: far more than any of these waits needs, far less than the suite timeout
pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def pool() -> Iterator[Workers]:
    workers = Workers(2, name="test-pool")
    yield workers
    workers.shutdown(WAIT)


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"{name}-")]


def test_a_cancel_token_raises_only_once_cancelled() -> None:
    token = CancelToken()
    assert not token.cancelled
    token.check()  # nothing yet
    token.cancel()
    assert token.cancelled
    with pytest.raises(Cancelled) as caught:
        token.check()
    assert isinstance(caught.value, Interrupted)
    assert caught.value.exit_code == EXIT_INTERRUPTED
    assert str(caught.value) == "interrupted"
    token.cancel()  # twice is fine
    assert token.cancelled


def test_a_task_result_and_its_error_reach_the_future(pool: Workers) -> None:
    assert pool.submit(lambda: 41 + 1).result(timeout=WAIT) == 42

    def fail() -> None:
        raise ValueError("bad layer")

    with pytest.raises(ValueError, match="bad layer"):
        pool.submit(fail).result(timeout=WAIT)
    assert pool.submit(lambda: "still working").result(timeout=WAIT) == "still working"


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), Cancelled()])
def test_an_interrupt_inside_a_task_reaches_the_waiter(pool: Workers, exc: BaseException) -> None:
    """Ctrl-C or a cancel raised in a worker must not kill the thread and leave the future
    unset: whoever waits on it would wait forever."""

    def interrupted() -> None:
        raise exc

    future = pool.submit(interrupted)
    assert future.exception(timeout=WAIT) is exc
    assert pool.submit(lambda: 1).result(timeout=WAIT) == 1


def test_one_worker_runs_tasks_in_submission_order() -> None:
    pool = Workers(1, name="ordered")
    ran: list[int] = []
    futures = [pool.submit(lambda i=i: ran.append(i)) for i in range(20)]
    for future in futures:
        future.result(timeout=WAIT)
    assert ran == list(range(20))
    pool.shutdown(WAIT)


def test_count_workers_run_at_once() -> None:
    """Three tasks that each wait for the other two finish only with three threads."""
    pool = Workers(3, name="three")
    assert len(_threads("three")) == 3
    barrier = threading.Barrier(3, timeout=WAIT)
    futures = [pool.submit(barrier.wait) for _ in range(3)]
    assert sorted(f.result(timeout=WAIT) for f in futures) == [0, 1, 2]
    pool.shutdown(WAIT)


def test_workers_are_daemons_named_after_the_pool() -> None:
    pool = Workers(2, name="named")
    threads = _threads("named")
    assert sorted(t.name for t in threads) == ["named-0", "named-1"]
    assert all(t.daemon for t in threads)
    pool.shutdown(WAIT)
    assert not any(t.is_alive() for t in threads)


def test_a_stuck_worker_does_not_keep_the_interpreter_alive() -> None:
    """An interrupted transfer exits even while a worker sits in a call that never returns."""
    script = """
        import threading
        from freight.engine.workers import Workers
        pool = Workers(1)
        started = threading.Event()
        pool.submit(lambda: (started.set(), threading.Event().wait()))
        started.wait(5)
        pool.shutdown(0.05)
        print("returned")
    """
    assert_script_exits(script)


def test_a_future_cancelled_before_it_starts_is_skipped() -> None:
    pool = Workers(1, name="skip")
    gate = threading.Event()
    ran: list[str] = []
    first = pool.submit(lambda: gate.wait(WAIT))
    skipped = pool.submit(lambda: ran.append("skipped"))
    assert skipped.cancel()
    after = pool.submit(lambda: ran.append("after"))
    gate.set()
    assert first.result(timeout=WAIT) is True
    after.result(timeout=WAIT)
    assert ran == ["after"]  # the cancelled task never ran, and the worker lived on
    pool.shutdown(WAIT)


def test_shutdown_cancels_what_has_not_started_and_waits_for_the_rest() -> None:
    pool = Workers(1, name="drain")
    started, gate = threading.Event(), threading.Event()
    ran: list[str] = []

    def running() -> str:
        started.set()
        gate.wait(WAIT)
        time.sleep(0.2)  # still running when shutdown begins to wait
        ran.append("running")
        return "done"

    first = pool.submit(running)
    queued = [pool.submit(lambda: ran.append("queued")) for _ in range(3)]
    assert started.wait(WAIT)
    gate.set()
    pool.shutdown(WAIT)
    assert all(f.cancelled() for f in queued)
    assert first.result(timeout=0) == "done"  # shutdown waited for it
    assert ran == ["running"]
    assert not any(t.is_alive() for t in _threads("drain"))


def test_shutdown_gives_up_on_a_stuck_worker() -> None:
    """The wait is bounded: a worker stuck in a network call does not hold up the exit."""
    pool = Workers(2, name="stuck")
    started, gate = threading.Event(), threading.Event()
    stuck = pool.submit(lambda: (started.set(), gate.wait(WAIT * 4))[1])
    assert started.wait(WAIT)
    pool.shutdown(0.05)
    assert not stuck.done()
    assert any(t.is_alive() for t in _threads("stuck"))
    gate.set()
    assert stuck.result(timeout=WAIT) is True


def test_shutdown_ends_every_worker_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker gets its own stop: none dies of an error on the way out."""
    crashed: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", crashed.append)
    pool = Workers(3, name="clean")
    assert pool.submit(lambda: 1).result(timeout=WAIT) == 1
    threads = _threads("clean")
    pool.shutdown(WAIT)
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads)
    assert crashed == []
