"""ReadAhead (engine/readahead.py), a few fixed cases fast enough for mutation runs (the
property tests are in tests/engine/test_readahead.py): bytes in order, errors passed on,
memory bounded by the depth, and a close that ends everything, a stalled read included."""

from __future__ import annotations

import io
import threading
import time

import pytest

from freight.engine.readahead import ReadAhead
from support.recorders import Pieces as Source

pytestmark = pytest.mark.timeout(20)
WAIT = 5  # seconds


DATA = bytes(range(256)) * 100  # 25600 bytes


@pytest.mark.parametrize("size", [1, 7, 1000, 4096, 30_000])
def test_reads_of_any_size_get_every_byte_in_order(size: int) -> None:
    with ReadAhead(Source(DATA), block=1024, depth=2) as reader:  # type: ignore[arg-type]
        parts = []
        while block := reader.read(size):
            assert len(block) <= size
            parts.append(block)
        assert b"".join(parts) == DATA
        assert reader.read(10) == b"" and reader.read() == b""


def test_read_all_at_once() -> None:
    with ReadAhead(Source(DATA, piece=333), block=500) as reader:  # type: ignore[arg-type]
        assert reader.read() == DATA
        assert reader.read() == b""


def test_read_zero_is_empty_and_consumes_nothing() -> None:
    with ReadAhead(Source(DATA), block=1024) as reader:  # type: ignore[arg-type]
        assert reader.read(0) == b""
        assert reader.read(5) == DATA[:5]
        assert reader.read(0) == b""  # with bytes of the block left over, too
        assert reader.read(5) == DATA[5:10]


def test_an_empty_source_ends_at_once() -> None:
    with ReadAhead(Source(b"")) as reader:  # type: ignore[arg-type]
        assert reader.read(100) == b""


def test_a_failing_source_gives_its_bytes_then_its_error() -> None:
    with ReadAhead(Source(DATA, fail_at=3000), block=1000) as reader:  # type: ignore[arg-type]
        assert reader.read(3000) == DATA[:3000]
        with pytest.raises(OSError, match="connection reset"):
            reader.read(1)
        got: list[bytes] = []
        after = threading.Thread(target=lambda: got.append(reader.read(1)), daemon=True)
        after.start()
        after.join(WAIT)
        assert got == [b""]  # the end was reached: a read after the error never waits


def test_reading_ahead_is_bounded_by_the_depth() -> None:
    source = Source(DATA)
    reader = ReadAhead(source, block=1000, depth=2)  # type: ignore[arg-type]
    deadline = time.monotonic() + WAIT
    while source.offset < 3000 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # had it read on, it would have by now
    assert source.offset == 3000  # two blocks queued, a third waiting to be put
    assert reader.read(1000) == DATA[:1000]
    reader.close()


def test_close_closes_the_source_ends_the_thread_and_refuses_reads() -> None:
    source = Source(DATA)
    reader = ReadAhead(source, block=1000, depth=1)  # type: ignore[arg-type]
    assert reader.read(10) == DATA[:10]
    reader.close()
    assert source.closed
    reader.close()  # twice is fine
    for size in (1, -1):
        with pytest.raises(ValueError) as caught:
            reader.read(size)
        assert str(caught.value) == "read from a closed ReadAhead"
    threads = [t for t in threading.enumerate() if t.name == "freight-read-ahead"]
    for thread in threads:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads)


def test_close_ends_a_read_that_never_answers() -> None:
    source = Source(b"", stall=True)
    reader = ReadAhead(source)  # type: ignore[arg-type]
    stuck = [t for t in threading.enumerate() if t.name == "freight-read-ahead"]
    assert stuck and all(t.daemon for t in stuck)  # a stuck read never holds the exit
    reader.close()
    assert source.closed


def test_a_read_waiting_on_a_stalled_source_ends_when_another_thread_closes() -> None:
    source = Source(b"", stall=True)
    reader = ReadAhead(source)  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            reader.read(10)
        except BaseException as exc:
            errors.append(exc)

    consumer = threading.Thread(target=consume)
    consumer.start()
    consumer.join(0.2)
    reader.close()
    consumer.join(WAIT)
    assert not consumer.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ValueError)  # not the source's OSError
    assert str(errors[0]) == "read from a closed ReadAhead"


def test_read_zero_never_waits_for_the_source() -> None:
    """read(0) asks for nothing: it must not wait for (or buffer) the download."""
    source = Source(b"", stall=True)
    reader = ReadAhead(source)  # type: ignore[arg-type]
    got: list[bytes] = []
    zero = threading.Thread(target=lambda: got.append(reader.read(0)), daemon=True)
    zero.start()
    zero.join(WAIT)
    reader.close()
    assert got == [b""]


def test_close_ends_a_thread_waiting_to_put_into_a_full_queue() -> None:
    """Nobody reads: the queue fills and the thread waits to put the next block; a close
    must still end it, or every abandoned download would keep a thread and a connection."""
    source = Source(DATA)
    reader = ReadAhead(source, block=1000, depth=1)  # type: ignore[arg-type]
    deadline = time.monotonic() + WAIT
    while source.offset < 2000 and time.monotonic() < deadline:
        time.sleep(0.01)  # one block queued, the next read and waiting to be put
    mine = [t for t in threading.enumerate() if t.name == "freight-read-ahead" and t.is_alive()]
    reader.close()
    for thread in mine:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in mine)


class Deaf(Source):
    """A read that goes on stalling after close(): a connection that ignores being closed."""

    def close(self) -> None:
        io.RawIOBase.close(self)  # the stalled read is not woken


def test_close_returns_even_when_the_source_ignores_it() -> None:
    """close() waits for the reading thread a bounded time: an abandoned download whose
    socket read does not end on close must not hang the transfer giving it up."""
    source = Deaf(b"", stall=True)
    reader = ReadAhead(source)  # type: ignore[arg-type]
    closing = threading.Thread(target=reader.close, daemon=True)
    closing.start()
    closing.join(WAIT)
    stuck = closing.is_alive()
    source.closed_event.set()  # lets the reading thread end
    closing.join(WAIT)
    assert not stuck
