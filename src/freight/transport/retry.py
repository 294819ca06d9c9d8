"""When and how long to wait before trying a request again.

Connection failures, 408, 429 and 5xx are worth another try (api.md §Errors: 502/503/504 are
retryable; ggcr and oras also retry 500). The wait grows exponentially with full jitter, so
parallel uploads hit by one outage do not come back in lock step, and a server's
`Retry-After` (seconds or an HTTP date) is honoured up to a cap, so a registry that asks for
an hour does not hang a CI job for an hour.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_ATTEMPTS = 6  # first try + 5 retries, like regclient and oras; ~30 s of patience
BASE_DELAY = 0.5  # seconds before the first retry; doubled after each failure
MAX_DELAY = 20.0  # seconds; the longest pause between two tries of one request
MAX_RETRY_AFTER = 60.0  # seconds; a longer Retry-After is cut to this
# Failures in all over one operation (one request, one blob's upload), however much progress
# came between them. Progress resets the count "in a row", never this one: a proxy that
# corrupts every upload's last byte, or a registry that refuses every close, must end in an
# error, not in session after session forever (the engine issue saw 364 in 20 s).
MAX_TOTAL_FAILURES = 24


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """The wait a `Retry-After` header asks for: delta-seconds or an HTTP date; None if absent."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries one request (or one chunk) gets, and the waits between them."""

    attempts: int = DEFAULT_ATTEMPTS
    base_delay: float = BASE_DELAY
    max_delay: float = MAX_DELAY
    max_retry_after: float = MAX_RETRY_AFTER
    max_total_failures: int = MAX_TOTAL_FAILURES
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    jitter: Callable[[float, float], float] = field(default=random.uniform, compare=False)

    def delay(self, failures: int, retry_after: str | None = None) -> float:
        """Seconds to wait after the `failures`-th failure (1-based)."""
        asked = retry_after_seconds(retry_after)
        if asked is not None:
            return min(asked, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (failures - 1))
        return self.jitter(ceiling / 2, ceiling)

    def wait(self, failures: int, retry_after: str | None = None) -> None:
        self.sleep(self.delay(failures, retry_after))

    def budget(self) -> RetryBudget:
        """A fresh budget for one operation: every retry loop spends from one."""
        return RetryBudget(self)


class RetryBudget:
    """The failures one operation may still have: `attempts` in a row, and
    `max_total_failures` in all. `progress()` (a chunk accepted, a request that got an
    answer) resets the count in a row but never the total, so no success elsewhere can
    keep a loop going forever. Not shared between threads: one per operation."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.in_a_row = 0
        self.total = 0

    @property
    def exhausted(self) -> bool:
        return self.in_a_row >= self.policy.attempts or \
            self.total >= self.policy.max_total_failures

    def failed(self, retry_after: str | None = None) -> bool:
        """Count a failure; wait and return True if another try is allowed, else False."""
        self.in_a_row += 1
        self.total += 1
        if self.exhausted:
            return False
        self.policy.wait(self.in_a_row, retry_after)
        return True

    def progress(self) -> None:
        """Something got through: the next failure starts a new run (the total stays)."""
        self.in_a_row = 0


NO_RETRY = RetryPolicy(attempts=1)
