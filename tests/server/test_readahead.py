"""ReadAhead over generated files: the bytes asked for, in order, in chunks no larger than
asked; the next read in flight whenever a chunk is handed back; a file that ends early
gives b"" (never padding); and the file closed once, never under a read, however early the
reader stops or is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from freight.server.readahead import ReadAhead
from support.procs import wait_until
from support.slowfile import SlowFile


def _until(condition: Callable[[], bool], what: str) -> None:
    # work started in the storage pool shows up in its thread: poll it often
    wait_until(condition, what=what, timeout=10, interval=0.001)


def _wait_closed(file: SlowFile) -> None:
    _until(lambda: file.closed, "the close")  # behind a read in flight: in its thread


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 5000), offset=st.integers(0, 5000), length=st.integers(0, 6000),
       chunk=st.integers(1, 2000), delay=st.sampled_from([0.0, 0.002]))
def test_the_bytes_asked_for_in_order_with_the_next_read_in_flight(
        size: int, offset: int, length: int, chunk: int, delay: float) -> None:
    data = bytes(i % 251 for i in range(size))
    file = SlowFile(data, delay)
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
                    _until(lambda: file.count("read") == len(pieces) + 1,  # asked before read()
                           "the next read")
        finally:
            body.close()

    pieces = asyncio.run(main())
    assert b"".join(pieces) == want  # short where the file ends early, never padded
    assert all(0 < len(p) <= chunk for p in pieces)
    _wait_closed(file)
    assert file.count("close") == 1 and not file.read_while_closed
    assert file.count("read") == file.count("read done")


@settings(max_examples=40, deadline=None)
@given(reads=st.integers(0, 4), cancel=st.booleans())
def test_a_reader_that_stops_or_is_cancelled_never_closes_the_file_under_a_read(
        reads: int, cancel: bool) -> None:
    file = SlowFile(b"x" * 10_000, delay=0.02)

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
    assert file.count("close") == 1 and not file.read_while_closed
