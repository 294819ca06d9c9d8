"""workers.all_of: calls run together on daemon threads, results in order, the first error
raised without waiting for calls still running."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.engine.workers import all_of

pytestmark = pytest.mark.timeout(30)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.integers(), max_size=12), at_once=st.integers(1, 6))
def test_results_come_back_in_order(values: list[int], at_once: int) -> None:
    assert all_of([lambda v=v: v * 2 for v in values], at_once=at_once) == [v * 2 for v in values]


def test_calls_run_together_on_daemon_threads() -> None:
    barrier = threading.Barrier(3, timeout=10)  # passes only if three calls run at once

    def meet() -> bool:
        barrier.wait()
        return threading.current_thread().daemon

    assert all_of([meet, meet, meet], at_once=3) == [True, True, True]


def test_an_error_is_raised_without_waiting_for_a_call_still_running() -> None:
    release = threading.Event()

    def slow() -> int:
        release.wait(20)
        return 1

    def broken() -> int:
        raise ValueError("no")

    try:
        with pytest.raises(ValueError, match="no"):
            all_of([slow, broken], at_once=2)
        assert not release.is_set()  # returned while `slow` was still running
    finally:
        release.set()
