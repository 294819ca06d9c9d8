"""Running the real ``freight`` command in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FREIGHT_TIMEOUT_SECONDS = 600  # a hung push must fail the test, not the CI run


@dataclass(frozen=True)
class FreightRun:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.strip()]

    @property
    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def describe(self) -> str:
        """For assertion messages: the command and everything it printed."""
        return (
            f"$ {' '.join(self.argv)}\nexit {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


@dataclass(frozen=True)
class UserDirs:
    """A user's per-machine state, made empty per test: freight's cache (which remembers
    conversions and blob locations between runs), DOCKER_CONFIG (credentials) and TMPDIR
    (so a test can see what temporary files a run leaves behind)."""

    docker_config: Path
    cache: Path
    tmp: Path

    @classmethod
    def under(cls, root: Path) -> UserDirs:
        dirs = cls(root / "docker-config", root / "freight-cache", root / "tmp")
        dirs.docker_config.mkdir(parents=True, exist_ok=True)
        dirs.tmp.mkdir(parents=True, exist_ok=True)
        return dirs

    def env(self) -> dict[str, str]:
        return {
            "DOCKER_CONFIG": str(self.docker_config),
            "FREIGHT_CACHE_DIR": str(self.cache),
            "TMPDIR": str(self.tmp),
        }

    def leftovers(self) -> list[str]:
        """What runs left in TMPDIR (should be nothing)."""
        return sorted(str(path.relative_to(self.tmp)) for path in self.tmp.rglob("*"))


def freight_argv() -> list[str]:
    """The installed console script next to this Python, else its entry point via -c."""
    script = Path(sys.executable).parent / "freight"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from freight.cli import main; sys.exit(main())"]


def run_freight(*args: str, dirs: UserDirs, stdin: str | None = None) -> FreightRun:
    """``freight ARGS`` with the user state in ``dirs``, never this machine's."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **dirs.env()}
    argv = [*freight_argv(), *args]
    done = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=FREIGHT_TIMEOUT_SECONDS,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )
    return FreightRun(argv, done.returncode, done.stdout, done.stderr)


def run_isolated(*args: str) -> FreightRun:
    """``freight ARGS`` with user state of its own (empty cache, no credentials), removed
    afterwards: for tests that need no state between commands."""
    with tempfile.TemporaryDirectory(prefix="freight-user-") as root:
        return run_freight(*args, dirs=UserDirs.under(Path(root)))
