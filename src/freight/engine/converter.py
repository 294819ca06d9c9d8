"""The converter: layer conversions on one thread of their own, in the planned order.

Each compression already keeps every core busy, so conversions run one at a time, biggest
first, on a dedicated thread that works through a list fixed before it starts. A layer
that needs a conversion waits on its Future; the thread resolves every Future on its list,
with a result or with the error (Cancelled once the transfer is cancelled), so a wait for a
conversion always has a producer that is sure to run, and nothing is ever left waiting on
a turn nobody takes. A conversion nobody planned is refused at once, never awaited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import BinaryIO

from freight import mediatypes as mt
from freight.cache import Cache
from freight.convert import convert
from freight.digest import Digest
from freight.engine.plan import LayerStep, MemoKey
from freight.engine.streaming import SpoolStream, StreamingSink
from freight.engine.workers import CancelToken
from freight.errors import FreightError
from freight.progress import Phase, Progress


@dataclass(frozen=True)
class ConvertedLayer:
    """A layer's new bytes in a spool file; `stream` already carries them to `streamed_to`."""

    digest: Digest
    size: int
    path: str
    stream: SpoolStream | None = None
    streamed_to: StreamingSink | None = None


StreamChoice = Callable[[LayerStep], StreamingSink | None]
ReadReport = Callable[[MemoKey, int], None]


class Converter:
    def __init__(self, order: list[LayerStep], *, spool_dir: str, cache: Cache,
                 progress: Progress, cancel: CancelToken, stream_to: StreamChoice,
                 on_read: ReadReport) -> None:
        self._order, self._spool_dir, self._cache = order, spool_dir, cache
        self._progress, self._cancel = progress, cancel
        self._stream_to, self._on_read = stream_to, on_read
        self._futures: dict[MemoKey, Future[ConvertedLayer]] = {}
        for step in order:
            assert step.memo is not None
            self._futures[step.memo] = Future()
        self._streams: list[SpoolStream] = []
        self._thread = threading.Thread(target=self._run, name="freight-convert", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def result(self, memo: MemoKey) -> ConvertedLayer:
        """Wait for the conversion `memo` (it must be on the list) and return it."""
        future = self._futures.get(memo)
        if future is None:
            raise FreightError(f"internal error: conversion {memo!r} was never planned")
        return future.result()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def drop_streams(self, timeout: float) -> None:
        """Drop every stream not finished (a no-op for finished ones), then give their
        sessions up to `timeout` seconds in all to be cancelled."""
        deadline = time.monotonic() + timeout
        for stream in self._streams:
            stream.abort()
        for stream in self._streams:
            stream.wait(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        for step in self._order:
            assert step.memo is not None
            future = self._futures[step.memo]
            try:
                self._cancel.check()
                future.set_result(self._convert(step))
            except BaseException as exc:  # handed to every layer that waits for it
                future.set_exception(exc)

    def _convert(self, step: LayerStep) -> ConvertedLayer:
        blob, target = step.blob, step.target
        assert target is not None and step.memo is not None
        sink = self._stream_to(step)
        stream = SpoolStream(sink, self._streamed(blob.what)) if sink is not None else None
        if stream is not None:
            self._streams.append(stream)
        try:
            out = self._transcode(step, stream)
        except BaseException:
            if stream is not None:
                stream.abort()
            raise
        key = blob.diff_id or blob.digest
        if key is not None:
            self._cache.remember_converted(key, target, out.digest, out.size, blob.size)
        return ConvertedLayer(out.digest, out.size, out.path, stream, sink if stream else None)

    def _streamed(self, what: str) -> Callable[[int], None]:
        return lambda n: self._progress.blob_advance(what, n)

    def _transcode(self, step: LayerStep, stream: SpoolStream | None) -> ConvertedLayer:
        blob, target = step.blob, step.target
        assert target is not None and step.memo is not None
        memo = step.memo
        phase = Phase.DECOMPRESS if target == mt.NONE else Phase.COMPRESS
        row = f"{blob.what}#convert"
        self._progress.blob_start(row, blob.what, blob.size, phase)

        def report(n: int) -> None:
            self._progress.blob_advance(row, n)
            self._on_read(memo, n)

        with blob.open() as raw:
            reader = CheckedReader(raw, self._cancel, report)
            out = convert(reader, source_compression=mt.layer_compression(blob.media_type)
                          or mt.NONE, target=target, spool_dir=self._spool_dir,
                          expected=blob.digest, diff_id=blob.diff_id, what=blob.what,
                          tap=stream.wrote if stream else None)
        self._progress.blob_done(row, None)
        return ConvertedLayer(out.digest, out.size, out.path)


class CheckedReader:
    """Reads from `inner`, reporting the bytes read and stopping once cancelled."""

    def __init__(self, inner: BinaryIO, cancel: CancelToken,
                 report: Callable[[int], None]) -> None:
        self._inner, self._cancel, self._report = inner, cancel, report

    def read(self, n: int = -1) -> bytes:
        self._cancel.check()
        data: bytes = self._inner.read(n)
        self._report(len(data))
        return data

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> CheckedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
