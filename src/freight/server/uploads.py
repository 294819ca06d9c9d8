"""Blob upload sessions: the `UploadStore` protocol every storage backend implements.

A session's state lives in the store itself, never only in a process: its repository and
the bytes received so far, in order. Its offset is how many bytes the store holds, so any
process (a uvicorn worker, a replica behind a load balancer, the same server after a
restart) resumes any session, and a replayed or stale chunk is detected by its offset.

Bytes are hashed as they stream in; hashlib cannot save its state, so the running hash
lives in the memory of the process that received the bytes. When it does not cover the
whole session (another process took part, or a restart), the digest is computed again from
the stored bytes when the session closes.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from freight.digest import Digest, Hasher

SESSION_ID = re.compile(r"[0-9a-f]{32}")  # what we hand out; anything else is unknown
MAX_LIVE_SESSIONS = 10_000  # in-memory companions kept; older ones just lose their hash


class UploadConflict(Exception):
    """Another writer stored bytes at this offset of the session first (answer 416)."""


class UploadStore(Protocol):
    """Upload sessions kept in the store; every method but `lock` may block (I/O).

    `direct` is True where a body holding the whole blob is cheaper stored by `ingest`,
    straight to its place, than through a session (S3: no segments to copy afterwards).
    """

    direct: bool

    def start(self, repo: str) -> str:
        """Create a session for `repo` durably and return its id."""

    def size(self, repo: str, session: str) -> int | None:
        """The session's offset, or None if it does not exist or belongs to another repo."""

    def lock(self, session: str) -> asyncio.Lock:
        """Serialises this process's requests on one session (other processes: see append)."""

    async def append(self, session: str, offset: int, chunks: AsyncIterator[bytes]) -> int:
        """Append `chunks` at `offset` and return how many bytes were stored.

        What arrived before a failure of the stream is kept. Raises UploadConflict when the
        session is no longer at `offset` (another process appended first).
        """

    def truncate(self, session: str, size: int) -> None:
        """Cut the session back to `size` bytes (a chunk that did not match its range)."""

    def digest(self, session: str, algorithm: str) -> Digest:
        """The digest of the session's bytes (may read them all back)."""

    def commit(self, session: str, repo: str, digest: Digest) -> None:
        """Store the verified bytes as blob `digest`, link it into `repo`, end the session."""

    async def ingest(self, repo: str, digest: Digest,
                     chunks: AsyncIterator[bytes]) -> tuple[Digest, int]:
        """Store a whole blob from `chunks` as `digest` in `repo` if it hashes to it;
        return (actual digest, size). Nothing is kept when the digest differs."""

    def remove(self, session: str) -> None:
        """Delete the session (cancel or after commit); it may already be gone."""

    def sessions(self) -> Iterator[tuple[str, float]]:
        """(id, time of the last write) of every session, for garbage collection."""


@dataclass
class Live:
    """In-memory companion of a session: a lock serialising its writers and the running hash."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    hasher: Hasher | None = field(default_factory=Hasher)  # None: does not cover the bytes


class LiveSessions:
    """The `Live` state of the sessions this process touched (bounded, oldest dropped)."""

    def __init__(self) -> None:
        self._live: dict[str, Live] = {}

    def new(self, session: str) -> None:
        self._bound()
        self._live[session] = Live()

    def get(self, session: str) -> Live:
        live = self._live.get(session)
        if live is None:  # a session started elsewhere or before a restart: hash unknown
            self._bound()
            live = self._live[session] = Live(hasher=None)
        return live

    def hasher_at(self, session: str, offset: int) -> Hasher | None:
        """A hasher covering exactly `offset` bytes of the session (fresh at 0), else None."""
        live = self.get(session)
        if offset == 0:
            live.hasher = Hasher()
        elif live.hasher is None or live.hasher.size != offset:
            live.hasher = None
        return live.hasher

    def known_digest(self, session: str, algorithm: str, size: int) -> Digest | None:
        hasher = self.get(session).hasher
        if hasher is not None and hasher.algorithm == algorithm and hasher.size == size:
            return hasher.digest
        return None

    def forget(self, session: str) -> None:
        self._live.pop(session, None)

    def _bound(self) -> None:
        if len(self._live) >= MAX_LIVE_SESSIONS:
            oldest = next(iter(self._live))
            if not self._live[oldest].lock.locked():
                del self._live[oldest]
