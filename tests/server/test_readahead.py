"""ReadAhead over generated files: the bytes asked for, in order, in chunks no larger than
asked; the next read in flight whenever a chunk is handed back; a file that ends early
gives b"" (never padding); and the file closed once, never under a read, however early the
reader stops or is cancelled."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from freight.server.readahead import ReadAhead


class Recorded(io.RawIOBase):
    """A file whose reads (each `delay` long) are recorded against its close."""

    def __init__(self, data: bytes, delay: float) -> None:
        self.data, self.delay, self.position = data, delay, 0
        self.started = self.finished = 0
        self.closes = 0
        self.read_while_closed = False
        self.lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = offset
        return offset

    def read(self, size: int | None = -1) -> bytes:
        with self.lock:
            self.started += 1
        time.sleep(self.delay)
        if self.closed:
            self.read_while_closed = True
        n = len(self.data) - self.position if size is None or size < 0 else size
        chunk = self.data[self.position:self.position + n]
        self.position += len(chunk)
        with self.lock:
            self.finished += 1
        return chunk

    def close(self) -> None:
        if not self.closed:
            self.closes += 1
        super().close()


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)  # work started in the storage pool shows up in its thread
    assert condition()


def _wait_closed(file: Recorded) -> None:
    _until(lambda: file.closed)  # a close behind a read in flight runs in that read's thread


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 5000), offset=st.integers(0, 5000), length=st.integers(0, 6000),
       chunk=st.integers(1, 2000), delay=st.sampled_from([0.0, 0.002]))
def test_the_bytes_asked_for_in_order_with_the_next_read_in_flight(
        size: int, offset: int, length: int, chunk: int, delay: float) -> None:
    data = bytes(i % 251 for i in range(size))
    file = Recorded(data, delay)
    want = data[offset:offset + length]

    async def main() -> list[bytes]:
        body = ReadAhead(file, offset, length, chunk)
        pieces: list[bytes] = []
        try:
            while True:
                piece = await body.read()
                if not piece:
                    return pieces
                pieces.append(piece)
                if sum(map(len, pieces)) < length:
                    _until(lambda: file.started == len(pieces) + 1)  # asked before read()
        finally:
            body.close()

    pieces = asyncio.run(main())
    assert b"".join(pieces) == want  # short where the file ends early, never padded
    assert all(0 < len(p) <= chunk for p in pieces)
    _wait_closed(file)
    assert file.closes == 1 and not file.read_while_closed
    assert file.started == file.finished


@settings(max_examples=40, deadline=None)
@given(reads=st.integers(0, 4), cancel=st.booleans())
def test_a_reader_that_stops_or_is_cancelled_never_closes_the_file_under_a_read(
        reads: int, cancel: bool) -> None:
    file = Recorded(b"x" * 10_000, delay=0.02)

    async def main() -> None:
        body = ReadAhead(file, 0, 10_000, 1000)
        try:
            for _ in range(reads):
                await body.read()
            if cancel:
                task = asyncio.ensure_future(body.read())
                await asyncio.sleep(0.005)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            body.close()

    asyncio.run(main())
    _wait_closed(file)
    assert file.closes == 1 and not file.read_while_closed
