"""`--progress json`: the engine's events as JSON lines on stderr, for CI logs and tools.

One object per line, each with an `event` field: `begin` (verb, images, blobs, total),
`blob_start` (key, label, phase, total), `blob_done` (key, action: null when only a phase
ended), `overall` (done, total: at most one line per whole percent), `note` (text) and `end`
(the summary's fields). Per-blob byte counts are not sent: per MiB, they would drown a log.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from typing import Any, TextIO

from freight.cli.progress_view import blob_label
from freight.progress import Phase, Plan, Summary
from freight.results import Action

PERCENT = 100  # overall lines per run at most: a log stays readable, a tool still sees motion


class JsonLines:
    """Writes each event as one line; thread-safe."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stderr
        self._lock = threading.Lock()
        self._total = 0
        self._done = 0
        self._step = -1  # the last whole percent written

    def _write(self, event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, **fields}, separators=(",", ":"))
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def begin(self, plan: Plan) -> None:
        with self._lock:
            self._total = plan.total
        self._write("begin", **dataclasses.asdict(plan))

    def blob_start(self, key: str, label: str, total: int, phase: Phase) -> None:
        self._write("blob_start", key=key, label=blob_label(label), phase=phase.value,
                    total=total)

    def blob_advance(self, key: str, n: int) -> None:
        pass

    def blob_done(self, key: str, action: Action | None) -> None:
        self._write("blob_done", key=key, action=None if action is None else action.value)

    def overall(self, n: int) -> None:
        with self._lock:
            self._done = min(self._done + n, self._total)
            done, total = self._done, self._total
            step = done * PERCENT // total if total else PERCENT
            if step == self._step:
                return
            self._step = step
        self._write("overall", done=done, total=total)

    def note(self, text: str) -> None:
        self._write("note", text=text)

    def end(self, summary: Summary) -> None:
        self._write("end", **dataclasses.asdict(summary))
