"""Garbage collection: remove blobs no manifest references, and stale uploads.

Mark: every manifest revision of every repository, with its config, layers and child
manifests, is live. Sweep: unreferenced blobs and the repository links to them go, but only
once they are older than `blob_grace`, because a client pushes layers first and the manifest
that references them last; upload sessions untouched for `upload_ttl` go too (distribution
purges after a week). Safe to run next to a serving registry for anything older than the
grace period; `serve --gc` runs it before accepting requests.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from freight.digest import Digest
from freight.errors import SourceError
from freight.manifest import load_json
from freight.server.storage import FilesystemStorage, iter_repositories

DEFAULT_BLOB_GRACE = 3600.0  # an hour: ample time between a layer upload and its manifest
DEFAULT_UPLOAD_TTL = 7 * 24 * 3600.0  # a week, like distribution's upload purging


@dataclass
class Collected:
    """What a collection removed (or would remove, on a dry run)."""

    blobs: int = 0
    bytes: int = 0
    links: int = 0
    uploads: int = 0
    temp_files: int = 0


def collect(root: Path, *, blob_grace: float = DEFAULT_BLOB_GRACE,
            upload_ttl: float = DEFAULT_UPLOAD_TTL, dry_run: bool = False) -> Collected:
    """Collect garbage under the registry root `root`; see the module for the rules."""
    storage, now, done = FilesystemStorage(root), time.time(), Collected()
    live = _marked(storage)
    for link in _layer_links(storage):
        digest = Digest(link.parent.name, link.name)
        if digest in live or _younger(link, now - blob_grace):
            live.add(digest)
        elif _unlink(link, dry_run):
            done.links += 1
    for path in _files_below(storage.root / "blobs", depth=2):
        if Digest(path.parent.parent.name, path.name) in live or _younger(path, now - blob_grace):
            continue
        size = path.stat().st_size
        if _unlink(path, dry_run):
            done.blobs, done.bytes = done.blobs + 1, done.bytes + size
    done.uploads = _sweep(storage.root / "uploads", now - upload_ttl, dry_run)
    done.temp_files = _sweep(storage.tmp, now - blob_grace, dry_run)
    return done


def _marked(storage: FilesystemStorage) -> set[Digest]:
    """Every manifest revision and every blob or manifest one references."""
    live: set[Digest] = set()
    for repo in iter_repositories(storage.root / "repositories"):
        revisions = storage.repo_path(repo) / "_manifests" / "revisions"
        for path in _files_below(revisions, depth=1):
            digest = Digest(path.parent.name, path.name)
            live.add(digest)
            live.update(_references(storage, digest))
    return live


def _references(storage: FilesystemStorage, digest: Digest) -> Iterator[Digest]:
    try:
        document = load_json(storage.blob_path(digest).read_bytes(), "manifest")
    except (OSError, SourceError):
        return
    descriptors = [document.get("config"), *(document.get("layers") or []),
                   *(document.get("manifests") or [])]
    for descriptor in descriptors:
        if isinstance(descriptor, dict) and Digest.is_valid(str(descriptor.get("digest"))):
            yield Digest.parse(str(descriptor["digest"]))


def _layer_links(storage: FilesystemStorage) -> Iterator[Path]:
    for repo in iter_repositories(storage.root / "repositories"):
        yield from _files_below(storage.repo_path(repo) / "_layers", depth=1)


def _files_below(base: Path, *, depth: int) -> Iterator[Path]:
    """Files exactly `depth` directory levels below `base`."""
    pattern = "/".join(["*"] * (depth + 1))
    return (p for p in base.glob(pattern) if p.is_file()) if base.is_dir() else iter(())


def _younger(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime > cutoff
    except FileNotFoundError:
        return True  # already gone: nothing to do


def _unlink(path: Path, dry_run: bool) -> bool:
    if dry_run:
        return True
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _sweep(directory: Path, cutoff: float, dry_run: bool) -> int:
    """Remove entries of `directory` (files or trees) not modified since `cutoff`."""
    removed = 0
    for entry in directory.iterdir() if directory.is_dir() else ():
        if _newest_mtime(entry) > cutoff:
            continue
        removed += 1
        if not dry_run:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else _unlink(entry, False)
    return removed


def _newest_mtime(entry: Path) -> float:
    """Latest modification time of `entry` and (for a directory) the files in it."""
    try:
        times = [entry.stat().st_mtime]
        if entry.is_dir():
            times += [os.stat(p).st_mtime for p in entry.iterdir()]
    except FileNotFoundError:
        return float("inf")
    return max(times)
