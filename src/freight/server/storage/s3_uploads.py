"""Upload sessions in the bucket, so any replica continues any session.

    _uploads/<id>/info               {"repo": ...}, written once at the start
    _uploads/<id>/seg/<offset:016x>  the bytes received from `offset` on (one object each)

A request's body is cut into segments of `SEGMENT` bytes (the last may be shorter) and each
is stored with `If-None-Match: *`: if another replica already stored bytes at that offset,
the write fails (412) and the request is answered 416, so a session never holds two
versions of a range. The offset is the end of the contiguous segments from 0.

On commit the segments become the blob by a multipart upload whose parts are server-side
copies of the segments (`UploadPartCopy`); runs of segments smaller than S3's 5 MiB part
minimum are concatenated into one part through memory (at most `MIN_PART + SEGMENT` bytes).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from freight import jsontext
from freight.digest import Digest, Hasher
from freight.server.storage import base
from freight.server.storage.base import SessionState
from freight.server.storage.s3_multipart import (
    MIN_PART,
    SEGMENT,
    DirectWriter,
    Multipart,
    Segment,
)
from freight.server.threads import beside, offload
from freight.server.uploads import SESSION_ID

if TYPE_CHECKING:
    from freight.server.storage.s3 import S3Storage



class S3Uploads(SessionState):
    def __init__(self, storage: S3Storage) -> None:
        super().__init__()
        self.storage = storage
        self.objects = storage.objects
        self.direct = True  # segments then a copy: twice the writes of a direct upload

    def _dir(self, session: str) -> str:
        return f"_uploads/{session}/"

    def start(self, repo: str) -> str:
        session = uuid.uuid4().hex
        info = json.dumps({"repo": repo}).encode()
        self.objects.put(self._dir(session) + "info", info, exclusive=True)
        self._live.new(session)
        return session

    def size(self, repo: str, session: str) -> int | None:
        """As SessionState.size, with the session record and its segments read at once."""
        if not SESSION_ID.fullmatch(session):
            return None
        stored = beside(self._stored, session)
        if self._owner(session) != repo:
            return None
        return stored.result()

    def _owner(self, session: str) -> str | None:
        info = self.objects.get(self._dir(session) + "info")
        try:
            repo = jsontext.parse(info).get("repo") if info is not None else None
        except (ValueError, AttributeError):
            return None
        return repo if isinstance(repo, str) else None

    def _stored(self, session: str) -> int | None:
        segments = self._segments(session)  # a session gone holds none: 0, as a new one
        return segments[-1].start + segments[-1].size if segments else 0

    def _read_back(self, session: str) -> Iterator[bytes]:
        for segment in self._segments(session):
            with self.objects.reader(segment.key) as reader:
                while chunk := reader.read(1 << 20):
                    yield chunk

    def _segments(self, session: str) -> list[Segment]:
        """The stored segments that follow each other from offset 0, in order."""
        prefix = self._dir(session) + "seg/"
        found = []
        for item in self.objects.list(prefix):
            try:
                found.append(Segment(item.key, int(item.key[len(prefix):], 16), item.size))
            except ValueError:
                continue
        found.sort(key=lambda s: s.start)
        contiguous, end = [], 0
        for segment in found:
            if segment.start != end:
                break
            contiguous.append(segment)
            end += segment.size
        return contiguous

    async def append(self, session: str, offset: int, chunks: AsyncIterator[bytes]) -> int:
        writer = _SegmentWriter(self, session, offset, self._live.hasher_at(session, offset))
        try:
            async for chunk in chunks:
                await writer.add(chunk)
        finally:
            await writer.finish()
        return writer.written

    def store_segment(self, session: str, start: int, data: bytes) -> None:
        key = f"{self._dir(session)}seg/{start:016x}"
        if not self.objects.put(key, data, exclusive=True):
            raise self.conflict(session)

    def truncate(self, session: str, size: int) -> None:
        prefix = self._dir(session) + "seg/"
        doomed = [item.key for item in self.objects.list(prefix)
                  if int(item.key[len(prefix):], 16) >= size]
        self.objects.delete_many(doomed)
        self.truncated(session, size)

    def commit(self, session: str, repo: str, digest: Digest) -> None:
        if not self.storage.has_blob(digest):  # pushed before: same bytes, keep those
            self._assemble(self._segments(session), base.blob_key(digest))
        self.storage.link_blob(repo, digest)
        self.remove(session)

    def _assemble(self, segments: list[Segment], key: str) -> None:
        """Make `key` the concatenation of `segments`."""
        if len(segments) == 1:
            self.objects.copy(segments[0].key, key)
            return
        total = sum(s.size for s in segments)
        if total < MIN_PART:  # one small object: no multipart needed
            self.objects.put(key, b"".join(self._read(s) for s in segments), exclusive=True)
            return
        Multipart(self.objects, key).build(_plan(segments), self._read)

    def _read(self, segment: Segment) -> bytes:
        data = self.objects.get(segment.key)
        if data is None or len(data) != segment.size:
            raise OSError(f"upload segment {segment.key} vanished")
        return data

    async def ingest(self, repo: str, digest: Digest,
                     chunks: AsyncIterator[bytes]) -> tuple[Digest, int]:
        """Straight to the blob's key: one PUT (small) or a multipart upload completed only
        once the bytes hash to `digest`; if the blob exists, the body is only hashed."""
        exists = asyncio.ensure_future(offload(self.storage.has_blob, digest))
        writer = DirectWriter(self.objects, base.blob_key(digest), Hasher(digest.algorithm),
                              exists=exists)
        try:
            async for chunk in chunks:
                await writer.add(chunk)
            actual = await writer.finish(digest)
        finally:
            await writer.abort()
        if actual == digest:
            await offload(self.storage.link_blob, repo, digest)
        return actual, writer.hasher.size

    def remove(self, session: str) -> None:
        self._live.forget(session)
        if not SESSION_ID.fullmatch(session):
            return
        self.objects.delete(self._dir(session) + "info")  # first: the session is gone now
        self.objects.delete_many([item.key for item in self.objects.list(self._dir(session))])

    def sessions(self) -> Iterator[tuple[str, float]]:
        newest: dict[str, float] = {}
        for item in self.objects.list("_uploads/"):
            session = item.key.split("/")[1]
            newest[session] = max(newest.get(session, 0.0), item.mtime)
        yield from newest.items()


def _plan(segments: list[Segment]) -> list[list[Segment]]:
    """Parts as runs of segments: a big segment alone (copied), small ones joined to >= 5 MiB."""
    parts: list[list[Segment]] = []
    run: list[Segment] = []
    for segment in segments:
        if not run and segment.size >= MIN_PART:
            parts.append([segment])
            continue
        run.append(segment)
        if sum(s.size for s in run) >= MIN_PART:
            parts.append(run)
            run = []
    if run:
        parts.append(run)  # the last part may be small
    return parts


class _SegmentWriter:
    """Cuts a body into segments and stores each in a worker thread, one in flight."""

    def __init__(self, uploads: S3Uploads, session: str, offset: int,
                 hasher: Hasher | None) -> None:
        self.uploads, self.session, self.hasher = uploads, session, hasher
        self.position = offset
        self.batch: list[bytes] = []
        self.batch_size = 0
        self.written = 0
        self.pending: asyncio.Future[None] | None = None
        self.failed = False  # a store failed: store nothing after it (no gaps, no strays)

    async def add(self, chunk: bytes) -> None:
        while chunk:
            room = SEGMENT - self.batch_size
            self.batch.append(chunk[:room])
            self.batch_size += len(chunk[:room])
            chunk = chunk[room:]
            if self.batch_size >= SEGMENT:
                await self._flush()

    async def _flush(self) -> None:
        await self._wait()  # never more than one segment in flight: bounded memory
        if self.batch and not self.failed:
            data = b"".join(self.batch)
            self.batch, self.batch_size = [], 0
            start, self.position = self.position, self.position + len(data)
            self.pending = asyncio.ensure_future(offload(self._store, start, data))

    def _store(self, start: int, data: bytes) -> None:
        self.uploads.store_segment(self.session, start, data)
        if self.hasher is not None:
            self.hasher.update(data)
        self.written += len(data)

    async def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            try:
                await pending
            except BaseException:
                self.failed = True
                raise

    async def finish(self) -> None:
        """Store what is left (also after the stream failed: the client resumes after it)."""
        if not self.failed:
            await self._flush()
            await self._wait()
