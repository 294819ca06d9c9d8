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
from freight.server.storage.base import SessionState
from freight.server.storage.filesystem import fsync_dir
from freight.server.threads import offload
from freight.server.uploads import UploadConflict

if TYPE_CHECKING:
    from freight.server.storage.filesystem import FilesystemStorage

WRITE_BATCH = 4 << 20  # bytes handed to the writer thread at once: few hops, bounded memory
READ_CHUNK = 1 << 20


class FilesystemUploads(SessionState):
    """Sessions under `root/uploads`; staging under `root/tmp` (same filesystem)."""

    def __init__(self, storage: FilesystemStorage) -> None:
        super().__init__()
        self.storage = storage
        self.dir = storage.root / "uploads"
        self.tmp = storage.tmp
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

    def _owner(self, session: str) -> str | None:
        try:
            return (self.dir / session / "repo").read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _stored(self, session: str) -> int | None:
        try:
            return self.data_path(session).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _read_back(self, session: str) -> Iterator[bytes]:
        with open(self.data_path(session), "rb") as f:
            while chunk := f.read(READ_CHUNK):
                yield chunk

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
                raise self.conflict(session)
        except BaseException:
            file.close()
            raise
        return file

    def truncate(self, session: str, size: int) -> None:
        os.truncate(self.data_path(session), size)
        self.truncated(session, size)

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
