"""Where images go. A sink stores blobs and manifests; the engine (copy.py) drives it.

Every sink has the same small surface (`Sink`); registries add mounts and upload sessions,
local sinks answer `mount` with a plain "no".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from freight.digest import Digest


class Sink(Protocol):
    repository: str

    def has_blob(self, digest: Digest) -> bool:
        """True when the blob is already there (and so need not be sent)."""

    def mount(self, digest: Digest, source: str) -> str | None:
        """Take the blob from another repository: None if done, else an upload session."""

    def cancel(self, session: str) -> None:
        """Abandon an upload session returned by `mount`."""

    def upload(self, digest: Digest, size: int, opener: Callable[[], Any], *,
               session: str | None = None, verify: bool = True,
               progress: Callable[[int], None] = ..., what: str = "blob") -> None:
        """Store a blob, verifying digest and size while it streams."""

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Digest:
        """Store a manifest under a tag or its digest."""
