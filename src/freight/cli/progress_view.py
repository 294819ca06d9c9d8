"""The progress display's model: engine events in, a `Frame` to draw out. No I/O, no rich.

`Tracker` implements the `Progress` protocol by keeping counts under one lock; a renderer
asks for a `Frame` when it redraws (rich does so from its own thread, ~10 times a second),
so an event costs a dictionary look-up and an addition, whatever the display.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from freight.progress import Phase, Plan, Summary
from freight.results import Action

MAX_ROWS = 6  # docker-like: -j 4 uploads plus the compression in flight fit, on 24 lines
TRANSFER_PHASES = frozenset({Phase.UPLOAD, Phase.DOWNLOAD, Phase.WRITE})  # bytes that move
_PAST = {"push": "pushed", "pull": "pulled", "copy": "copied"}
_SENT = {"pull": "downloaded"}  # what `Summary.uploaded` means, by verb; default "sent"
_VERBS = frozenset(phase.value for phase in Phase)
# blobs that moved first, then those that did not need to
_COUNT_ORDER = (Action.UPLOADED, Action.DOWNLOADED, Action.WRITTEN, Action.PLANNED,
                Action.SKIPPED, Action.MOUNTED)
MIN_RATE_SECONDS = 1.0  # a rate over less than a second is noise (TCP buffers filling)


@dataclass(frozen=True)
class Row:
    """One active blob and phase."""

    label: str  # what the blob is, as the engine names it (without a leading verb)
    phase: Phase
    done: int  # never above `total` when `total` is known
    total: int  # 0: unknown


@dataclass(frozen=True)
class Frame:
    """What the display shows at one moment."""

    plan: Plan | None  # None until `begin` (an engine that does not plan)
    done: int  # bytes of `plan.total` dealt with, never above it
    rows: tuple[Row, ...]  # the oldest active rows, at most `max_rows`
    hidden: int  # active rows not in `rows`
    counts: tuple[tuple[Action, int], ...]  # finished blobs: moved first, no zeros
    moved: int  # bytes uploaded, downloaded or written so far (not compression)
    elapsed: float  # seconds since `begin` (or since the tracker was made)


@dataclass
class _Active:
    label: str
    phase: Phase
    total: int
    done: int = 0


class Tracker:
    """Progress events → counts; thread-safe; `frame()` for the renderer."""

    def __init__(self, *, on_note: Callable[[str], None] = lambda _: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._on_note, self._clock = on_note, clock
        self._lock = threading.Lock()
        self._started = clock()
        self._plan: Plan | None = None
        self._done = 0
        self._moved = 0
        self._rows: dict[str, _Active] = {}  # insertion order = start order: oldest first
        self._counts: Counter[Action] = Counter()
        self.summary: Summary | None = None

    def set_on_note(self, on_note: Callable[[str], None]) -> None:
        """Where notes go from now on (a live display prints them above itself)."""
        self._on_note = on_note

    def begin(self, plan: Plan) -> None:
        with self._lock:
            self._plan, self._started = plan, self._clock()

    def blob_start(self, key: str, label: str, total: int, phase: Phase) -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                self._rows[key] = _Active(blob_label(label), phase, max(total, 0))
            else:  # the same blob again (a new phase, a retry): keep its place, restart it
                row.label, row.phase, row.total = blob_label(label), phase, max(total, 0)
                row.done = 0

    def blob_advance(self, key: str, n: int) -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return
            row.done += n
            if row.phase in TRANSFER_PHASES:
                self._moved += n

    def blob_done(self, key: str, action: Action | None) -> None:
        with self._lock:
            self._rows.pop(key, None)
            if action is not None:
                self._counts[action] += 1

    def overall(self, n: int) -> None:
        with self._lock:
            self._done += n

    def note(self, text: str) -> None:
        self._on_note(text)

    def end(self, summary: Summary) -> None:
        with self._lock:
            self.summary = summary

    def frame(self, *, max_rows: int = MAX_ROWS) -> Frame:
        with self._lock:
            active = list(self._rows.values())
            shown = tuple(_row(a) for a in active[:max(max_rows, 0)])
            total = self._plan.total if self._plan is not None else 0
            return Frame(self._plan, min(self._done, total), shown, len(active) - len(shown),
                         tuple((a, self._counts[a]) for a in _COUNT_ORDER if self._counts[a]),
                         self._moved, max(self._clock() - self._started, 0.0))


def _row(active: _Active) -> Row:
    done = min(active.done, active.total) if active.total else active.done
    return Row(active.label, active.phase, done, active.total)


def blob_label(label: str) -> str:
    """Today's engine starts labels with the phase ("upload layer 2…"); the row shows it."""
    first, _, rest = label.partition(" ")
    return rest if rest and first in _VERBS else label


def counts_text(counts: tuple[tuple[Action, int], ...]) -> str:
    """`12 uploaded, 3 skipped, 1 mounted`."""
    return ", ".join(f"{n} {action}" for action, n in counts)


def human_bytes(n: int) -> str:
    """Decimal units, as docker and podman print them: `812.4 MB`."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def rate_text(n: int, seconds: float) -> str:
    """`41.2 MB/s`, or "" when nothing moved yet (never `?`)."""
    return f"{human_bytes(int(n / seconds))}/s" if n > 0 and seconds > 0 else ""


def amount_text(done: int, total: int) -> str:
    """`312.4/800.0 MB` (one unit, the total's); `12.0 MB` with no total; "" for nothing."""
    if total <= 0:
        return human_bytes(done) if done else ""
    whole = human_bytes(total)
    if whole.endswith(" B"):
        return f"{done}/{whole}"
    unit = whole.rsplit(" ", 1)[1]
    scale = 1000 ** ("kB", "MB", "GB", "TB").index(unit) * 1000
    return f"{done / scale:.1f}/{whole}"


def clock_text(seconds: float) -> str:
    """`0:07`, `12:34`, `1:02:03`."""
    whole = int(seconds)
    hours, minutes, secs = whole // 3600, whole // 60 % 60, whole % 60
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def plan_text(plan: Plan) -> str:
    """`2 images, 41 blobs` (the verb has a column of its own)."""
    return f"{_n(plan.images, 'image')}, {_n(plan.blobs, 'blob')}"


def summary_text(summary: Summary) -> str:
    """The one line printed at the end: images, blobs by fate, bytes, time, rate."""
    sent = _SENT.get(summary.verb, "sent")
    blobs = (f"{_n(summary.uploaded, 'blob')} {'to send' if summary.dry_run else sent}, "
             f"{summary.skipped} skipped, {summary.mounted} "
             f"{'to mount' if summary.dry_run else 'mounted'}")
    if summary.external:
        blobs += f", {summary.external} non-distributable left at {_its(summary.external)} URLs"
    if summary.dry_run:
        return (f"dry run: would {summary.verb} {_n(summary.images, 'image')}: {blobs}; "
                f"{human_bytes(summary.bytes_sent)}")
    rate = rate_text(summary.bytes_sent, summary.seconds)
    return (f"{_PAST.get(summary.verb, summary.verb)} {_n(summary.images, 'image')}: {blobs}; "
            f"{human_bytes(summary.bytes_sent)} in {summary.seconds:.1f} s"
            + (f" ({rate})" if rate else ""))


def _its(count: int) -> str:
    return "its" if count == 1 else "their"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def shorten(label: str, width: int) -> str:
    """At most `width` characters, cut in the middle, a trailing `(…)` kept whole-bracketed:
    `layer 2 of registry.example/team/app:1 (0123…cdef/layer.tar)` →
    `layer 2 of regi…app:1 (01…/layer.tar)`.
    """
    if len(label) <= width:
        return label
    head, sep, tail = label.rpartition(" (")
    if not sep or not tail.endswith(")") or width < 12:
        return _middle(label, width)
    inner = tail[:-1]
    inner_width = max(min(len(inner), max(width // 3, 5)), width - 3 - len(head))
    # a layer's number starts the head; a path's end names the file
    head = _middle(head, width - inner_width - 3, start=2 / 3)
    return f"{head} ({_middle(inner, inner_width, start=1 / 3)})"


def _middle(text: str, width: int, *, start: float = 1 / 2) -> str:
    """`text` cut to `width` by an ellipsis; `start` of what is kept comes from its start."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    left = int((width - 1) * start)
    return f"{text[:left]}…{text[len(text) - (width - 1 - left):]}"
