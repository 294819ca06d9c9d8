"""Blob upload sessions that live on disk and survive a restart.

A session is a directory `uploads/<id>/` holding `repo` (the repository it belongs to) and
`data` (the bytes received so far, in order). The session's offset is the size of `data`,
so whatever reached the disk before a crash is kept and the client resumes from there.

Bytes are hashed as they stream in; the hash state lives only in memory (hashlib cannot
save it), so after a restart, or when the in-memory state does not cover the whole file, the
digest is computed again from disk at close.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from freight.digest import Digest, Hasher
from freight.server.storage import fsync_dir

SESSION_ID = re.compile(r"[0-9a-f]{32}")  # what we hand out; anything else is unknown
WRITE_BATCH = 4 << 20  # bytes handed to the writer thread at once: few hops, bounded memory
READ_CHUNK = 1 << 20


@dataclass
class _Live:
    """In-memory companion of a session: a lock serialising its writers and the running hash."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    hasher: Hasher | None = field(default_factory=Hasher)  # None: does not cover `data`


class UploadStore:
    """Sessions under `root/uploads`; staging under `root/tmp` (same filesystem)."""

    def __init__(self, root: Path) -> None:
        self.dir = Path(root) / "uploads"
        self.tmp = Path(root) / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._live: dict[str, _Live] = {}

    def data_path(self, session: str) -> Path:
        return self.dir / session / "data"

    def start(self, repo: str) -> str:
        """Create a session for `repo` durably and return its id."""
        session = uuid.uuid4().hex
        staging = self.tmp / f"upload-{session}"
        staging.mkdir()
        (staging / "repo").write_text(repo)
        (staging / "data").touch()
        fsync_dir(staging)
        os.rename(staging, self.dir / session)
        fsync_dir(self.dir)
        self._live[session] = _Live()
        return session

    def size(self, repo: str, session: str) -> int | None:
        """The session's offset, or None if it does not exist or belongs to another repo."""
        if not SESSION_ID.fullmatch(session):
            return None
        try:
            if (self.dir / session / "repo").read_text() != repo:
                return None
            return self.data_path(session).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def lock(self, session: str) -> asyncio.Lock:
        return self._state(session).lock

    def _state(self, session: str) -> _Live:
        live = self._live.get(session)
        if live is None:  # a session from before a restart: its hash must be recomputed
            live = self._live[session] = _Live(hasher=None)
        return live

    async def append(self, session: str, offset: int, chunks: AsyncIterator[bytes]) -> int:
        """Append `chunks` to the session whose data is `offset` bytes long; return the count.

        Writing and hashing run in a worker thread, one batch behind the receiving loop, so
        disk, hash and HTTP parsing overlap (at most two batches in memory). The data is
        flushed and fsynced before returning, also when the stream fails part way: what
        arrived is kept, and the client can resume after it.
        """
        live = self._state(session)
        hasher = live.hasher if live.hasher is not None and live.hasher.size == offset else None
        live.hasher = hasher = Hasher() if offset == 0 else hasher
        with open(self.data_path(session), "ab", buffering=0) as file:
            writer = _BatchWriter(file, hasher)
            try:
                async for chunk in chunks:
                    await writer.add(chunk)
            finally:
                await writer.finish()
        return writer.written

    def truncate(self, session: str, size: int) -> None:
        """Cut the data back to `size` bytes (a chunk that did not match its range)."""
        os.truncate(self.data_path(session), size)
        self._state(session).hasher = Hasher() if size == 0 else None

    def digest(self, session: str, algorithm: str) -> Digest:
        """The digest of the session's data (blocking: may read the whole file)."""
        path = self.data_path(session)
        hasher = self._state(session).hasher
        if hasher is not None and hasher.algorithm == algorithm \
                and hasher.size == path.stat().st_size:
            return hasher.digest
        hasher = Hasher(algorithm)
        with open(path, "rb") as f:
            while chunk := f.read(READ_CHUNK):
                hasher.update(chunk)
        return hasher.digest

    def remove(self, session: str) -> None:
        """Delete the session (after commit or on cancel); its data may already be gone."""
        self._live.pop(session, None)
        doomed = self.tmp / f"doomed-{session}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.dir / session, doomed)  # atomic: no half-deleted session visible
        except FileNotFoundError:
            return
        shutil.rmtree(doomed, ignore_errors=True)


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
            self.pending = asyncio.ensure_future(asyncio.to_thread(self._write, data))

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
        await asyncio.to_thread(os.fsync, self.file.fileno())
