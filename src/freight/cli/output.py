"""What the CLI shows: a rich progress display on a terminal, notes on stderr, JSON."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from freight.progress import Phase, Plan, Progress, Silent, Summary
from freight.results import Action, ImageResult


def result_json(result: ImageResult) -> dict[str, Any]:
    return {
        "reference": str(result.reference),
        "digest": str(result.digest),
        "size": result.size,
        "media_type": result.media_type,
        "blobs": [{"media_type": b.media_type, "digest": str(b.digest), "size": b.size,
                   "action": b.action} for b in result.blobs],
    }


class NotesOnly(Silent):
    """No bars (not a terminal, or --quiet): only notes, on stderr."""

    def note(self, text: str) -> None:
        click.echo(f"freight: note: {text}", err=True)


class Bars:
    """One bar per blob and phase, plus notes, drawn by rich on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichProgress

        self.console = Console(stderr=True)
        self.bars = RichProgress(TextColumn("{task.description}", justify="left"), BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(), console=self.console,
                                 transient=False)
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._overall = self.bars.add_task("[bold]all blobs", total=0)

    def begin(self, plan: Plan) -> None:
        pass

    def overall(self, n: int) -> None:
        pass

    def end(self, summary: Summary) -> None:
        pass

    def blob_start(self, key: str, label: str, total: int, phase: Phase) -> None:
        with self._lock:
            task = self.bars.add_task(_short(label), total=total)
            self._tasks[key] = task
            overall = self.bars.tasks[self._overall]
            self.bars.update(self._overall, total=(overall.total or 0) + total)

    def blob_advance(self, key: str, n: int) -> None:
        task = self._tasks.get(key)
        if task is not None:
            self.bars.advance(task, n)
            self.bars.advance(self._overall, n)

    def blob_done(self, key: str, outcome: Action | None) -> None:
        with self._lock:
            task = self._tasks.pop(key, None)
        if task is not None:
            self.bars.update(task, completed=self.bars.tasks[task].total)
        elif outcome in ("skipped", "mounted"):
            self.console.print(f"  {_short(key)}: {outcome}", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(f"note: {text}", highlight=False)


def _short(label: str, width: int = 48) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


@contextmanager
def progress_for(*, quiet: bool) -> Iterator[Progress]:
    if quiet or not sys.stderr.isatty():
        yield NotesOnly()
        return
    bars = Bars()
    with bars.bars:
        yield bars
