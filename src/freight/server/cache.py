"""A bounded in-process cache for content-addressed values, which never change.

Only what a digest names is cached (manifest bytes, blob sizes): the same digest is the
same bytes on every replica for ever, so no replica can read a stale value. Anything that
can change (tags, revision and layer links) is always read from the store, so a tag written
through one replica is read through all of them at once; the links are read before a cached
value is used, so deleted content is never served from here.
"""

from __future__ import annotations

import threading
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


__all__ = ["Immutable"]
