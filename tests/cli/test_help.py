"""`--help` of each command shows examples and the exit codes; shell completion works for
the lazily loaded command table (bash, zsh, fish), as the README says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import Run

SRC = str(Path(__file__).resolve().parents[2] / "src")
COMMANDS = ["tags", "catalog", "manifest", "config", "digest", "ls", "tag", "delete",
            "login", "logout", "blob get", "blob put", "auth token"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_examples_and_exit_codes(freight: Run, command: str) -> None:
    result = freight(*command.split(), "--help")
    assert result.exit_code == 0, result.stderr
    assert "Examples:" in result.stdout and f"freight {command.split()[0]}" in result.stdout
    assert "Exit codes: 0 done" in result.stdout and "6 auth" in result.stdout


def complete(shell_var: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "from freight.cli import main; main(prog_name='freight')"],
        env={**os.environ, "PYTHONPATH": SRC, "_FREIGHT_COMPLETE": shell_var, **env},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    assert "_FREIGHT_COMPLETE" in complete(f"{shell}_source")


def test_completion_of_commands_and_options() -> None:
    words = complete("bash_complete", COMP_WORDS="freight ma", COMP_CWORD="1").split()
    assert "plain,manifest" in words
    options = complete("bash_complete", COMP_WORDS="freight tags --tls", COMP_CWORD="2")
    assert "plain,--tls-verify" in options.split()
