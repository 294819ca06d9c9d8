"""Reading a download ahead, so that it overlaps the upload (or the write) consuming it.

A blob copied from one registry to another went through one thread: read a block from
the download, hash it, send it, read the next. While it sent, nothing was received, and
while it received, the upload stood still. `ReadAhead` reads the source on a thread of its
own, a few blocks ahead, through one bounded queue.

Every wait has a producer that is sure to answer: the reading thread ends every run with
one last item (the end, or the error it met), and gives up putting only once `close()` has
said nobody will read; the consumer's wait gives up too once closed. `close()` also closes
the source, which ends a network read in progress.
"""

from __future__ import annotations

import queue
import threading
from typing import BinaryIO

BLOCK = 1 << 20  # bytes per read of the source: as the sinks read
DEPTH = 4  # blocks read ahead at most, per blob: a few MiB of memory per transfer
POLL = 0.1  # seconds between looks at the closed flag while waiting on the queue
JOIN_WAIT = 1.0  # seconds close() waits for the reading thread to notice


class ReadAhead:
    """A read-only file object over `source`, read ahead on a daemon thread."""

    def __init__(self, source: BinaryIO, *, block: int = BLOCK, depth: int = DEPTH) -> None:
        self._source, self._block = source, block
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._closed = threading.Event()
        self._rest = b""
        self._ended = False
        self._thread = threading.Thread(target=self._fill, name="freight-read-ahead",
                                        daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        try:
            while not self._closed.is_set():
                block = self._source.read(self._block)
                self._put(block)
                if not block:
                    return
        except BaseException as exc:
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=POLL)
                return
            except queue.Full:
                continue

    def _next(self) -> bytes:
        while True:
            if self._closed.is_set():
                raise ValueError("read from a closed ReadAhead")
            try:
                item = self._queue.get(timeout=POLL)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            if not item:
                self._ended = True
            return item

    def read(self, n: int = -1) -> bytes:
        if self._closed.is_set():
            raise ValueError("read from a closed ReadAhead")
        parts, got = [self._rest], len(self._rest)
        while (n < 0 or got < n) and not self._ended:
            block = self._next()
            parts.append(block)
            got += len(block)
        data = b"".join(parts)
        if 0 <= n < len(data):
            data, self._rest = data[:n], data[n:]
        else:
            self._rest = b""
        return data

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._source.close()
        self._thread.join(JOIN_WAIT)

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
