"""A real terminal for tests: a command in a private tmux server's pane, read with
``capture-pane``, as a person would see it."""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

from .env import require_binary

PANE_TIMEOUT_SECONDS = 120  # a display that never shows what a test waits for fails it
POLL_SECONDS = 0.02
EXIT_MARK = "[pane command exited "
# rich reads these before it looks at the terminal; the pane's own size must win
_UNSET = ("COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")
_names = itertools.count()


class Pane:
    """``command`` running in a ``width`` x ``height`` terminal; ``stop()`` ends the server."""

    def __init__(self, command: Sequence[str], *, env: Mapping[str, str],
                 width: int = 120, height: int = 30) -> None:
        self.tmux = require_binary("tmux", package="tmux")
        self.socket = f"freight-test-{os.getpid()}-{next(_names)}"  # a server of our own
        unset = [arg for name in _UNSET for arg in ("-u", name)]
        inner = shlex.join(["env", *unset, *(f"{k}={v}" for k, v in env.items()), *command])
        shell = f'{inner}; echo "{EXIT_MARK}$?]"; exec sleep {PANE_TIMEOUT_SECONDS * 5}'
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), shell)

    def _tmux(self, *args: str) -> str:
        done = subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True,
                              text=True, timeout=30, check=True)
        return done.stdout

    def capture(self) -> str:
        """The screen now, one string, trailing blank lines dropped."""
        return self._tmux("capture-pane", "-p").rstrip("\n")

    def wait_for(self, ready: Callable[[str], bool], *, what: str,
                 seen: list[str] | None = None) -> str:
        """Capture until ``ready(screen)``; every screen goes to ``seen``. Fails naming
        ``what`` with the last screen if it never comes, or if the command exits first."""
        deadline = time.monotonic() + PANE_TIMEOUT_SECONDS
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if seen is not None and (not seen or seen[-1] != screen):
                seen.append(screen)
            if ready(screen):
                return screen
            if EXIT_MARK in screen:
                break
            time.sleep(POLL_SECONDS)
        raise AssertionError(f"the terminal never showed {what}; it shows:\n{screen}")

    def wait_exit(self, *, seen: list[str] | None = None) -> tuple[int, str]:
        """The command's exit status and the screen it left."""
        screen = self.wait_for(lambda s: EXIT_MARK in s, what="the command's end", seen=seen)
        status = screen.split(EXIT_MARK, 1)[1].split("]", 1)[0]
        return int(status), screen

    def stop(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30, check=False)
