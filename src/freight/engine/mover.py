"""The blob mover: make a sink hold a blob by skipping, mounting or sending it.

One blob of one repository is handled by one thread at a time (a lock per repository and
digest), so identical layers are sent once and the second finds the first's. A lock is
held only around requests, never while waiting for a conversion, so no wait can close a
cycle. Where blobs are known to live on the destination registry (this run, or the cache
of earlier runs) a push to another repository mounts instead of uploading.

The mover remembers what it learnt this run, so no blob is asked about twice: a blob it
stored is skipped without a request, and one the probe found missing is sent without
asking again (a mount the registry refused is not tried twice either).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import BinaryIO

from freight.cache import Cache
from freight.digest import Digest
from freight.engine.converter import CheckedReader, ConvertedLayer
from freight.engine.workers import CancelToken
from freight.progress import Phase, Progress
from freight.results import Action
from freight.sinks import Sink

Opener = Callable[[], BinaryIO]


class Mover:
    def __init__(self, *, cache: Cache, progress: Progress, cancel: CancelToken) -> None:
        self._cache, self._progress, self._cancel = cache, progress, cancel
        self._guard = threading.Lock()
        self._locks: dict[_Key, threading.Lock] = {}
        self._where: dict[Digest, list[str]] = {}
        self._stored: set[_Key] = set()  # this run stored it there, or found it there
        self._missing: set[_Key] = set()  # asked this run: not there
        self._refused: set[_Key] = set()  # a mount of it there was refused this run

    def known_in(self, digest: Digest, repository: str) -> None:
        """Note that `repository` on the destination registry holds `digest`."""
        with self._guard:
            known = self._where.setdefault(digest, [])
            if repository not in known:
                known.append(repository)

    def _lock(self, sink: Sink, digest: Digest) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(_key(sink, digest), threading.Lock())

    def reuse(self, sink: Sink, digest: Digest, *, mount: bool = True) -> Action | None:
        """SKIPPED if the sink holds the blob, MOUNTED if a mount worked, else None. Without
        `mount` (a dry run), MOUNTED where the cache knows another repository of the same
        registry that holds the blob (the real run mounts from there, or else uploads)."""
        with self._lock(sink, digest):
            return self._reuse(sink, digest, mount=mount)

    def _reuse(self, sink: Sink, digest: Digest, *, mount: bool = True) -> Action | None:
        self._cancel.check()
        key = _key(sink, digest)
        with self._guard:
            stored, asked, refused = (key in self._stored, key in self._missing,
                                      key in self._refused)
        if stored:
            return Action.SKIPPED
        if not asked:
            if sink.has_blob(digest):
                self._remember(sink, digest)
                return Action.SKIPPED
            with self._guard:
                self._missing.add(key)
        if not mount:  # a dry run tries no mount (that would write); the cache says if one would
            elsewhere = not refused and any(o != sink.repository
                                            for o in self._locations(sink, digest))
            return Action.MOUNTED if elsewhere else None
        for other in self._locations(sink, digest) if not refused else ():
            if other != sink.repository:
                if sink.mount(digest, other):
                    self._remember(sink, digest)
                    return Action.MOUNTED
                with self._guard:
                    self._refused.add(key)
                break  # one refusal says this registry does not mount for us
        return None

    def ensure(self, sink: Sink, digest: Digest, size: int, opener: Opener, what: str,
               *, verify: bool = True, counted: Callable[[int], None] | None = None) -> Action:
        """Make sure the sink holds the blob: skip, mount or send it (verified)."""
        with self._lock(sink, digest):
            action = self._reuse(sink, digest)
            if action is not None:
                return action
            self._send(sink, digest, size, opener, what, verify, counted)
            return sink.stored

    def _send(self, sink: Sink, digest: Digest, size: int, opener: Opener, what: str,
              verify: bool, counted: Callable[[int], None] | None) -> None:
        phase = Phase.UPLOAD if sink.registry is not None else (
            Phase.DOWNLOAD if sink.stored is Action.DOWNLOADED else Phase.WRITE)
        self._progress.blob_start(what, what, size, phase)

        def advance(n: int) -> None:
            self._progress.blob_advance(what, n)
            if counted is not None:
                counted(n)

        sink.upload(digest, size, lambda: CheckedReader(opener(), self._cancel, _ignore),
                    verify=verify, what=what, progress=advance)
        self._remember(sink, digest)
        self._progress.blob_done(what, sink.stored)

    def place_converted(self, sink: Sink, layer: ConvertedLayer, what: str) -> Action:
        """Put a converted layer into `sink`: finish its stream if it went there, else skip,
        mount or upload its spool file."""
        with self._lock(sink, layer.digest):
            action = self._reuse(sink, layer.digest)
            if action is not None:
                if layer.stream is not None and _same(layer.streamed_to, sink):
                    layer.stream.abort()  # the registry had it all along
                return action
            if layer.stream is not None and _same(layer.streamed_to, sink):
                self._progress.blob_start(what, what, layer.size, Phase.UPLOAD)
                if layer.stream.finish(layer.digest):
                    self._remember(sink, layer.digest)
                    self._progress.blob_done(what, Action.UPLOADED)
                    return Action.UPLOADED
                streaming = sink.streamer()
                if streaming is not None:
                    streaming.stop_streaming()  # one failed stream: the rest go the usual way
            # the opener is called, and its file closed, by the upload
            self._send(sink, layer.digest, layer.size,
                       lambda: open(layer.path, "rb"),  # noqa: SIM115
                       what, verify=False, counted=None)
            return sink.stored

    def _locations(self, sink: Sink, digest: Digest) -> list[str]:
        if sink.registry is None:
            return []
        with self._guard:
            found = list(self._where.get(digest, ()))
        return list(dict.fromkeys(found + self._cache.locations(sink.registry, digest)))

    def _remember(self, sink: Sink, digest: Digest) -> None:
        with self._guard:
            self._stored.add(_key(sink, digest))
            self._missing.discard(_key(sink, digest))
        if sink.registry is not None:
            self.known_in(digest, sink.repository)
            self._cache.remember_location(sink.registry, digest, sink.repository)


_Key = tuple[object, str, Digest]


def _key(sink: Sink, digest: Digest) -> _Key:
    """Where a blob lives: registry, repository, digest (a local sink is its own place)."""
    return (sink.registry or id(sink), sink.repository, digest)


def _same(a: object, b: object) -> bool:
    return a is b


def _ignore(_: int) -> None:
    pass
