"""Background processes for tests: start with a log file, wait until ready, always stop."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

STOP_GRACE_SECONDS = 20  # dockerd needs a few seconds to stop its containerd
READY_TIMEOUT_SECONDS = 60  # a cold dockerd on vfs can take several seconds

_running: list[Service] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    ready: Callable[[], bool], *, what: str, timeout: float = READY_TIMEOUT_SECONDS,
    interval: float = 0.1,
) -> None:
    """Poll ``ready`` every ``interval`` seconds until it returns True; raise TimeoutError
    naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


class Service:
    """One background process with its output in ``log``; stopped at the latest at exit."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,  # Ctrl-C in pytest must not kill it mid-teardown
            )
        _running.append(self)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def check_alive(self) -> None:
        """Raise with the log tail when the process has died."""
        if not self.alive:
            raise RuntimeError(f"{self.argv[0]} exited {self.process.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL; idempotent."""
        if self in _running:
            _running.remove(self)
        if not self.alive:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            # a process stuck in the kernel (D state) outlives even SIGKILL for a while: a
            # fixture's teardown must not fail the test for it
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_GRACE_SECONDS)


@atexit.register
def _stop_all() -> None:
    for service in list(reversed(_running)):
        with contextlib.suppress(Exception):
            service.stop()


def assert_script_exits(script: str, timeout: float = 10) -> None:
    """`python -c SCRIPT` finishes by itself (no thread keeps the interpreter alive at
    exit) and prints "returned" last."""
    import sys
    import textwrap

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "returned"
