"""Progress events from the engine. Renderers live with the CLI; the library default is silent."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What the engine reports while it works; every method must be cheap and thread-safe."""

    def blob_start(self, key: str, label: str, total: int) -> None:
        """A blob (or a phase of it: "compress", "upload") starts; `total` bytes expected."""

    def blob_advance(self, key: str, n: int) -> None:
        """`n` more bytes of `key` are done."""

    def blob_done(self, key: str, outcome: str) -> None:
        """`key` finished: uploaded, skipped, mounted."""

    def note(self, text: str) -> None:
        """Something the user should know (a platform missing from an archive, a fallback)."""


class Silent:
    """Reports nothing."""

    def blob_start(self, key: str, label: str, total: int) -> None:
        pass

    def blob_advance(self, key: str, n: int) -> None:
        pass

    def blob_done(self, key: str, outcome: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass
