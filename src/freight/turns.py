"""One-at-a-time sections that run in a fixed order, whatever order threads arrive in.

The engine compresses one layer at a time (each compression already uses every core), the
biggest first, so that its upload overlaps the compression of the others. Threads of a pool
reach the compressor in whatever order the scheduler picks, so a semaphore alone let a small
layer go first in some runs. Here each layer to compress gets a ticket when it is scheduled;
a section runs only once every earlier ticket is released, and a ticket that needs no
section (its layer was cached, or converted for an identical layer) is released without
running one. Layers that are not compressed take no ticket, so they never hold one up.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class Turnstile:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._issued = 0
        self._next = 0  # the ticket whose turn it is
        self._released: set[int] = set()  # released ahead of their turn

    def ticket(self) -> Ticket:
        with self._changed:
            number, self._issued = self._issued, self._issued + 1
        return Ticket(self, number)

    def _wait(self, number: int) -> None:
        with self._changed:
            while self._next != number:
                self._changed.wait()

    def _release(self, number: int) -> None:
        with self._changed:
            self._released.add(number)
            while self._next in self._released:
                self._released.discard(self._next)
                self._next += 1
            self._changed.notify_all()


class Ticket:
    """A place in line: `turn()` waits for it and then holds it; `release()` gives it up.
    Every ticket must be released (`turn` does it), or the tickets after it wait forever."""

    def __init__(self, turnstile: Turnstile, number: int) -> None:
        self._turnstile, self.number = turnstile, number
        self._lock = threading.Lock()
        self._released = False

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        self._turnstile._wait(self.number)
        try:
            yield
        finally:
            self.release()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._turnstile._release(self.number)
