"""What every transfer returns: one result per reference written."""

from __future__ import annotations

from dataclasses import dataclass

from freight.digest import Digest
from freight.engine import BlobResult
from freight.reference import Reference


@dataclass(frozen=True)
class ImageResult:
    """One reference written: its digest, and what happened to each blob."""

    reference: Reference
    digest: Digest
    size: int
    media_type: str
    blobs: tuple[BlobResult, ...]

    @property
    def pinned(self) -> str:
        """`REFERENCE@DIGEST`."""
        return f"{self.reference}@{self.digest}"


PushResult = ImageResult
PullResult = ImageResult
CopyResult = ImageResult
