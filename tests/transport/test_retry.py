"""Backoff and Retry-After arithmetic, and which failures are retried (no sleeping: the
policy's sleep is injected)."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formatdate

import pytest

from freight.errors import FreightError
from freight.transport.client import RegistryClient
from freight.transport.retry import RetryPolicy, retry_after_seconds

from .conftest import StubFactory
from .stubregistry import Answer, Seen, error

ClientFor = Callable[..., RegistryClient]


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


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_passing_failure_is_retried_and_the_push_goes_on(
        stubs: StubFactory, client_for: ClientFor, sleeps: list[float], status: int) -> None:
    """408 (a proxy's request timeout), 429 and 5xx are passing: freight waits and retries."""
    stub = stubs()
    answered: list[int] = []

    def first_ping(seen: Seen) -> Answer | None:
        if seen.path == "/v2/" and not answered:
            answered.append(status)
            return error(status, "TRY_AGAIN")
        return None

    stub.script.append(first_ping)
    client_for(stub).ping()
    assert len(stub.requests("GET", "/v2/")) == 2 and len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 403, 404, 405, 413])
def test_a_lasting_failure_is_not_retried(stubs: StubFactory, client_for: ClientFor,
                                          sleeps: list[float], status: int) -> None:
    stub = stubs()
    stub.script.append(lambda seen: error(status, "NO") if seen.path == "/v2/" else None)
    with pytest.raises(FreightError, match=str(status)):
        client_for(stub).ping()
    assert len(stub.requests("GET", "/v2/")) == 1 and sleeps == []


def test_retry_after_date_against_the_clock() -> None:
    import time

    wait = retry_after_seconds(formatdate(time.time() + 3600, usegmt=True))
    assert wait is not None and 0 < wait <= 3600
