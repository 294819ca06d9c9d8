"""An embedded registry (`freight serve` in a subprocess) for client tests that need a live one."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`127.0.0.1:PORT` of a fresh embedded registry; the client cache is per test."""
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "freight", "serve", "--root", str(tmp_path / "registry"),
         "--address", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    host = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://{host}/v2/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield host
    finally:
        proc.terminate()
        proc.wait(10)
