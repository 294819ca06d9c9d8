"""SpoolStream: a layer's bytes stream while its spool file grows; the converter never waits."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from freight.digest import Digest
from freight.engine.streaming import READ_BLOCK, SpoolStream
from freight.errors import NetworkError
from support.procs import assert_script_exits


class FakeSink:
    """Records what a registry would receive; `gate` holds the PATCH body until set."""

    def __init__(self, *, fail_stream: bool = False, fail_finish: bool = False) -> None:
        self.received = bytearray()
        self.chunks: list[int] = []  # the size of each body chunk
        self.finished: list[tuple[str, Digest]] = []
        self.cancelled: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_stream, self.fail_finish = fail_stream, fail_finish

    @property
    def can_stream(self) -> bool:
        return True

    def start(self) -> str:
        return "/v2/r/blobs/uploads/1?_state=a"

    def stream(self, url: str, chunks: Iterable[bytes]) -> str:
        self.gate.wait()
        for chunk in chunks:
            self.received += chunk
            self.chunks.append(len(chunk))
            if self.fail_stream:
                raise NetworkError("cut")
        return url + "&n=2"

    def close_upload(self, url: str, digest: Digest) -> None:
        if self.fail_finish:
            raise NetworkError("lost")
        self.finished.append((url, digest))

    def cancel(self, session: str) -> None:
        self.cancelled.append(session)


def _grow(stream: SpoolStream, path: Path, parts: list[bytes]) -> bytes:
    """Write `parts` to `path` one by one, reporting each, as the converter does."""
    with path.open("wb") as out:
        for part in parts:
            out.write(part)
            out.flush()
            stream.wrote(str(path), out.tell())
    return b"".join(parts)


def test_streams_every_byte_then_closes_with_the_digest(tmp_path: Path) -> None:
    sink, sent = FakeSink(), []
    stream = SpoolStream(sink, sent.append)
    data = _grow(stream, tmp_path / "spool", [b"a" * 5000, b"b" * (3 << 20), b"c"])
    digest = Digest.of(data)
    assert stream.finish(digest)
    assert bytes(sink.received) == data and sum(sent) == len(data)
    assert sink.finished == [("/v2/r/blobs/uploads/1?_state=a&n=2", digest)]
    assert not sink.cancelled
    assert max(sink.chunks) <= READ_BLOCK  # memory bounded however far the converter got


def test_only_the_bytes_reported_are_sent(tmp_path: Path) -> None:
    """The converter's writer may have flushed bytes it has not reported yet: the body
    carries exactly the reported bytes, which the digest given to `finish` is of."""
    sink, sent = FakeSink(), threading.Event()
    stream = SpoolStream(sink, lambda n: sent.set())
    path = tmp_path / "spool"
    path.write_bytes(bytes(range(256)) * 12)  # 3072 bytes on disk
    stream.wrote(str(path), 1000)
    assert sent.wait(30)
    stream.wrote(str(path), 2000)
    data = path.read_bytes()[:2000]
    assert stream.finish(Digest.of(data))
    assert bytes(sink.received) == data


def test_the_converter_never_waits_for_the_network(tmp_path: Path) -> None:
    sink = FakeSink()
    sink.gate.clear()  # the registry takes nothing yet
    stream = SpoolStream(sink, lambda _: None)
    data = _grow(stream, tmp_path / "spool", [bytes([i]) * (1 << 20) for i in range(32)])
    assert not sink.received  # all 32 MiB written while nothing was sent
    sink.gate.set()
    assert stream.finish(Digest.of(data))
    assert bytes(sink.received) == data


def test_abort_ends_the_body_and_cancels_through_the_newest_url(tmp_path: Path) -> None:
    """distribution refuses a DELETE through a URL whose signed offset is stale."""
    sink = FakeSink()
    sink.gate.clear()
    stream = SpoolStream(sink, lambda _: None)
    _grow(stream, tmp_path / "spool", [b"x" * 1000])
    stream.abort()  # returns at once; the session is cancelled in the background
    sink.gate.set()
    stream.wait(10)
    assert not sink.finished and sink.cancelled == ["/v2/r/blobs/uploads/1?_state=a&n=2"]


@pytest.mark.parametrize("failure", ["fail_stream", "fail_finish"])
def test_a_failed_stream_says_so_and_cancels(tmp_path: Path, failure: str) -> None:
    sink = FakeSink(**{failure: True})
    stream = SpoolStream(sink, lambda _: None)
    data = _grow(stream, tmp_path / "spool", [b"y" * 10])
    assert not stream.finish(Digest.of(data))  # the caller uploads the spool file instead
    assert not sink.finished and len(sink.cancelled) == 1


def test_nothing_written_streams_an_empty_body(tmp_path: Path) -> None:
    sink = FakeSink()
    stream = SpoolStream(sink, lambda _: None)
    assert stream.finish(Digest.of(b""))
    assert sink.received == b"" and len(sink.finished) == 1


def test_streams_by_default_only_to_remote_registries_pushed_to_before(
        tmp_path: Path) -> None:
    from freight.cache import Cache
    from freight.pushing import streams_by_default

    cache = Cache(tmp_path)
    assert not streams_by_default("registry.example:5000", cache)  # a fresh machine asks first
    assert not streams_by_default("registry.example:5000", Cache(None))
    for registry in ("registry.example:5000", "10.0.0.7", "localhost:5000", "[::1]:5000"):
        cache.remember_location(registry, Digest.of(b"layer"), "team/app")
    assert streams_by_default("registry.example:5000", cache)
    assert streams_by_default("10.0.0.7", cache)
    assert not streams_by_default("localhost:5000", cache)  # shares the CPU, no network
    assert not streams_by_default("[::1]:5000", cache)
    assert not streams_by_default("other.example", cache)


def test_a_refused_close_cancels_the_streamed_session(tmp_path: Path) -> None:
    sink = FakeSink(fail_finish=True)
    stream = SpoolStream(sink, lambda _: None)
    data = _grow(stream, tmp_path / "spool", [b"z" * 100])
    assert not stream.finish(Digest.of(data))
    assert sink.cancelled == ["/v2/r/blobs/uploads/1?_state=a&n=2"]  # the newest URL


def test_bytes_go_out_as_they_are_written_not_at_the_end(tmp_path: Path) -> None:
    """The point of streaming: the upload overlaps the conversion."""
    sink, sent = FakeSink(), threading.Event()
    stream = SpoolStream(sink, lambda n: sent.set())
    with (tmp_path / "spool").open("wb") as out:
        out.write(b"q" * 1000)
        out.flush()
        stream.wrote(str(tmp_path / "spool"), 1000)
        assert sent.wait(30), "nothing was sent before the converter finished"
        out.write(b"r" * 10)
        out.flush()
        stream.wrote(str(tmp_path / "spool"), 1010)
    assert stream.finish(Digest.of(b"q" * 1000 + b"r" * 10))
    assert bytes(sink.received) == b"q" * 1000 + b"r" * 10


class RefusingSink(FakeSink):
    """A registry that refuses to open the upload session (the POST fails)."""

    def start(self) -> str:
        raise NetworkError("connection refused")


def test_a_session_never_opened_is_not_cancelled(tmp_path: Path) -> None:
    """No POST answer, no URL: nothing to DELETE (and no DELETE to an empty URL)."""
    sink = RefusingSink()
    stream = SpoolStream(sink, lambda _: None)
    data = _grow(stream, tmp_path / "spool", [b"z" * 10])
    assert not stream.finish(Digest.of(data))
    assert sink.cancelled == [] and sink.finished == []


def test_wait_is_bounded_by_its_timeout(tmp_path: Path) -> None:
    """The engine gives stuck sessions a bounded time to be cancelled, then goes on."""
    sink = FakeSink()
    sink.gate.clear()  # the PATCH never gets going
    stream = SpoolStream(sink, lambda _: None)
    stream.abort()
    stream.wait(0.05)
    assert not sink.cancelled  # still stuck: wait returned anyway
    sink.gate.set()
    stream.wait(10)
    assert len(sink.cancelled) == 1


def test_a_stuck_stream_does_not_keep_the_interpreter_alive() -> None:
    """Ctrl-C during a streamed push exits even while the PATCH sits in the network."""
    sink = FakeSink()
    sink.gate.clear()
    stream = SpoolStream(sink, lambda _: None)  # in process too, for mutmut to see the test
    streams = [t for t in threading.enumerate() if t.name == "freight-stream"]
    assert streams and all(t.daemon for t in streams)  # named so in a thread dump
    stream.abort()
    sink.gate.set()
    stream.wait(10)
    script = """
        import threading
        from freight.engine.streaming import SpoolStream

        class Stuck:
            can_stream = True
            def start(self): return "/u"
            def stream(self, url, chunks): threading.Event().wait()
            def close_upload(self, url, digest): pass
            def cancel(self, session): pass
            def stop_streaming(self): pass

        stream = SpoolStream(Stuck(), lambda n: None)
        stream.abort()
        stream.wait(0.05)
        print("returned")
    """
    assert_script_exits(script)
