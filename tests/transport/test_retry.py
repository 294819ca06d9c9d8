"""Backoff and Retry-After arithmetic (no sleeping: the policy's sleep is injected)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from freight.transport.retry import RetryPolicy, retry_after_seconds


def upper(low: float, high: float) -> float:
    return high


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4, jitter=upper)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


def test_jitter_stays_in_the_upper_half() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=8)
    for failures in range(1, 6):
        ceiling = min(8, 2 ** (failures - 1))
        assert all(ceiling / 2 <= policy.delay(failures) <= ceiling for _ in range(50))


@pytest.mark.parametrize(("header", "expected"), [
    ("7", 7.0), (" 0 ", 0.0), ("", None), (None, None), ("soon", None)])
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now=now) == 30
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now=now) == 0


def test_retry_after_wins_but_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=60, jitter=upper)
    assert policy.delay(1, "12") == 12
    assert policy.delay(1, "3600") == 60
    assert policy.delay(3, "bogus") == policy.delay(3)
