"""Recording stand-ins for the engine's fast tests: progress rows, and a source that
delivers bytes in pieces (failing or stalling where asked)."""

from __future__ import annotations

import io
import threading
from typing import Any

from freight.progress import Phase, Silent
from freight.results import Action

STALL_LIMIT = 10.0  # seconds a stalled read waits for close(): long, never for ever


class Rows(Silent):
    """Records progress rows: (event, key, ...), and the bytes advanced per key."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.advanced: dict[str, int] = {}

    def blob_start(self, key: str, label: str, total: int, phase: Phase) -> None:
        self.events.append(("start", key, label, total, phase))

    def blob_advance(self, key: str, n: int) -> None:
        self.advanced[key] = self.advanced.get(key, 0) + n

    def blob_done(self, key: str, action: Action | None) -> None:
        self.events.append(("done", key, action))


class Pieces(io.RawIOBase):
    """Bytes in pieces of at most `piece`, failing after `fail_at` bytes if given; a read
    blocks until close() (or STALL_LIMIT seconds) when `stall`: a network read that never
    answers. `reads` counts the calls."""

    def __init__(self, data: bytes, piece: int = 1000, fail_at: int | None = None,
                 stall: bool = False) -> None:
        self.data, self.piece, self.fail_at, self.stall = data, piece, fail_at, stall
        self.offset, self.reads = 0, 0
        self.closed_event = threading.Event()

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        self.reads += 1
        if self.stall:
            self.closed_event.wait(STALL_LIMIT)
            raise OSError("closed while reading")
        end = len(self.data)
        if self.fail_at is not None and self.fail_at < end:
            if self.offset >= self.fail_at:
                raise OSError("connection reset")
            end = self.fail_at  # the bytes before the failure arrive, then it fails
        take = min(self.piece, n if n >= 0 else self.piece, end - self.offset)
        chunk = self.data[self.offset:self.offset + take]
        self.offset += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed_event.set()
        super().close()
