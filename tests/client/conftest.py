"""Embedded registries (`freight serve` in subprocesses) for client tests that need live ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def served(serve_registry: Callable[[], str], tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> str:
    """`127.0.0.1:PORT` of a fresh embedded registry; the client cache is per test."""
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    return serve_registry()
