"""Upload a layer while it is being converted, following its spool file as it grows.

The converter never waits for the network: it writes its spool file at its own pace and
reports how far it got (`SpoolStream.wrote`), while a thread sends what is there in one
streamed PATCH, as docker does. When the last byte is converted the digest is known, and
the engine asks the registry whether it had the blob all along: then the stream is dropped,
having cost only the bytes sent meanwhile (few on a slow link, where compressing runs far
ahead of the network), else the upload is closed with the digest. A failed stream only
costs speed: the engine then uploads the spool file the ordinary, retryable way.

A dropped stream ends its body cleanly rather than cutting it: a registry that signs the
upload offset into the URL (distribution's `_state`) refuses to cancel a session through an
older URL, and would keep the bytes until its purge, days later.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from freight.digest import Digest
from freight.errors import FreightError

READ_BLOCK = 1 << 20  # bytes of the spool file per body chunk


@runtime_checkable
class StreamingSink(Protocol):
    @property
    def can_stream(self) -> bool: ...
    def start(self) -> str: ...
    def stream(self, url: str, chunks: Iterable[bytes]) -> str: ...
    def close_upload(self, url: str, digest: Digest) -> None: ...
    def cancel(self, session: str) -> None: ...
    def stop_streaming(self) -> None: ...


class _Truncated(Exception):
    """The spool file holds fewer bytes than reported: cut the request, send no guess."""


class SpoolStream:
    """One layer's streamed upload, fed by the converter's reports on its spool file."""

    def __init__(self, sink: StreamingSink, sent: Callable[[int], None]) -> None:
        self._sink, self._sent = sink, sent
        self._changed = threading.Condition()
        self._path: str | None = None
        self._written = 0
        self._ended = False  # the converter wrote its last byte, or gave up
        self._dropped = False  # stop sending now
        self._session: str | None = None  # the upload URL, once the POST answered
        self._complete = False  # the PATCH carried every byte and was accepted
        self._thread = threading.Thread(target=self._send, name="freight-stream", daemon=True)
        self._thread.start()

    def wrote(self, path: str, total: int) -> None:
        """The converter's report: `path` now holds `total` bytes (flushed)."""
        with self._changed:
            self._path, self._written = path, total
            self._changed.notify_all()

    def finish(self, digest: Digest) -> bool:
        """Close the upload as `digest`; True if the registry now holds the blob."""
        self._end(drop=False)
        self._thread.join()
        if not self._complete or self._session is None:
            return False  # the sending thread has cancelled the session
        try:
            self._sink.close_upload(self._session, digest)
            return True
        except FreightError:  # the caller uploads the spool file instead
            self._sink.cancel(self._session)
            return False

    def abort(self) -> None:
        """Stop sending (the blob is bad, or there already); the session is cancelled in
        the background, so the caller goes on at once (see `wait`)."""
        self._end(drop=True)

    def wait(self, timeout: float | None = None) -> None:
        """Until the sending thread is done, cancelling included."""
        self._thread.join(timeout)

    def _end(self, *, drop: bool) -> None:
        with self._changed:
            self._ended = True
            self._dropped = self._dropped or drop
            self._changed.notify_all()

    def _send(self) -> None:
        try:
            self._session = self._sink.start()
            self._session = self._sink.stream(self._session, self._chunks())
            self._complete = not self._dropped
        except BaseException:  # the fallback upload reports what matters
            self._complete = False
        if self._session is not None and not self._complete:
            self._sink.cancel(self._session)

    def _chunks(self) -> Iterator[bytes]:
        offset, spool = 0, None
        try:
            while (end := self._wait(offset)) is not None:
                if spool is None:
                    spool = open(self._path or "", "rb")  # noqa: SIM115 (closed below)
                data = spool.read(min(end - offset, READ_BLOCK))
                if not data:
                    raise _Truncated()
                offset += len(data)
                self._sent(len(data))
                yield data
        finally:
            if spool is not None:
                spool.close()

    def _wait(self, offset: int) -> int | None:
        """How many bytes the spool file holds, once past `offset`; None when all are sent."""
        with self._changed:
            while not (self._dropped or self._written > offset or self._ended):
                self._changed.wait()
            if self._dropped:  # end the body cleanly: the reply's URL can then be cancelled
                return None
            return self._written if self._written > offset else None
