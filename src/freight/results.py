"""What every transfer returns: one result per reference written, and what each blob took."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from freight.digest import Digest
from freight.reference import Reference


class Action(StrEnum):
    """What became of one blob at the destination."""

    UPLOADED = "uploaded"  # sent to a registry
    SKIPPED = "skipped"  # the destination had it already
    MOUNTED = "mounted"  # taken from another repository of the same registry
    DOWNLOADED = "downloaded"  # from a registry into a local layout or archive
    WRITTEN = "written"  # from one local layout or archive into another
    PLANNED = "planned"  # a dry run: would be sent
    EXTERNAL = "external"  # a non-distributable layer, left at its URLs (never copied)


@dataclass(frozen=True)
class BlobResult:
    media_type: str
    digest: Digest
    size: int
    action: Action


@dataclass(frozen=True)
class ImageResult:
    """One reference written: its digest, and what happened to each blob."""

    reference: Reference | str  # a Reference for registries; a location string for local sinks
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
