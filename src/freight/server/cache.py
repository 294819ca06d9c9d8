"""Bounded in-process caches: `Immutable` for content-addressed values, `Recent` for one
kind of link, briefly.

`Immutable`: only what a digest names (manifest bytes, blob sizes): the same digest is the
same bytes on every replica for ever, so no replica can read a stale value. Anything that
can change (tags, revision and layer links) is read from the store, so a tag written
through one replica is read through all of them at once; the links are read before a cached
value is used, so deleted content is never served from here.

`Recent`: the one exception, a manifest's revision link (its Content-Type) when a tag read
from the store just now names it (manifests.py). Deleting a manifest deletes its revision,
then the tags naming it, so a tag still there means its revision is too; the cache only
saves the second store read of a GET by tag. What it could hold stale (a delete cut between
those two steps, a digest pushed again with another Content-Type) lasts `seconds` at most.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Immutable(Generic[K, V]):
    """A thread-safe LRU holding at most `budget` units (`weigh(value)` each, default 1)."""

    def __init__(self, budget: int, weigh: Callable[[V], int] = lambda _: 1) -> None:
        self.budget, self.weigh = budget, weigh
        self._items: OrderedDict[K, V] = OrderedDict()
        self._used = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Keep `value` (never one heavier than the whole budget), dropping the oldest."""
        weight = self.weigh(value)
        if weight > self.budget:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._used -= self.weigh(old)
            self._items[key] = value
            self._used += weight
            while self._used > self.budget:
                _, dropped = self._items.popitem(last=False)
                self._used -= self.weigh(dropped)

    def __len__(self) -> int:
        return len(self._items)


class Recent(Generic[K, V]):
    """A thread-safe LRU of at most `count` values, each forgotten `seconds` after it was put
    (by `clock`, time.monotonic unless given)."""

    def __init__(self, count: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.count, self.seconds, self.clock = count, seconds, clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if self.clock() >= item[0]:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: K, value: V) -> None:
        until = self.clock() + self.seconds
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = (until, value)
            while len(self._items) > self.count:
                self._items.popitem(last=False)

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["Immutable", "Recent"]
