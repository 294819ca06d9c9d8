"""The `Storage` protocol: what the registry needs of a backend (filesystem or S3).

Layout, the same on every backend (keys under the root directory or the bucket prefix;
content-addressed, blobs stored once, existence per repository as in distribution):

    blobs/<alg>/<hex[:2]>/<hex>                          the bytes of blobs and manifests
    repositories/<name>/_layers/<alg>/<hex>              empty link: blob is in this repository
    repositories/<name>/_manifests/revisions/<alg>/<hex> link holding the manifest's Content-Type
    repositories/<name>/_manifests/tags/<tag>            the digest the tag points at
    repositories/<name>/_referrers/<alg>/<subject hex>/<alg>/<hex>   empty link: a referrer
    uploads/<id>/ (filesystem), _uploads/<id>/ (S3)      upload sessions (see uploads.py)

Every object appears whole or not at all (rename on a filesystem, a PUT on S3), and a link
is written only after what it points at, so a reader never sees partial content. Repository
names are validated by the caller (routes.NAME has no `.` or `_` at the start of a
component, so they cannot escape the root or collide with the `_layers`-style keys).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from freight.digest import Digest, Hasher
from freight.server.uploads import SESSION_ID, LiveSessions, UploadConflict, UploadStore


@dataclass(frozen=True)
class Stamped:
    """A digest with the time (epoch seconds) its object was last written."""

    digest: Digest
    mtime: float


@dataclass(frozen=True)
class StoredBlob:
    digest: Digest
    size: int
    mtime: float


@dataclass(frozen=True)
class TagEntry:
    tag: str
    digest: Digest
    mtime: float


class Pieces(Protocol):
    """A blob's bytes as they come: `read` gives the next piece (b"" after the last, or
    where they end early; OSError if the store fails), `close` lets go of what is left."""

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


@runtime_checkable
class LoopBody(Pieces, Protocol):
    """Pieces arriving on the event loop (S3: s3_loop.py). Or, for splice(2)
    (server/splice.py), `detach` gives the socket they arrive on and the bytes read from
    it already (None if it cannot be spliced), and `spliced` counts the rest."""

    def detach(self) -> tuple[int, bytes] | None: ...

    def spliced(self, count: int) -> None: ...


@runtime_checkable
class LoopReadable(Protocol):
    """A blob file (of `open_blob`) that can also be read on the event loop, with no
    worker thread per piece (S3: s3_loop.py); `on_loop` gives None where it cannot."""

    async def on_loop(self, offset: int, length: int, *, whole: bool) -> LoopBody | None: ...


class Storage(Protocol):
    """The registry's content: blobs (global, linked per repository), manifests, tags.

    Methods block (file or network I/O); the app calls them in a worker thread.
    `repo` is always a validated repository name.
    """

    @property
    def location(self) -> str:
        """Where the content is, for the start-up line and messages."""

    @property
    def uploads(self) -> UploadStore: ...

    def blob_size(self, repo: str, digest: Digest) -> int | None:
        """Size of the blob if it is linked in `repo` and present, else None."""

    def open_blob(self, digest: Digest) -> BinaryIO:
        """The blob's bytes for reading (seekable, streamed); FileNotFoundError if absent
        (possibly only at the first read)."""

    def blob_url(self, digest: Digest) -> str | None:
        """A URL the client may fetch the blob from directly (a redirect), or None."""

    def link_blob(self, repo: str, digest: Digest) -> None:
        """Link a stored blob into `repo` (gc: a link it removed that a manifest needs)."""

    def mount_blob(self, repo: str, source_repo: str, digest: Digest) -> bool:
        """Link a blob of `source_repo` into `repo`; False if `source_repo` lacks it."""

    def unlink_blob(self, repo: str, digest: Digest) -> bool:
        """Remove the blob from `repo` (the bytes stay until gc); False if it was absent."""

    def put_manifest(self, repo: str, digest: Digest, content_type: str, data: bytes,
                     *, tag: str | None, subject: Digest | None) -> None:
        """Store a verified manifest, optionally tag it and record it as a referrer."""

    def manifest_type(self, repo: str, digest: Digest) -> str | None:
        """The Content-Type the manifest was pushed with, or None if not in `repo`."""

    def resolve_tag(self, repo: str, tag: str) -> Digest | None: ...

    def delete_manifest(self, repo: str, digest: Digest) -> bool:
        """Remove the manifest and every tag pointing at it; False if absent."""

    def delete_tag(self, repo: str, tag: str) -> bool: ...

    def tags(self, repo: str) -> list[str] | None:
        """Sorted tags of `repo`, or None if the repository does not exist."""

    def repositories(self) -> list[str]:
        """Sorted names of every repository."""

    def referrers(self, repo: str, subject: Digest) -> list[Digest]:
        """Manifests of `repo` whose `subject` is `subject`."""

    # -- for garbage collection ----------------------------------------------------------------

    def revisions(self, repo: str) -> list[Stamped]:
        """Every manifest revision of `repo`, with the time its link was written."""

    def layer_links(self, repo: str) -> list[Stamped]:
        """Every blob link of `repo`, with the time it was written."""

    def tag_entries(self, repo: str) -> list[TagEntry]:
        """Every tag of `repo` with its digest and the time it was last written."""

    def stored_blobs(self) -> Iterator[StoredBlob]:
        """Every blob (and manifest) in the store, linked or not."""

    def read_blob(self, digest: Digest, limit: int) -> bytes:
        """At most `limit` bytes of the blob; FileNotFoundError if absent."""

    def delete_blob_data(self, digest: Digest) -> None:
        """Remove the blob's bytes (gc only: links to it must be gone)."""

    def purge_temporary(self, cutoff: float, *, dry_run: bool) -> int:
        """Remove staging leftovers written before `cutoff`; return how many."""


def blob_key(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.encoded[:2]}/{digest.encoded}"


def repo_key(repo: str) -> str:
    return f"repositories/{repo}"


def layer_key(repo: str, digest: Digest) -> str:
    return f"{repo_key(repo)}/_layers/{digest.algorithm}/{digest.encoded}"


def revision_key(repo: str, digest: Digest) -> str:
    return f"{repo_key(repo)}/_manifests/revisions/{digest.algorithm}/{digest.encoded}"


def tag_key(repo: str, tag: str) -> str:
    return f"{repo_key(repo)}/_manifests/tags/{tag}"


def referrers_key(repo: str, subject: Digest) -> str:
    return f"{repo_key(repo)}/_referrers/{subject.algorithm}/{subject.encoded}"


def referrer_key(repo: str, subject: Digest, digest: Digest) -> str:
    return f"{referrers_key(repo, subject)}/{digest.algorithm}/{digest.encoded}"


class SessionState:
    """The session logic every `UploadStore` backend shares (uploads.py): a session is its
    repository and the bytes the store holds, and its offset is how many; the running hash
    of this process covers them or is dropped. A backend says where those live (`_owner`,
    `_stored`, `_read_back`) and calls `conflict`/`truncated` when another writer or a
    truncation moved the session under this process's hash."""

    def __init__(self) -> None:
        self._live = LiveSessions()

    def _owner(self, session: str) -> str | None:
        """The repository of an existing session, else None (blocking)."""
        raise NotImplementedError

    def _stored(self, session: str) -> int | None:
        """How many bytes the store holds for the session, None if it is gone (blocking)."""
        raise NotImplementedError

    def _read_back(self, session: str) -> Iterator[bytes]:
        """The session's bytes, in order, in bounded pieces (blocking)."""
        raise NotImplementedError

    def size(self, repo: str, session: str) -> int | None:
        """See UploadStore.size: None for ids never handed out and other repos' sessions."""
        if not SESSION_ID.fullmatch(session) or self._owner(session) != repo:
            return None
        return self._stored(session)

    def lock(self, session: str) -> asyncio.Lock:
        return self._live.get(session).lock

    def digest(self, session: str, algorithm: str) -> Digest:
        """The running hash when it covers the stored bytes, else the bytes read back."""
        size = self._stored(session)
        if size is None:
            raise FileNotFoundError(session)
        known = self._live.known_digest(session, algorithm, size)
        if known is not None:
            return known
        hasher = Hasher(algorithm)
        for chunk in self._read_back(session):
            hasher.update(chunk)
        return hasher.digest

    def conflict(self, session: str) -> UploadConflict:
        """Another process appended first: this process's hash no longer covers the bytes."""
        self._live.get(session).hasher = None
        return UploadConflict(session)

    def truncated(self, session: str, size: int) -> None:
        self._live.get(session).hasher = Hasher() if size == 0 else None
