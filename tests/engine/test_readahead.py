"""ReadAhead, property-tested: whatever the sizes, the reads, the depth, a failure of the
source anywhere or a close at any moment, the reader gets exactly the source's bytes (or
its error), and nothing waits for ever (a hang fails with every thread's stack)."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.engine.readahead import ReadAhead
from freight.errors import NetworkError
from freight.sources.registry import BlobStream
from support.recorders import Pieces as Source

from .test_engine_properties import run_with_deadline


def _drain(reader: ReadAhead, size: int) -> bytes:
    parts = []
    while block := reader.read(size):
        parts.append(block)
    return b"".join(parts)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.binary(max_size=20_000), piece=st.integers(1, 5000),
       block=st.integers(1, 4096), depth=st.integers(1, 4), read=st.integers(-1, 3000))
def test_every_byte_arrives_in_order(data: bytes, piece: int, block: int, depth: int,
                                     read: int) -> None:
    def run() -> bytes:
        with ReadAhead(Source(data, piece), block=block, depth=depth) as reader:  # type: ignore[arg-type]
            return reader.read() if read <= 0 else _drain(reader, read)
    assert run_with_deadline(run) == data


@settings(max_examples=100, deadline=None, derandomize=True)
@given(data=st.binary(min_size=1, max_size=10_000), fail=st.integers(0, 10_000),
       block=st.integers(1, 2048), depth=st.integers(1, 3))
def test_a_failing_source_fails_the_reader(data: bytes, fail: int, block: int,
                                           depth: int) -> None:
    def run() -> bytes:
        with ReadAhead(Source(data, 700, fail_at=fail), block=block,  # type: ignore[arg-type]
                       depth=depth) as reader:
            return _drain(reader, 1000)
    if fail >= len(data):
        assert run_with_deadline(run) == data
    else:
        with pytest.raises(OSError, match="connection reset"):
            run_with_deadline(run)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(data=st.binary(max_size=50_000), reads=st.integers(0, 5), depth=st.integers(1, 3))
def test_closing_at_any_moment_ends_the_reading_thread(data: bytes, reads: int,
                                                       depth: int) -> None:
    """Closed early, with the queue full or the source mid-read: the thread ends, and a
    read after close is an error, never a wait."""
    def run() -> None:
        reader = ReadAhead(Source(data, 1000), block=500, depth=depth)  # type: ignore[arg-type]
        for _ in range(reads):
            reader.read(700)
        reader.close()
        reader._thread.join(5)
        assert not reader._thread.is_alive()
        with pytest.raises(ValueError):
            reader.read(1)
    run_with_deadline(run)


def test_close_ends_a_read_that_never_answers() -> None:
    source = Source(b"", 1, stall=True)
    reader = ReadAhead(source)  # type: ignore[arg-type]
    run_with_deadline(reader.close)
    reader._thread.join(5)
    assert not reader._thread.is_alive()


class _CutResponse:
    """A download whose connection breaks after one chunk."""

    def __init__(self) -> None:
        self.closed = False

    def iter_raw(self):  # type: ignore[no-untyped-def]
        yield b"first"
        raise httpx.ReadError("connection closed")

    def close(self) -> None:
        self.closed = True


def test_a_closed_download_is_not_resumed() -> None:
    """ReadAhead.close() closes the download to end a read in progress; the read's error
    must end the stream there, not open a new ranged GET nobody will read (or close)."""
    reopened: list[int] = []

    def reopen(offset: int) -> _CutResponse:
        reopened.append(offset)
        return _CutResponse()

    stream = BlobStream(_CutResponse(), "registry.test", reopen)  # type: ignore[arg-type]
    assert stream.read(5) == b"first"
    stream.close()
    with pytest.raises(NetworkError):
        stream.read(5)
    assert reopened == []
    open_again = BlobStream(_CutResponse(), "registry.test", reopen)  # type: ignore[arg-type]
    assert open_again.read(5) == b"first"
    assert open_again.read(5) == b"first"  # not closed: resumed from byte 5 (the fake restarts)
    assert reopened == [5]
