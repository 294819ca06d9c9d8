"""Where images go. A sink stores blobs and manifests; the engine (freight.engine) drives it.

Every sink has the same surface (`Sink`), capabilities included, so the engine never asks
what kind of sink it holds: a local sink answers `mount` with False and `streamer` with None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from freight.digest import Digest
from freight.engine.streaming import StreamingSink
from freight.results import Action


class Sink(Protocol):
    repository: str  # the repository written to ("" for a local layout)
    registry: str | None  # the registry host, for mounts and the location cache; None if local
    stored: Action  # what storing a blob is called here (uploaded, downloaded, written)
    # May a manifest stored here name a layer not stored here (a non-distributable layer,
    # left at its URLs)? A registry and an OCI layout may; a docker archive may not.
    holds_external: bool
    # Only container images (a docker archive: `docker load` reads every config as an
    # image's), not artifacts such as Helm charts or SBOMs?
    images_only: bool

    def has_blob(self, digest: Digest) -> bool:
        """True when the blob is already there (and so need not be sent)."""

    def mount(self, digest: Digest, source: str) -> bool:
        """Take the blob from repository `source` of the same registry; True if done."""

    def upload(self, digest: Digest, size: int, opener: Callable[[], Any], *,
               verify: bool = True, progress: Callable[[int], None] = ...,
               what: str = "blob") -> None:
        """Store a blob, verifying digest and size while it streams."""

    def streamer(self) -> StreamingSink | None:
        """Where a layer can go up while it is converted, if this sink takes streams now."""

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Digest:
        """Store a manifest under a tag or its digest."""
