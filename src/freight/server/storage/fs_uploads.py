"""Upload sessions on the local filesystem (see uploads.py for what a session is).

A session is a directory `uploads/<id>/` holding `repo` (the repository it belongs to) and
`data` (the bytes received so far, in order); the offset is the size of `data`. Several
processes on one machine may serve one session: an append holds an exclusive `flock` on
`data` and checks the offset under it, so two writers never interleave.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from freight.digest import Digest, Hasher
from freight.server.storage.filesystem import fsync_dir
from freight.server.threads import offload
from freight.server.uploads import SESSION_ID, LiveSessions, UploadConflict

if TYPE_CHECKING:
    from freight.server.storage.filesystem import FilesystemStorage

WRITE_BATCH = 4 << 20  # bytes handed to the writer thread at once: few hops, bounded memory
READ_CHUNK = 1 << 20


class FilesystemUploads:
    """Sessions under `root/uploads`; staging under `root/tmp` (same filesystem)."""

    def __init__(self, storage: FilesystemStorage) -> None:
        self.storage = storage
        self.dir = storage.root / "uploads"
        self.tmp = storage.tmp
        self._live = LiveSessions()
        self.direct = False  # a session's file is renamed into place: already one write

    def data_path(self, session: str) -> Path:
        return self.dir / session / "data"

    def start(self, repo: str) -> str:
        session = uuid.uuid4().hex
        staging = self.tmp / f"upload-{session}"
        staging.mkdir()
        (staging / "repo").write_text(repo)
        (staging / "data").touch()
        fsync_dir(staging)
        os.rename(staging, self.dir / session)
        fsync_dir(self.dir)
        self._live.new(session)
        return session

    def size(self, repo: str, session: str) -> int | None:
        if not SESSION_ID.fullmatch(session):
            return None
        try:
            if (self.dir / session / "repo").read_text() != repo:
                return None
            return self.data_path(session).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def lock(self, session: str) -> asyncio.Lock:
        return self._live.get(session).lock

    async def append(self, session: str, offset: int, chunks: AsyncIterator[bytes]) -> int:
        """See UploadStore.append.

        Writing and hashing run in a worker thread, one batch behind the receiving loop, so
        disk, hash and HTTP parsing overlap (at most two batches in memory). The data is
        flushed and fsynced before returning, also when the stream fails part way.
        """
        hasher = self._live.hasher_at(session, offset)
        with await offload(self._open_at, session, offset) as file:
            writer = _BatchWriter(file, hasher)
            try:
                async for chunk in chunks:
                    await writer.add(chunk)
            finally:
                await writer.finish()
        return writer.written

    def _open_at(self, session: str, offset: int) -> BinaryIO:
        """The session's data file, locked against other processes, if it holds exactly
        `offset` bytes; else UploadConflict (cancelled, committed, or appended meanwhile)."""
        try:
            file = open(self.data_path(session), "ab", buffering=0)  # noqa: SIM115 - returned
        except FileNotFoundError:
            raise UploadConflict(session) from None
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)  # released when the file is closed
            if os.fstat(file.fileno()).st_size != offset:  # another process appended first
                self._live.get(session).hasher = None
                raise UploadConflict(session)
        except BaseException:
            file.close()
            raise
        return file

    def truncate(self, session: str, size: int) -> None:
        os.truncate(self.data_path(session), size)
        self._live.get(session).hasher = Hasher() if size == 0 else None

    def digest(self, session: str, algorithm: str) -> Digest:
        path = self.data_path(session)
        known = self._live.known_digest(session, algorithm, path.stat().st_size)
        if known is not None:
            return known
        hasher = Hasher(algorithm)
        with open(path, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                hasher.update(chunk)
        return hasher.digest

    def commit(self, session: str, repo: str, digest: Digest) -> None:
        self.storage.ingest_blob(repo, digest, self.data_path(session))
        self.remove(session)

    async def ingest(self, repo: str, digest: Digest,
                     chunks: AsyncIterator[bytes]) -> tuple[Digest, int]:
        session = await offload(self.start, repo)
        try:
            size = await self.append(session, 0, chunks)
            actual = await offload(self.digest, session, digest.algorithm)
            if actual == digest:
                await offload(self.commit, session, repo, digest)
        finally:
            await offload(self.remove, session)
        return actual, size

    def remove(self, session: str) -> None:
        self._live.forget(session)
        doomed = self.tmp / f"doomed-{session}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.dir / session, doomed)  # atomic: no half-deleted session visible
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)

    def sessions(self) -> Iterator[tuple[str, float]]:
        for entry in list(self.dir.iterdir()):
            try:
                times = [entry.stat().st_mtime, *(p.stat().st_mtime for p in entry.iterdir())]
            except (FileNotFoundError, NotADirectoryError):
                continue
            yield entry.name, max(times)


class _BatchWriter:
    """Appends batches of chunks to a file (and a hasher) in a worker thread, one at a time."""

    def __init__(self, file: BinaryIO, hasher: Hasher | None) -> None:
        self.file, self.hasher = file, hasher
        self.batch: list[bytes] = []
        self.batch_size = 0
        self.written = 0
        self.pending: asyncio.Future[None] | None = None

    async def add(self, chunk: bytes) -> None:
        self.batch.append(chunk)
        self.batch_size += len(chunk)
        if self.batch_size >= WRITE_BATCH:
            await self._flush_batch()

    async def _flush_batch(self) -> None:
        if self.pending is not None:
            await self.pending  # never more than one batch in flight: bounded memory
            self.pending = None
        if self.batch:
            data = b"".join(self.batch)
            self.batch, self.batch_size = [], 0
            self.pending = asyncio.ensure_future(offload(self._write, data))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # unbuffered: write(2) directly, GIL released; it may write short
            view = view[self.file.write(view):]
        if self.hasher is not None:
            self.hasher.update(data)
        self.written += len(data)

    async def finish(self) -> None:
        """Write what is left and fsync."""
        await self._flush_batch()
        if self.pending is not None:
            await self.pending
        await offload(os.fsync, self.file.fileno())
