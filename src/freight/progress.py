"""Progress events from the engine. Renderers live with the CLI; the library default is silent.

The engine plans a whole transfer before it moves a byte, so `begin` gives the total from the
start: `total` is the size of every distinct blob as the source holds it. `overall(n)` then
reports source bytes dealt with (read to compress, sent as they are, or found already at the
destination), so the overall bar never moves backwards and reaches `total` exactly.
Per-blob rows (`blob_start`/`blob_advance`/`blob_done`) show what is being worked on now;
their bytes are in the row's own unit (compressed bytes for an upload after compression).
A row's `label` names the blob ("layer 2 of app:1 (abc/layer.tar)"), not what is done to
it: renderers show the `phase` as the verb. A blob found at the destination (skipped,
mounted) may get `blob_done` with no `blob_start` before it: no row, only a count.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from freight.results import Action


class Phase(StrEnum):
    """What a progress row measures."""

    COMPRESS = "compress"
    DECOMPRESS = "decompress"
    UPLOAD = "upload"  # to a registry
    DOWNLOAD = "download"  # from a registry into a local layout or archive
    WRITE = "write"  # local to local


@dataclass(frozen=True)
class Plan:
    verb: str  # "push", "pull", "copy"
    images: int
    blobs: int  # distinct blobs to check or move (configs and layers)
    total: int  # their bytes, as the source holds them


@dataclass(frozen=True)
class Summary:
    verb: str
    images: int
    uploaded: int  # blobs sent (or written, for local destinations)
    skipped: int
    mounted: int
    bytes_sent: int
    seconds: float
    dry_run: bool = False
    external: int = 0  # non-distributable layers, left at their URLs


class Progress(Protocol):
    """What the engine reports while it works; every method must be cheap and thread-safe."""

    def begin(self, plan: Plan) -> None:
        """Once, before any blob moves."""

    def blob_start(self, key: str, label: str, total: int, phase: Phase) -> None:
        """A row starts: `total` bytes expected (0 if unknown)."""

    def blob_advance(self, key: str, n: int) -> None:
        """`n` more bytes of row `key` are done."""

    def blob_done(self, key: str, action: Action | None) -> None:
        """Row `key` finished (None: a phase ended, e.g. compression before the upload)."""

    def overall(self, n: int) -> None:
        """`n` more bytes of the plan's total are dealt with."""

    def note(self, text: str) -> None:
        """Something the user should know (a platform missing from an archive, a fallback)."""

    def end(self, summary: Summary) -> None:
        """Once, after the last manifest or tag is written (not called on failure)."""


class Silent:
    """Reports nothing."""

    def begin(self, plan: Plan) -> None:
        pass

    def blob_start(self, key: str, label: str, total: int, phase: Phase) -> None:
        pass

    def blob_advance(self, key: str, n: int) -> None:
        pass

    def blob_done(self, key: str, action: Action | None) -> None:
        pass

    def overall(self, n: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def end(self, summary: Summary) -> None:
        pass
