"""Embedded registries (`freight serve` in subprocesses) for client tests that need live ones."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve_registry(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory: each call starts a fresh embedded registry and returns `127.0.0.1:PORT`."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        port = _free_port()
        root = tmp_path / f"registry-{port}"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "freight", "serve", "--root", str(root),
             "--address", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        host = f"127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(f"http://{host}/v2/", timeout=1)
                return host
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("freight serve did not start")

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


@pytest.fixture
def served(serve_registry: Callable[[], str], tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> str:
    """`127.0.0.1:PORT` of a fresh embedded registry; the client cache is per test."""
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    return serve_registry()
