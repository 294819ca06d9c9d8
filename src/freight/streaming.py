"""Upload a layer while it is being compressed, keeping the spool file as the fallback.

The compressor hands each output chunk to `StreamUpload.put`; a thread sends them to the
registry in one streamed PATCH. Only when the digest is known (the last byte compressed)
is the upload closed with it. Any failure on the way only costs speed: the caller then
uploads the spool file the ordinary, retryable way.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from freight.digest import Digest
from freight.errors import FreightError

QUEUE_CHUNKS = 16  # compressed chunks (≤ ~1 MiB each) waiting for the network: bounded memory
PUT_POLL = 0.5  # seconds between checks that the sending thread is still alive


class StreamSink(Protocol):
    def stream(self, chunks: Iterable[bytes]) -> str: ...
    def stream_finish(self, url: str, digest: Digest) -> None: ...
    def cancel(self, session: str) -> None: ...


class StreamUpload:
    def __init__(self, sink: StreamSink | Any) -> None:
        self._sink = sink
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._failed = threading.Event()
        self._url: str | None = None
        self._thread = threading.Thread(target=self._send, name="freight-stream", daemon=True)
        self._thread.start()

    def put(self, chunk: bytes | None) -> None:
        """Queue a chunk (None ends the stream); dropped once the stream has failed."""
        while not self._failed.is_set():
            try:
                self._queue.put(chunk, timeout=PUT_POLL)
                return
            except queue.Full:
                continue

    def _chunks(self) -> Iterator[bytes]:
        while (chunk := self._queue.get()) is not None:
            yield chunk

    def _send(self) -> None:
        try:
            self._url = self._sink.stream(self._chunks())
        except BaseException:  # the fallback upload will report anything that matters
            self._failed.set()

    def finish(self, digest: Digest) -> bool:
        """Close the upload as `digest`; True if the registry now holds the blob."""
        self.put(None)
        self._thread.join()
        if self._url is None:
            return False
        try:
            self._sink.stream_finish(self._url, digest)
        except FreightError:
            self._sink.cancel(self._url)
            return False
        return True

    def abort(self) -> None:
        """Stop sending and drop the session (the blob is bad, or not needed after all)."""
        self.put(None)
        self._thread.join()
        if self._url is not None:
            self._sink.cancel(self._url)
