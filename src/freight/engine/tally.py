"""The overall progress of a run, counted in source bytes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from freight.progress import Progress


@dataclass
class Tally:
    """Overall progress in source bytes: each (target, blob) counts its size exactly once."""

    progress: Progress
    sizes: dict[tuple[int, object], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def advance(self, key: tuple[int, object], n: int) -> None:
        with self.lock:
            left = self.sizes.get(key, 0)
            n = min(n, left)
            self.sizes[key] = left - n
        if n:
            self.progress.overall(n)

    def finish(self, key: tuple[int, object]) -> None:
        with self.lock:
            left = self.sizes.pop(key, 0)
        if left:
            self.progress.overall(left)
