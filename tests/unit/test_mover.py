"""The blob mover (src/freight/engine/mover.py) against a recording sink: what it asks a
registry, what it sends, what it reports. Every request counted here is a round trip a
user waits for, and every upload the mover could have skipped or mounted is bytes sent
for nothing."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from freight.cache import Cache
from freight.digest import Digest
from freight.engine.converter import ConvertedLayer
from freight.engine.mover import Mover
from freight.engine.workers import Cancelled, CancelToken
from freight.progress import Phase
from freight.results import Action
from support.recorders import Rows

WAIT = 5  # seconds; generous bound for a thread to reach a point
pytestmark = pytest.mark.timeout(20)

DATA = b"layer bytes " * 1000
DIGEST = Digest.of(DATA)


class RecordingSink:
    """A registry repository (or a local sink with `registry=None`) that logs every call."""

    holds_external = True
    images_only = False

    def __init__(self, repository: str = "app", registry: str | None = "reg.test:5000", *,
                 holds: set[Digest] | None = None, mounts: bool = True,
                 stored: Action = Action.UPLOADED, chunk: int = 4096) -> None:
        self.repository, self.registry, self.stored = repository, registry, stored
        self.holds = set(holds or ())
        self.mounts, self.chunk = mounts, chunk
        self.calls: list[tuple[Any, ...]] = []
        self.received: dict[Digest, bytes] = {}
        self.streaming = StreamerStub()
        self.upload_gate: threading.Event | None = None
        self.in_upload = threading.Event()

    def has_blob(self, digest: Digest) -> bool:
        self.calls.append(("has_blob", digest))
        return digest in self.holds

    def mount(self, digest: Digest, source: str) -> bool:
        self.calls.append(("mount", digest, source))
        if self.mounts:
            self.holds.add(digest)
        return self.mounts

    def upload(self, digest: Digest, size: int, opener: Callable[[], Any], *,
               verify: bool = True, progress: Callable[[int], None] = lambda n: None,
               what: str = "blob") -> None:
        self.calls.append(("upload", digest, size, verify, what))
        self.in_upload.set()
        gate, self.upload_gate = self.upload_gate, None  # holds up the first upload only
        if gate is not None:
            gate.wait(WAIT)
        data = bytearray()
        with opener() as reader:
            while block := reader.read(self.chunk):
                data += block
                progress(len(block))
        self.received[digest] = bytes(data)
        self.holds.add(digest)

    def streamer(self) -> StreamerStub:
        return self.streaming

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == name]


class StreamerStub:
    def __init__(self) -> None:
        self.stopped = 0

    def stop_streaming(self) -> None:
        self.stopped += 1


class StreamStub:
    """A converted layer's stream: `finish` answers as told, `abort` is counted."""

    def __init__(self, finishes: bool) -> None:
        self.finishes, self.finished, self.aborted = finishes, [], 0

    def finish(self, digest: Digest) -> bool:
        self.finished.append(digest)
        return self.finishes

    def abort(self) -> None:
        self.aborted += 1


def _mover(tmp_path: Path, progress: Rows | None = None,
           cancel: CancelToken | None = None) -> tuple[Mover, Cache]:
    cache = Cache(tmp_path / "cache")
    return Mover(cache=cache, progress=progress or Rows(), cancel=cancel or CancelToken()), cache


def _opener(data: bytes = DATA) -> Callable[[], Any]:
    return lambda: io.BytesIO(data)


def test_a_missing_blob_is_asked_about_once_sent_once_then_skipped(tmp_path: Path) -> None:
    mover, cache = _mover(tmp_path)
    sink = RecordingSink()
    action = mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer 1")
    assert action is Action.UPLOADED
    assert sink.received[DIGEST] == DATA
    assert sink.calls == [("has_blob", DIGEST), ("upload", DIGEST, len(DATA), True, "layer 1")]
    assert mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer 1") is Action.SKIPPED
    assert len(sink.calls) == 2  # no second HEAD, no second upload
    assert cache.locations("reg.test:5000", DIGEST) == ["app"]


def test_a_blob_the_sink_holds_is_skipped_and_never_asked_about_again(tmp_path: Path) -> None:
    mover, cache = _mover(tmp_path)
    sink = RecordingSink(holds={DIGEST})
    assert mover.reuse(sink, DIGEST) is Action.SKIPPED
    assert mover.ensure(sink, DIGEST, len(DATA), _opener(), "config") is Action.SKIPPED
    assert sink.calls == [("has_blob", DIGEST)]
    assert cache.locations("reg.test:5000", DIGEST) == ["app"]  # found there counts too


def test_a_probe_that_found_nothing_is_not_repeated_before_the_upload(tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    sink = RecordingSink()
    assert mover.reuse(sink, DIGEST) is None
    assert mover.reuse(sink, DIGEST) is None
    assert mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer") is Action.UPLOADED
    assert len(sink.named("has_blob")) == 1


def test_a_blob_known_in_another_repository_is_mounted(tmp_path: Path) -> None:
    mover, cache = _mover(tmp_path)
    mover.known_in(DIGEST, "app")  # the sink's own repository is never a mount source
    mover.known_in(DIGEST, "base")
    sink = RecordingSink("app")
    assert mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer") is Action.MOUNTED
    assert sink.named("mount") == [("mount", DIGEST, "base")]
    assert not sink.named("upload")
    assert set(cache.locations("reg.test:5000", DIGEST)) == {"app"}
    # and a later push to a third repository may mount from either
    third = RecordingSink("third")
    assert mover.ensure(third, DIGEST, len(DATA), _opener(), "layer") is Action.MOUNTED
    assert third.named("mount") == [("mount", DIGEST, "app")]


def test_locations_remembered_by_an_earlier_run_are_mounted_from(tmp_path: Path) -> None:
    _, cache = _mover(tmp_path)
    cache.remember_location("reg.test:5000", DIGEST, "earlier")
    mover, _ = _mover(tmp_path)  # a new run, the same cache
    sink = RecordingSink("app")
    assert mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer") is Action.MOUNTED
    assert sink.named("mount") == [("mount", DIGEST, "earlier")]


def test_one_refused_mount_ends_the_mounting_and_is_not_tried_again(tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    mover.known_in(DIGEST, "one")
    mover.known_in(DIGEST, "two")
    sink = RecordingSink("app", mounts=False)
    assert mover.reuse(sink, DIGEST) is None
    assert mover.reuse(sink, DIGEST) is None
    assert sink.named("mount") == [("mount", DIGEST, "one")]
    assert mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer") is Action.UPLOADED
    assert len(sink.named("mount")) == 1
    assert sink.received[DIGEST] == DATA


def test_a_dry_run_says_it_would_mount_and_mounts_nothing(tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    sink = RecordingSink("app")
    assert mover.reuse(sink, DIGEST, mount=False) is None  # known nowhere else
    mover.known_in(DIGEST, "app")
    assert mover.reuse(sink, DIGEST, mount=False) is None  # only here: no mount
    mover.known_in(DIGEST, "base")
    assert mover.reuse(sink, DIGEST, mount=False) is Action.MOUNTED
    assert not sink.named("mount")  # a dry run writes nothing
    # no refusal was recorded: a real run mounts
    assert mover.reuse(sink, DIGEST) is Action.MOUNTED
    assert sink.named("mount") == [("mount", DIGEST, "base")]


def test_local_sinks_never_mount_and_are_told_apart(tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    mover.known_in(DIGEST, "")
    first = RecordingSink("", None, stored=Action.WRITTEN)
    second = RecordingSink("", None, stored=Action.WRITTEN)
    assert mover.ensure(first, DIGEST, len(DATA), _opener(), "layer") is Action.WRITTEN
    assert mover.ensure(second, DIGEST, len(DATA), _opener(), "layer") is Action.WRITTEN
    assert not first.named("mount") and not second.named("mount")
    assert second.received[DIGEST] == DATA
    assert not (tmp_path / "cache" / "locations").exists()  # nothing to mount from later


def test_the_same_repository_on_two_registries_is_two_places(tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    one = RecordingSink("app", "one.test")
    two = RecordingSink("app", "two.test")
    mover.ensure(one, DIGEST, len(DATA), _opener(), "layer")
    assert mover.ensure(two, DIGEST, len(DATA), _opener(), "layer") is Action.UPLOADED
    assert two.named("has_blob") == [("has_blob", DIGEST)]
    assert not two.named("mount")  # a repository of another registry is no mount source


@pytest.mark.parametrize(("registry", "stored", "phase"), [
    ("reg.test", Action.UPLOADED, Phase.UPLOAD),
    (None, Action.DOWNLOADED, Phase.DOWNLOAD),
    (None, Action.WRITTEN, Phase.WRITE),
])
def test_a_send_reports_one_row_with_its_phase_and_every_byte(
        tmp_path: Path, registry: str | None, stored: Action, phase: Phase) -> None:
    rows = Rows()
    mover, _ = _mover(tmp_path, rows)
    counted: list[int] = []
    sink = RecordingSink("app" if registry else "", registry, stored=stored)
    assert mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer 2",
                        counted=counted.append) is stored
    assert rows.events == [("start", "layer 2", "layer 2", len(DATA), phase),
                           ("done", "layer 2", stored)]
    assert rows.advanced == {"layer 2": len(DATA)}
    assert sum(counted) == len(DATA)


def test_verify_is_passed_on(tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    sink = RecordingSink()
    mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer", verify=False)
    assert sink.named("upload") == [("upload", DIGEST, len(DATA), False, "layer")]


def test_a_cancelled_transfer_asks_and_sends_nothing(tmp_path: Path) -> None:
    cancel = CancelToken()
    mover, _ = _mover(tmp_path, cancel=cancel)
    cancel.cancel()
    sink = RecordingSink()
    with pytest.raises(Cancelled):
        mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer")
    with pytest.raises(Cancelled):
        mover.reuse(sink, DIGEST)
    assert sink.calls == []


def test_a_cancel_during_an_upload_stops_its_reads(tmp_path: Path) -> None:
    cancel = CancelToken()
    mover, _ = _mover(tmp_path, cancel=cancel)
    sink = RecordingSink(chunk=100)

    def opener() -> Any:
        class Reader(io.BytesIO):
            def read(self, n: int | None = -1) -> bytes:
                cancel.cancel()  # Ctrl-C arrives while the first block is read
                return super().read(n)
        return Reader(DATA)

    with pytest.raises(Cancelled):
        mover.ensure(sink, DIGEST, len(DATA), opener, "layer")
    assert DIGEST not in sink.received


def test_two_threads_sending_one_blob_send_it_once(tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    sink = RecordingSink()
    gate = sink.upload_gate = threading.Event()
    results: list[Action] = []

    def push() -> None:
        results.append(mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer"))

    first = threading.Thread(target=push)
    first.start()
    assert sink.in_upload.wait(WAIT)
    second = threading.Thread(target=push)
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waiting for the first to finish, not sending too
    gate.set()
    first.join(WAIT)
    second.join(WAIT)
    assert sorted(results) == sorted([Action.UPLOADED, Action.SKIPPED])
    assert len(sink.named("upload")) == 1 and len(sink.named("has_blob")) == 1


def _layer(tmp_path: Path, stream: StreamStub | None, to: object) -> ConvertedLayer:
    path = tmp_path / "spool"
    path.write_bytes(DATA)
    return ConvertedLayer(DIGEST, len(DATA), str(path), stream, to)  # type: ignore[arg-type]


def test_a_layer_streamed_to_the_sink_is_finished_not_uploaded(tmp_path: Path) -> None:
    rows = Rows()
    mover, _ = _mover(tmp_path, rows)
    sink, stream = RecordingSink(), StreamStub(finishes=True)
    assert mover.place_converted(sink, _layer(tmp_path, stream, sink), "layer") \
        is Action.UPLOADED
    assert stream.finished == [DIGEST] and stream.aborted == 0
    assert not sink.named("upload")
    assert rows.events == [("start", "layer", "layer", len(DATA), Phase.UPLOAD),
                           ("done", "layer", Action.UPLOADED)]
    assert mover.ensure(sink, DIGEST, len(DATA), _opener(), "layer") is Action.SKIPPED
    assert sink.named("has_blob") == [("has_blob", DIGEST)]


def test_a_failed_stream_falls_back_to_the_spool_file_and_stops_streaming(
        tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    sink, stream = RecordingSink(), StreamStub(finishes=False)
    assert mover.place_converted(sink, _layer(tmp_path, stream, sink), "layer") \
        is Action.UPLOADED
    assert stream.finished == [DIGEST]
    assert sink.streaming.stopped == 1
    assert sink.named("upload") == [("upload", DIGEST, len(DATA), False, "layer")]
    assert sink.received[DIGEST] == DATA


def test_a_streamed_layer_the_sink_had_all_along_drops_the_stream(tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    sink, stream = RecordingSink(holds={DIGEST}), StreamStub(finishes=True)
    assert mover.place_converted(sink, _layer(tmp_path, stream, sink), "layer") \
        is Action.SKIPPED
    assert stream.aborted == 1 and stream.finished == []
    assert not sink.named("upload")


def test_a_layer_streamed_elsewhere_is_uploaded_here_and_its_stream_left_alone(
        tmp_path: Path) -> None:
    mover, _ = _mover(tmp_path)
    elsewhere = RecordingSink("other")
    sink, stream = RecordingSink(), StreamStub(finishes=True)
    assert mover.place_converted(sink, _layer(tmp_path, stream, elsewhere), "layer") \
        is Action.UPLOADED
    assert stream.finished == [] and stream.aborted == 0
    assert sink.received[DIGEST] == DATA
    sink2, stream2 = RecordingSink("third", holds={DIGEST}), StreamStub(finishes=True)
    assert mover.place_converted(sink2, _layer(tmp_path, stream2, elsewhere), "layer") \
        is Action.SKIPPED
    assert stream2.aborted == 0


@pytest.mark.parametrize("how", ["ensure", "place_converted"])
def test_different_blobs_move_at_once_not_one_after_the_other(tmp_path: Path,
                                                              how: str) -> None:
    """Each blob has its own lock: a slow upload of one holds up no other."""
    mover, _ = _mover(tmp_path)
    sink = RecordingSink()
    gate = sink.upload_gate = threading.Event()
    other_data = b"another layer" * 100
    (tmp_path / "other").write_bytes(other_data)
    other = ConvertedLayer(Digest.of(other_data), len(other_data), str(tmp_path / "other"))

    def move(layer: ConvertedLayer, what: str) -> Action:
        if how == "ensure":
            return mover.ensure(sink, layer.digest, layer.size,
                                lambda: open(layer.path, "rb"), what)
        return mover.place_converted(sink, layer, what)

    slow = threading.Thread(target=lambda: move(_layer(tmp_path, None, None), "slow"))
    slow.start()
    assert sink.in_upload.wait(WAIT)  # the first upload now waits on the gate
    done: list[Action] = []
    fast = threading.Thread(target=lambda: done.append(move(other, "fast")))
    fast.start()
    fast.join(WAIT)
    assert done == [Action.UPLOADED]  # while the slow one still waits
    gate.set()
    slow.join(WAIT)
    assert sink.received[DIGEST] == DATA and sink.received[other.digest] == other_data


def test_a_blob_sent_this_run_is_mounted_elsewhere_even_without_a_cache(
        tmp_path: Path) -> None:
    """With no cache directory (FREIGHT_CACHE_DIR unwritable, say) the run still knows
    where it put each blob: a second repository mounts it instead of uploading it."""
    mover = Mover(cache=Cache(None), progress=Rows(), cancel=CancelToken())
    assert mover.ensure(RecordingSink("one"), DIGEST, len(DATA), _opener(), "l") is \
        Action.UPLOADED
    two = RecordingSink("two")
    assert mover.ensure(two, DIGEST, len(DATA), _opener(), "l") is Action.MOUNTED
    assert two.named("mount") == [("mount", DIGEST, "one")]
