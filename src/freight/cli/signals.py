"""Ctrl-C and SIGTERM stop a command at once, with its clean-up, and say which signal it was.

Both raise `Stopped` in the main thread (SIGTERM would otherwise kill the process with no
`finally` run, leaving spool files and staging directories behind). The engine's threads
see the cancel token at their next block; every `finally` on the way out removes what the
command made. A second signal during that clean-up is ignored: the clean-up is bounded.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

EXIT_BASE = 128  # a shell reports death by signal N as 128 + N


class Stopped(KeyboardInterrupt):
    """The user (SIGINT) or the system (SIGTERM) asked the command to stop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_BASE + self.signum


_pending: list[int] = []  # signals that came while the command was still loading


def _note(signum: int, frame: FrameType | None) -> None:
    _pending.append(signum)


def early() -> None:
    """For the `freight` process itself, from its first import: a signal that comes while
    Python loads the command is noted (not a traceback from the middle of an import) and
    raised as `Stopped` as soon as the command starts."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _note)


def _stop(signum: int, frame: FrameType | None) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


@contextlib.contextmanager
def routed() -> Iterator[None]:
    """Route SIGINT and SIGTERM to `Stopped` while a command runs, then put back what was
    there (only the main thread can take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if _pending:
            _stop(_pending[0], None)
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, signal.default_int_handler if handler is _note else handler)


def exit_code(exc: KeyboardInterrupt) -> int:
    return exc.exit_code if isinstance(exc, Stopped) else EXIT_BASE + signal.SIGINT
