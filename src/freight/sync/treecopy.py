"""Copy one manifest tree (an index, its children, their blobs) between stores, unchanged.

Children go before parents and blobs before the manifest that needs them, so the
destination never holds a manifest whose content is missing; what the destination has
already (a HEAD says so) is skipped. The bytes are never altered: digests are equal at
both ends, which is what signatures and referrers need.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from freight import mediatypes as mt
from freight.digest import Digest
from freight.engine.workers import all_of
from freight.manifest import Descriptor, Index, Manifest
from freight.sync.store import Source, Store, Stored

BLOB_JOBS = 3  # blobs of one manifest at once; images run in parallel above this


@dataclass
class Tally:
    """What a copy moved; shared by the threads of one run (hence the lock)."""

    blobs: int = 0
    bytes: int = 0
    manifests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, *, blobs: int = 0, size: int = 0, manifests: int = 0) -> None:
        with self._lock:
            self.blobs += blobs
            self.bytes += size
            self.manifests += manifests


def copy_tree(src: Source, dst: Store, digest: Digest, *, tag: str | None = None,
              tally: Tally | None = None, fetched: tuple[bytes, str] | None = None) -> Stored:
    """Copy the manifest `digest` and everything under it; tag it `tag` at the end."""
    tally = tally or Tally()
    raw, kind = fetched or src.get_manifest(str(digest))
    if mt.is_index(kind):
        for child in Index.parse(raw, kind, f"index {digest}").manifests:
            if dst.head_manifest(str(child.digest)) is None:
                copy_tree(src, dst, child.digest, tally=tally)
    elif mt.is_manifest(kind):
        _copy_blobs(src, dst, _blobs(Manifest.parse(raw, kind, f"manifest {digest}")), tally)
    stored = dst.put_manifest(tag or str(digest), raw, kind)
    tally.add(manifests=1)
    return stored


def _blobs(manifest: Manifest) -> list[Descriptor]:
    """Config and layers, without foreign layers (registries do not store those)."""
    seen: dict[Digest, Descriptor] = {}
    for blob in (manifest.config, *manifest.layers):
        if not blob.urls:
            seen.setdefault(blob.digest, blob)
    return list(seen.values())


_held: dict[tuple[str, Digest], tuple[threading.Lock, list[int]]] = {}
_held_guard = threading.Lock()


@contextmanager
def _exclusive(dst: Store, digest: Digest) -> Iterator[None]:
    """One copy of a blob into one place (a registry) at a time: images that share a
    layer run in parallel (tags v1 and latest of an image; images on one base), and the
    second finds it there, or mounts it from the repository the first put it in, instead
    of sending it again."""
    key = (dst.place, digest)
    with _held_guard:
        lock, users = _held.setdefault(key, (threading.Lock(), [0]))
        users[0] += 1
    try:
        with lock:
            yield
    finally:
        with _held_guard:
            users[0] -= 1
            if users[0] == 0:
                del _held[key]


def _copy_blobs(src: Source, dst: Store, blobs: list[Descriptor], tally: Tally) -> None:
    def one(blob: Descriptor) -> None:
        with _exclusive(dst, blob.digest):
            if not dst.has_blob(blob.digest) and dst.put_blob(blob.digest, blob.size, src):
                tally.add(blobs=1, size=blob.size)  # sent: a mount costs no bytes

    all_of([lambda b=blob: one(b) for blob in blobs], at_once=BLOB_JOBS,  # type: ignore[misc]
           name="freight-sync-blob")
