"""What the CLI shows: a live progress display on a terminal, notes and a summary on stderr,
JSON on stdout with --json.

On a terminal: one overall bar whose total is the plan's from the start, the oldest active
rows (at most `MAX_ROWS`, then "… and N more"), finished blobs as counts, and at the end one
summary line. Not a terminal (or --progress plain): notes and the summary line only.
--quiet: notes only. --progress json: JSON lines (cli/progress_json.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from freight.cli.progress_view import (
    MAX_ROWS,
    MIN_RATE_SECONDS,
    Frame,
    Row,
    Tracker,
    amount_text,
    clock_text,
    counts_text,
    plan_text,
    rate_text,
    shorten,
    summary_text,
)
from freight.progress import Progress
from freight.results import ImageResult

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

REFRESH_PER_SECOND = 10  # smooth enough to read; redrawing costs the push nothing measurable
LABEL_WIDTH = 48  # a layer's name and a short path; longer labels are cut in the middle
BAR_WIDTH = 30
FIXED_WIDTH = 44  # phase, amount, rate, elapsed and the gaps between columns
SPARE_LINES = 4  # the overall line, "… and N more", the counts, the cursor's line


def result_json(result: ImageResult) -> dict[str, Any]:
    return {
        "reference": str(result.reference),
        "digest": str(result.digest),
        "size": result.size,
        "media_type": result.media_type,
        "blobs": [{"media_type": b.media_type, "digest": str(b.digest), "size": b.size,
                   "action": b.action} for b in result.blobs],
    }


def print_results(results: list[ImageResult], *, as_json: bool, dry_run: bool = False,
                  err: bool = False) -> None:
    """One line per reference written (`REF@DIGEST`), or one JSON object; a dry run lists
    each blob with what would become of it. `err`: on stderr (the tar went to stdout)."""
    for result in results:
        if as_json:
            click.echo(json.dumps({**result_json(result), "dry_run": dry_run}
                                  if dry_run else result_json(result)), err=err)
        elif dry_run:
            click.echo(f"would write {result.reference}", err=err)
            for b in result.blobs:
                verb = "send" if b.action == "planned" else str(b.action)
                click.echo(f"  {verb:<8} {b.digest.short:<19} {_size(b.size):>10}  "
                           f"{b.media_type}", err=err)
        else:
            click.echo(result.pinned, err=err)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def echo_note(text: str) -> None:
    click.echo(f"freight: note: {text}", err=True)


AUTO, PLAIN, JSON = "auto", "plain", "json"
progress_option = click.option(
    "--progress", "progress_mode", type=click.Choice([AUTO, PLAIN, JSON]), default=AUTO,
    show_default=True, help="auto: bars on a terminal, else a summary line; plain: no bars; "
    "json: one JSON event per line on stderr (for CI).")


@contextmanager
def progress_for(*, quiet: bool, mode: str = AUTO) -> Iterator[Progress]:
    """The renderer for this run; the summary line is printed when the run ends well.
    An explicit `--progress json` wins over --quiet and --json (which only quiet the bars)."""
    if mode == JSON:
        from freight.cli.progress_json import JsonLines

        yield JsonLines()
        return
    tracker = Tracker(on_note=echo_note)
    if quiet:
        yield tracker
    elif mode == PLAIN or not sys.stderr.isatty():
        yield tracker
        if tracker.summary is not None:
            click.echo(f"freight: {summary_text(tracker.summary)}", err=True)
    else:
        with _live(tracker) as console:
            yield tracker
        if tracker.summary is not None:
            console.print(f"freight: {summary_text(tracker.summary)}", markup=False,
                          highlight=False)


@contextmanager
def _live(tracker: Tracker) -> Iterator[Console]:
    """A rich Live display on stderr, redrawn from its own thread; gone when it stops."""
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=True)
    tracker.set_on_note(lambda text: console.print(f"freight: note: {text}", markup=False,
                                                   highlight=False))

    def draw() -> RenderableType:  # the terminal's size now: it may have been resized
        rows = max(min(MAX_ROWS, console.height - SPARE_LINES), 1)
        return render(tracker.frame(max_rows=rows), console.width)

    live = Live(get_renderable=draw, console=console, refresh_per_second=REFRESH_PER_SECOND,
                transient=True)
    with live:
        yield console


def render(frame: Frame, width: int) -> RenderableType:
    """The overall line, the active rows, "… and N more", the counts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    bar = min(BAR_WIDTH, max(10, (width - FIXED_WIDTH) // 3))
    label = max(min(LABEL_WIDTH, width - FIXED_WIDTH - bar), 8)
    grid = Table.grid(padding=(0, 1))
    for column in ({}, {"width": label}, {"width": bar}, {"justify": "right"}, {"justify": "right"},
                   {"justify": "right"}):
        grid.add_column(no_wrap=True, overflow="crop", **column)
    grid.add_row(*_overall(frame, label, bar))
    for row in frame.rows:
        grid.add_row(*_row(row, label, bar))
    lines: list[RenderableType] = [grid]
    if frame.hidden:
        lines.append(Text(f"  … and {frame.hidden} more", no_wrap=True, overflow="ellipsis"))
    if frame.counts:
        lines.append(Text(f"  {counts_text(frame.counts)}", no_wrap=True, overflow="ellipsis"))
    return Group(*lines)


def _overall(frame: Frame, label: int, bar: int) -> list[RenderableType]:
    from rich.text import Text

    rate = rate_text(frame.moved, frame.elapsed) if frame.elapsed >= MIN_RATE_SECONDS else ""
    if frame.plan is None:  # an engine that does not plan: no total to draw a bar against
        return [Text("working", style="bold"), "", "", amount_text(frame.moved, 0), rate,
                clock_text(frame.elapsed)]
    plan = frame.plan
    # a plan of 0 bytes is done from the start: a full bar, not a pulsing one
    whole = _bar(frame.done, plan.total, bar) if plan.total else _bar(1, 1, bar)
    return [Text(plan.verb, style="bold"), shorten(plan_text(plan), label),
            whole, amount_text(frame.done, plan.total), rate, clock_text(frame.elapsed)]


def _row(row: Row, label: int, bar: int) -> list[RenderableType]:
    return [f"  {row.phase.value}", shorten(row.label, label), _bar(row.done, row.total, bar),
            amount_text(row.done, row.total), "", ""]


def _bar(done: int, total: int, width: int) -> RenderableType:
    """A bar; one of unknown size (total 0) pulses."""
    from rich.progress_bar import ProgressBar

    if total <= 0:
        return ProgressBar(total=None, width=width)
    return ProgressBar(total=total, completed=done, width=width)
