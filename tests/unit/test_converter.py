"""The converter (src/freight/engine/converter.py) on its own: its thread resolves every
conversion it was given, in order, with the layer or the error, so no layer ever waits on
a conversion nobody runs. Real layers, real compression, a spool directory in tmp_path."""

from __future__ import annotations

import gzip
import io
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from freight import mediatypes as mt
from freight.cache import Cache
from freight.digest import Digest
from freight.engine.converter import CheckedReader, Converter
from freight.engine.plan import LayerStep, MemoKey
from freight.engine.workers import Cancelled, CancelToken
from freight.errors import DigestMismatch, FreightError
from freight.progress import Phase
from freight.sources.model import Blob
from freight.testing.layers import compressed, random_layer
from support.recorders import Rows

WAIT = 5  # seconds: every wait here is bounded, a lost conversion fails instead of hanging
pytestmark = pytest.mark.timeout(20)


class StreamSink:
    """Takes streamed uploads and records them."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.closed: list[Digest] = []
        self.cancelled: list[str] = []

    @property
    def can_stream(self) -> bool:
        return True

    def start(self) -> str:
        return "/upload/1"

    def stream(self, url: str, chunks: Iterable[bytes]) -> str:
        for chunk in chunks:
            self.received += chunk
        return url + "?done"

    def close_upload(self, url: str, digest: Digest) -> None:
        self.closed.append(digest)

    def cancel(self, session: str) -> None:
        self.cancelled.append(session)

    def stop_streaming(self) -> None:
        pass


def _step(seed: int, size: int = 3000, *, target: str = mt.GZIP, corrupt: bool = False,
          what: str = "") -> LayerStep:
    tar = random_layer(size, seed=seed)
    layer = compressed(tar, "none")
    data = tar[:-1] + b"x" if corrupt else tar
    blob = Blob(mt.OCI_LAYER, len(data), lambda: io.BytesIO(data), Digest.parse(layer.digest),
                Digest.parse(layer.diff_id), what or f"layer {seed}")
    return LayerStep(blob, target, mt.layer_type(target, docker=False))


def _memo(step: LayerStep) -> MemoKey:
    assert step.memo is not None
    return step.memo


def _converter(tmp_path: Path, order: list[LayerStep], *, cancel: CancelToken | None = None,
               progress: Rows | None = None, stream_to: StreamSink | None = None,
               reads: list[tuple[MemoKey, int]] | None = None) -> Converter:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return Converter(order, spool_dir=str(spool), cache=Cache(tmp_path / "cache"),
                     progress=progress or Rows(), cancel=cancel or CancelToken(),
                     stream_to=lambda step: stream_to,
                     on_read=lambda memo, n: (reads if reads is not None else []).append(
                         (memo, n)))


def test_every_planned_conversion_is_done_and_verifies(tmp_path: Path) -> None:
    steps = [_step(1), _step(2, target=mt.ZSTD), _step(3, target=mt.NONE)]
    converter = _converter(tmp_path, steps)
    converter.start()
    for step in steps:
        layer = converter.result(_memo(step))
        data = Path(layer.path).read_bytes()
        assert Digest.of(data) == layer.digest and len(data) == layer.size
        assert layer.stream is None and layer.streamed_to is None
    gz = converter.result(_memo(steps[0]))
    assert Digest.of(gzip.decompress(Path(gz.path).read_bytes())) == steps[0].blob.diff_id
    assert Path(converter.result(_memo(steps[2])).path).read_bytes() == \
        steps[2].blob.open().read()
    converter.join(WAIT)


def test_a_conversion_nobody_planned_is_refused_at_once(tmp_path: Path) -> None:
    converter = _converter(tmp_path, [_step(1)])
    converter.start()
    with pytest.raises(FreightError, match="never planned"):
        converter.result(_memo(_step(9)))
    converter.join(WAIT)


def test_a_bad_layer_fails_its_waiters_and_the_rest_still_convert(tmp_path: Path) -> None:
    bad, good = _step(1, corrupt=True), _step(2)
    converter = _converter(tmp_path, [bad, good])
    converter.start()
    with pytest.raises(DigestMismatch):
        converter.result(_memo(bad))
    assert Path(converter.result(_memo(good)).path).exists()
    converter.join(WAIT)
    assert len(list((tmp_path / "spool").iterdir())) == 1  # the bad one left no spool file


def test_a_cancelled_transfer_resolves_every_conversion_with_cancelled(tmp_path: Path) -> None:
    cancel = CancelToken()
    cancel.cancel()
    steps = [_step(1), _step(2), _step(3)]
    converter = _converter(tmp_path, steps, cancel=cancel)
    converter.start()
    for step in steps:
        with pytest.raises(Cancelled):
            converter.result(_memo(step))
    converter.join(WAIT)
    assert list((tmp_path / "spool").iterdir()) == []


def test_conversions_run_on_one_thread_in_the_planned_order(tmp_path: Path) -> None:
    steps = [_step(i) for i in (5, 3, 8)]
    reads: list[tuple[MemoKey, int]] = []
    converter = _converter(tmp_path, steps, reads=reads)
    converter.start()
    converter.result(_memo(steps[-1]))
    order = list(dict.fromkeys(memo for memo, _ in reads))
    assert order == [_memo(s) for s in steps]
    for step in steps:
        assert sum(n for memo, n in reads if memo == _memo(step)) == step.blob.size
    converter.join(WAIT)


def test_a_conversion_is_remembered_in_the_cache_by_diff_id(tmp_path: Path) -> None:
    step = _step(1)
    converter = _converter(tmp_path, [step])
    converter.start()
    layer = converter.result(_memo(step))
    converter.join(WAIT)
    assert step.blob.diff_id is not None
    assert Cache(tmp_path / "cache").converted(step.blob.diff_id, mt.GZIP, step.blob.size) == \
        (layer.digest, layer.size)


@pytest.mark.parametrize(("target", "phase"), [(mt.GZIP, Phase.COMPRESS),
                                               (mt.NONE, Phase.DECOMPRESS)])
def test_a_conversion_reports_its_own_row(tmp_path: Path, target: str, phase: Phase) -> None:
    rows = Rows()
    step = _step(1, target=target, what="layer 1 of app")
    converter = _converter(tmp_path, [step], progress=rows)
    converter.start()
    converter.result(_memo(step))
    converter.join(WAIT)
    row = "layer 1 of app#convert"
    assert rows.events == [("start", row, "layer 1 of app", step.blob.size, phase),
                           ("done", row, None)]
    assert rows.advanced == {row: step.blob.size}


def test_a_streamed_conversion_sends_what_it_writes(tmp_path: Path) -> None:
    sink, rows = StreamSink(), Rows()
    step = _step(1, 200_000, what="big")
    converter = _converter(tmp_path, [step], stream_to=sink, progress=rows)
    converter.start()
    layer = converter.result(_memo(step))
    assert layer.stream is not None and layer.streamed_to is sink
    assert layer.stream.finish(layer.digest)
    assert bytes(sink.received) == Path(layer.path).read_bytes()
    assert sink.closed == [layer.digest]
    assert rows.advanced["big"] == layer.size  # the streamed bytes, on the layer's own row
    converter.drop_streams(WAIT)
    converter.join(WAIT)


def test_a_failed_streamed_conversion_cancels_its_upload(tmp_path: Path) -> None:
    sink = StreamSink()
    step = _step(1, 200_000, corrupt=True)
    converter = _converter(tmp_path, [step], stream_to=sink)
    converter.start()
    with pytest.raises(DigestMismatch):
        converter.result(_memo(step))
    converter.drop_streams(WAIT)
    assert sink.cancelled == ["/upload/1?done"] and sink.closed == []


def test_drop_streams_cancels_every_unfinished_stream(tmp_path: Path) -> None:
    sink = StreamSink()
    steps = [_step(1), _step(2)]
    converter = _converter(tmp_path, steps, stream_to=sink)
    converter.start()
    for step in steps:
        converter.result(_memo(step))
    converter.drop_streams(WAIT)
    assert sink.cancelled == ["/upload/1?done"] * 2 and sink.closed == []


def test_join_waits_for_the_thread_and_a_thread_never_started_is_fine(tmp_path: Path) -> None:
    _converter(tmp_path, [_step(1)]).join(WAIT)  # never started: nothing to wait for
    converter = _converter(tmp_path, [_step(1)])
    converter.start()
    converter.join(WAIT)
    assert not [t for t in threading.enumerate() if t.name == "freight-convert"]


def test_a_checked_reader_counts_closes_and_stops_once_cancelled() -> None:
    cancel, counted = CancelToken(), []
    inner = io.BytesIO(b"abcdef")
    with CheckedReader(inner, cancel, counted.append) as reader:
        assert reader.read(4) == b"abcd"
        assert reader.read() == b"ef"
        cancel.cancel()
        with pytest.raises(Cancelled):
            reader.read(1)
    assert counted == [4, 2]
    assert inner.closed


@pytest.mark.parametrize(("known", "key"), [("diff_id", "diff_id"), ("digest", "digest")])
def test_a_conversion_is_remembered_by_what_the_source_knows(tmp_path: Path, known: str,
                                                             key: str) -> None:
    """A gzip layer of a legacy `docker save` has a diff_id but no digest until hashed; a
    registry's layer has a digest but no diff_id. Either is remembered, so the next push
    of the same layer converts nothing."""
    tar = random_layer(3000, seed=21)
    layer = compressed(tar, "gzip")
    diff_id, digest = Digest.parse(layer.diff_id), Digest.parse(layer.digest)
    blob = Blob(mt.OCI_LAYER_GZIP, layer.size, lambda: io.BytesIO(layer.data),
                digest if known == "digest" else None, diff_id if known == "diff_id" else None,
                "layer")
    step = LayerStep(blob, mt.ZSTD, mt.OCI_LAYER_ZSTD)
    converter = _converter(tmp_path, [step])
    converter.start()
    out = converter.result(_memo(step))
    converter.join(WAIT)
    remembered = diff_id if key == "diff_id" else digest
    assert Cache(tmp_path / "cache").converted(remembered, mt.ZSTD, layer.size) == \
        (out.digest, out.size)


@pytest.mark.parametrize("wrong", ["digest", "diff_id"])
def test_a_compressed_layer_is_checked_against_both_its_digests(tmp_path: Path,
                                                                wrong: str) -> None:
    """The digest covers the bytes as stored, the diff_id the tar inside: a layer recompressed
    on the way (same tar, other bytes) or labelled with another tar's diff_id is refused."""
    tar = random_layer(3000, seed=22)
    layer = compressed(tar, "gzip")
    other = gzip.compress(tar, compresslevel=9, mtime=0)  # the same tar, other bytes
    digest = Digest.of(other) if wrong == "digest" else Digest.parse(layer.digest)
    diff_id = Digest.of(b"another tar") if wrong == "diff_id" else Digest.parse(layer.diff_id)
    blob = Blob(mt.OCI_LAYER_GZIP, layer.size, lambda: io.BytesIO(layer.data), digest,
                diff_id, "layer 3 of app:1")
    step = LayerStep(blob, mt.ZSTD, mt.OCI_LAYER_ZSTD)
    converter = _converter(tmp_path, [step])
    converter.start()
    with pytest.raises(DigestMismatch) as caught:
        converter.result(_memo(step))
    converter.join(WAIT)
    assert "layer 3 of app:1" in str(caught.value)
    assert ("uncompressed, against its diff_id" in str(caught.value)) == (wrong == "diff_id")


class StuckStreamSink(StreamSink):
    """A registry that never takes the streamed body until `gate` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def stream(self, url: str, chunks: Iterable[bytes]) -> str:
        self.gate.wait(WAIT * 2)
        return super().stream(url, chunks)


def _returns_in_time(call: Callable[[], None]) -> bool:
    done = threading.Thread(target=call, daemon=True)
    done.start()
    done.join(WAIT)
    return not done.is_alive()


def test_drop_streams_gives_stuck_sessions_a_bounded_time(tmp_path: Path) -> None:
    """Ctrl-C with a stream stuck in the network: the engine waits a little, then goes."""
    sink = StuckStreamSink()
    step = _step(1)
    converter = _converter(tmp_path, [step], stream_to=sink)
    converter.start()
    converter.result(_memo(step))
    assert _returns_in_time(lambda: converter.drop_streams(0.05))
    assert sink.cancelled == []  # still stuck when drop_streams gave up waiting
    sink.gate.set()
    converter.drop_streams(WAIT)
    assert len(sink.cancelled) == 1


def test_join_gives_a_stuck_conversion_a_bounded_time(tmp_path: Path) -> None:
    gate = threading.Event()
    tar = random_layer(1000, seed=5)

    def stuck_open() -> io.BytesIO:
        gate.wait(WAIT * 2)  # a source that does not answer (a network read)
        return io.BytesIO(tar)

    blob = Blob(mt.OCI_LAYER, len(tar), stuck_open, Digest.of(tar), Digest.of(tar), "stuck")
    step = LayerStep(blob, mt.GZIP, mt.OCI_LAYER_GZIP)
    converter = _converter(tmp_path, [step])
    converter.start()
    assert _returns_in_time(lambda: converter.join(0.05))
    threads = [t for t in threading.enumerate() if t.name == "freight-convert"]
    assert threads and all(t.daemon for t in threads)  # never holds the interpreter at exit
    gate.set()
    converter.result(_memo(step))
    converter.join(WAIT)
