"""Where the registry keeps its content: a `Storage` protocol and the filesystem implementation.

Layout under the root (content-addressed, blobs stored once, existence per repository as in
distribution):

    blobs/<alg>/<hex[:2]>/<hex>                          the bytes of blobs and manifests
    repositories/<name>/_layers/<alg>/<hex>              empty link: blob is in this repository
    repositories/<name>/_manifests/revisions/<alg>/<hex> link holding the manifest's Content-Type
    repositories/<name>/_manifests/tags/<tag>            the digest the tag points at
    repositories/<name>/_referrers/<alg>/<subject hex>/<alg>/<hex>   empty link: a referrer
    uploads/<id>/                                        upload sessions (see uploads.py)
    tmp/                                                 staging for atomic writes

Every write goes to a file in tmp/, is fsynced and renamed into place, so a crash never
leaves a partial file visible. Repository names are validated by the caller (routes.NAME has
no `.` or `_` at the start of a component, so they cannot escape the root or collide with
the `_layers`-style directories).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from freight.digest import Digest


class Storage(Protocol):
    """The registry's content: blobs (global, linked per repository), manifests, tags.

    Methods block (file or network I/O); the app calls the slow ones in a worker thread.
    `repo` is always a validated repository name.
    """

    root: Path

    def blob_size(self, repo: str, digest: Digest) -> int | None:
        """Size of the blob if it is linked in `repo` and present, else None."""

    def open_blob(self, digest: Digest) -> BinaryIO:
        """The blob's bytes for reading; raises FileNotFoundError if absent."""

    def ingest_blob(self, repo: str, digest: Digest, source: Path) -> None:
        """Move the verified local file `source` in as `digest` and link it into `repo`."""

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


def fsync_dir(path: Path) -> None:
    """Make a rename or creation in directory `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStorage:
    """`Storage` on a local directory; safe for concurrent writers and crashes (see module)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        for sub in ("blobs", "repositories", "uploads", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- paths -----------------------------------------------------------------------------

    def blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.encoded[:2] / digest.encoded

    def repo_path(self, repo: str) -> Path:
        return self.root / "repositories" / repo

    def _layer_link(self, repo: str, digest: Digest) -> Path:
        return self.repo_path(repo) / "_layers" / digest.algorithm / digest.encoded

    def _revision(self, repo: str, digest: Digest) -> Path:
        return self.repo_path(repo) / "_manifests" / "revisions" / digest.algorithm / digest.encoded

    def _tag(self, repo: str, tag: str) -> Path:
        return self.repo_path(repo) / "_manifests" / "tags" / tag

    def _referrer(self, repo: str, subject: Digest, digest: Digest) -> Path:
        return (self.repo_path(repo) / "_referrers" / subject.algorithm / subject.encoded
                / digest.algorithm / digest.encoded)

    # -- atomic writes -----------------------------------------------------------------------

    def write_atomic(self, path: Path, data: bytes) -> None:
        """Replace `path` by `data` all at once, durably (temp file, fsync, rename)."""
        tmp = self.tmp / uuid.uuid4().hex
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.place(tmp, path)

    def place(self, tmp: Path, path: Path) -> None:
        """Rename the complete, fsynced file `tmp` to `path`, creating directories."""
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, path)
        fsync_dir(path.parent)

    # -- blobs -------------------------------------------------------------------------------

    def blob_size(self, repo: str, digest: Digest) -> int | None:
        if not self._layer_link(repo, digest).exists():
            return None
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open_blob(self, digest: Digest) -> BinaryIO:
        return open(self.blob_path(digest), "rb")

    def ingest_blob(self, repo: str, digest: Digest, source: Path) -> None:
        # Replacing an existing copy is harmless (same bytes; open readers keep the old inode)
        # and guarantees the blob is present when the link appears, even next to a gc.
        self.place(source, self.blob_path(digest))
        self.write_atomic(self._layer_link(repo, digest), b"")

    def mount_blob(self, repo: str, source_repo: str, digest: Digest) -> bool:
        if self.blob_size(source_repo, digest) is None:
            return False
        self.write_atomic(self._layer_link(repo, digest), b"")
        return True

    def unlink_blob(self, repo: str, digest: Digest) -> bool:
        return _remove(self._layer_link(repo, digest))

    # -- manifests and tags ------------------------------------------------------------------

    def put_manifest(self, repo: str, digest: Digest, content_type: str, data: bytes,
                     *, tag: str | None, subject: Digest | None) -> None:
        if not self.blob_path(digest).exists():
            self.write_atomic(self.blob_path(digest), data)
        # The revision link comes after the bytes and before the tag, so any tag or
        # revision a reader can see points at complete content.
        self.write_atomic(self._revision(repo, digest), content_type.encode())
        if subject is not None:
            self.write_atomic(self._referrer(repo, subject, digest), b"")
        if tag is not None:
            self.write_atomic(self._tag(repo, tag), str(digest).encode())

    def manifest_type(self, repo: str, digest: Digest) -> str | None:
        try:
            content_type = self._revision(repo, digest).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return content_type if self.blob_path(digest).exists() else None

    def resolve_tag(self, repo: str, tag: str) -> Digest | None:
        try:
            return Digest.parse(self._tag(repo, tag).read_text().strip())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete_manifest(self, repo: str, digest: Digest) -> bool:
        if not _remove(self._revision(repo, digest)):
            return False
        for tag in self.tags(repo) or []:
            if self.resolve_tag(repo, tag) == digest:
                _remove(self._tag(repo, tag))
        return True

    def delete_tag(self, repo: str, tag: str) -> bool:
        return _remove(self._tag(repo, tag))

    def tags(self, repo: str) -> list[str] | None:
        if not self.repo_exists(repo):
            return None
        tags_dir = self.repo_path(repo) / "_manifests" / "tags"
        return sorted(p.name for p in tags_dir.iterdir()) if tags_dir.is_dir() else []

    def repo_exists(self, repo: str) -> bool:
        base = self.repo_path(repo)
        return any((base / d).is_dir() for d in ("_layers", "_manifests"))

    def repositories(self) -> list[str]:
        return sorted(iter_repositories(self.root / "repositories"))

    def referrers(self, repo: str, subject: Digest) -> list[Digest]:
        base = self.repo_path(repo) / "_referrers" / subject.algorithm / subject.encoded
        found = []
        for link in _files(base, depth=1):
            digest = Digest(link.parent.name, link.name)
            if self.manifest_type(repo, digest) is not None:  # skip deleted referrers
                found.append(digest)
        return sorted(found)


def iter_repositories(base: Path) -> Iterator[str]:
    """Names of the repositories under `base`: directories holding `_layers` or `_manifests`."""
    for dirpath, dirnames, _ in os.walk(base):
        if "_layers" in dirnames or "_manifests" in dirnames:
            yield Path(dirpath).relative_to(base).as_posix()
        dirnames[:] = [d for d in dirnames if not d.startswith("_")]


def _files(base: Path, *, depth: int) -> Iterator[Path]:
    """Files exactly `depth` directory levels below `base` (none if `base` is missing)."""
    if not base.is_dir():
        return
    if depth == 0:
        yield from (p for p in base.iterdir() if p.is_file())
        return
    for sub in base.iterdir():
        if sub.is_dir():
            yield from _files(sub, depth=depth - 1)


def _remove(path: Path) -> bool:
    try:
        path.unlink()
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True
