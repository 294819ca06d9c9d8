"""`Storage` on a local directory: safe for concurrent writers (threads or processes) and
crashes. The layout is in base.py; upload sessions are in fs_uploads.py.

Every write goes to a file in tmp/, is fsynced and renamed into place, so a crash never
leaves a partial file visible.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from freight.digest import Digest
from freight.errors import FreightError
from freight.server.storage import base
from freight.server.storage.base import Stamped, StoredBlob, TagEntry


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
        from freight.server.storage.fs_uploads import FilesystemUploads

        self.root = Path(root)
        self.location = str(self.root)
        self.tmp = self.root / "tmp"
        for sub in ("blobs", "repositories", "uploads", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.uploads = FilesystemUploads(self)

    # -- paths -----------------------------------------------------------------------------

    def blob_path(self, digest: Digest) -> Path:
        return self.root / base.blob_key(digest)

    def repo_path(self, repo: str) -> Path:
        return self.root / base.repo_key(repo)

    def _layer_link(self, repo: str, digest: Digest) -> Path:
        return self.root / base.layer_key(repo, digest)

    def _revision(self, repo: str, digest: Digest) -> Path:
        return self.root / base.revision_key(repo, digest)

    def _tag(self, repo: str, tag: str) -> Path:
        return self.root / base.tag_key(repo, tag)

    def _referrer(self, repo: str, subject: Digest, digest: Digest) -> Path:
        return self.root / base.referrer_key(repo, subject, digest)

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

    def blob_url(self, digest: Digest) -> str | None:
        return None

    def ingest_blob(self, repo: str, digest: Digest, source: Path) -> None:
        # Replacing an existing copy is harmless (same bytes; open readers keep the old inode)
        # and guarantees the blob is present when the link appears, even next to a gc.
        self.place(source, self.blob_path(digest))
        self.write_atomic(self._layer_link(repo, digest), b"")

    def link_blob(self, repo: str, digest: Digest) -> None:
        self.write_atomic(self._layer_link(repo, digest), b"")

    def mount_blob(self, repo: str, source_repo: str, digest: Digest) -> bool:
        if self.blob_size(source_repo, digest) is None:
            return False
        self.link_blob(repo, digest)
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
        found = []
        for link in _files(self.root / base.referrers_key(repo, subject), depth=1):
            digest = Digest(link.parent.name, link.name)
            if self.manifest_type(repo, digest) is not None:  # skip deleted referrers
                found.append(digest)
        return sorted(found)

    # -- for garbage collection ----------------------------------------------------------------

    def revisions(self, repo: str) -> list[Stamped]:
        return _stamped(self.repo_path(repo) / "_manifests" / "revisions")

    def layer_links(self, repo: str) -> list[Stamped]:
        return _stamped(self.repo_path(repo) / "_layers")

    def tag_entries(self, repo: str) -> list[TagEntry]:
        entries = []
        for tag in self.tags(repo) or []:
            try:
                path = self._tag(repo, tag)
                mtime, digest = path.stat().st_mtime, Digest.parse(path.read_text().strip())
            except (OSError, FreightError):
                continue
            entries.append(TagEntry(tag, digest, mtime))
        return entries

    def stored_blobs(self) -> Iterator[StoredBlob]:
        for path in _files(self.root / "blobs", depth=2):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            yield StoredBlob(Digest(path.parent.parent.name, path.name), stat.st_size,
                             stat.st_mtime)

    def read_blob(self, digest: Digest, limit: int) -> bytes:
        with open(self.blob_path(digest), "rb") as f:
            return f.read(limit)

    def delete_blob_data(self, digest: Digest) -> None:
        _remove(self.blob_path(digest))

    def purge_temporary(self, cutoff: float, *, dry_run: bool) -> int:
        removed = 0
        for entry in list(self.tmp.iterdir()):
            try:
                if entry.stat().st_mtime > cutoff:
                    continue
                if not dry_run:
                    _remove_tree(entry)
            except FileNotFoundError:
                continue
            removed += 1
        return removed


def _stamped(base_dir: Path) -> list[Stamped]:
    """Digests of the `<alg>/<hex>` files under `base_dir` with their modification times."""
    found = []
    for path in _files(base_dir, depth=1):
        try:
            found.append(Stamped(Digest(path.parent.name, path.name), path.stat().st_mtime))
        except FileNotFoundError:
            continue
    return found


def _remove_tree(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        _remove(path)


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
