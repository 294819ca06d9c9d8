"""Ctrl-C and SIGTERM stop push, pull and copy within a second at any moment, tag nothing,
and leave no temporary file behind; the exit code says which signal it was.

The registry sits behind a proxy that slows every request body, so a push of a few tens
of MB lasts several seconds and the signal lands while layers are being compressed and
uploaded. The moments are spread over the run (just after start, during the first blobs,
late); each one is a real `freight` process.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.faults import Fault, Reply, RequestInfo
from support.freightcli import UserDirs, freight_argv
from support.proxy import RegistryProxy

from .test_engine_properties import LayerSpec, docker_archive

STOP_WITHIN = 5.0  # seconds from the signal to the exit; generous for a loaded CI machine
LAYER = 6_000_000  # bytes per layer: big enough that compressing and sending takes a while


class SlowBodies(Fault):
    """Every body chunk waits a little: uploads crawl, downloads do not."""

    def on_body(self, request: RequestInfo, offset: int, chunk: bytes) -> Reply | None:
        time.sleep(0.03)
        return None


class StalledReplies(Fault):
    """Every request waits seconds before it is forwarded: a query is caught mid-way.
    `arrived` is set once the first request is in."""

    def __init__(self) -> None:
        self.arrived = threading.Event()

    def before(self, request: RequestInfo) -> Reply | None:
        self.arrived.set()
        time.sleep(3)
        return None


class SlowReplies(Fault):
    """Every request waits before it is forwarded: downloads crawl too."""

    def before(self, request: RequestInfo) -> Reply | None:
        time.sleep(0.2)
        return None


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from server.conftest import serving

    with serving(tmp_path_factory.mktemp("signals-registry")) as live:
        yield live.url.removeprefix("http://")


@pytest.fixture
def slow(registry: str) -> Iterator[RegistryProxy]:
    proxy = RegistryProxy(registry).start()
    proxy.faults.append(SlowBodies())
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("signals-archive") / "big.tar"
    # random bytes: incompressible, so compressing and sending take their time
    docker_archive(path, [LayerSpec(i, LAYER, "tar") for i in range(5)], "v1")
    return path


def _start(args: list[str], dirs: UserDirs) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_COLOR": "1", **dirs.env()}
    return subprocess.Popen([*freight_argv(), *args], env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _stop(process: subprocess.Popen[str], signum: int, after: float,
          proxy: RegistryProxy) -> tuple[int, str, float]:
    """Signal `after` seconds once freight has started talking to the registry (a loaded
    machine can take longer than that just to start Python)."""
    deadline = time.monotonic() + 60
    while not proxy.exchanges and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(after)
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"freight did not stop after {signal.Signals(signum).name}")
    return process.returncode, err, time.monotonic() - sent


def _tags(registry: str, repo: str) -> list[str]:
    reply = httpx.get(f"http://{registry}/v2/{repo}/tags/list", timeout=10)
    return reply.json().get("tags") or [] if reply.status_code == 200 else []


MOMENTS = (0.0, 0.8, 2.0)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("after", MOMENTS)
def test_a_signal_stops_a_push_at_once_and_leaves_nothing(
        slow: RegistryProxy, registry: str, archive: Path, tmp_path: Path,
        signum: int, after: float) -> None:
    dirs = UserDirs.under(tmp_path)
    repo = f"sig/push-{signum}-{int(after * 10)}"
    process = _start(["push", str(archive), f"{slow.host}/{repo}:v1", "-q", "--jobs", "2"],
                     dirs)
    code, err, took = _stop(process, signum, after, slow)
    assert code != 0, f"the push finished within {after} s: slow the proxy down further"
    assert code == 128 + signum, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert took < STOP_WITHIN, f"took {took:.1f} s to stop"
    assert _tags(registry, repo) == []  # nothing tagged
    assert dirs.leftovers() == []  # every spool file and directory is gone


@pytest.mark.parametrize("to", ["file", "stdout"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_pull_and_leaves_no_partial_output(
        registry: str, archive: Path, tmp_path: Path, signum: int, to: str) -> None:
    dirs = UserDirs.under(tmp_path)
    repo = f"sig/pull-{signum}"
    pushed = subprocess.run([*freight_argv(), "push", str(archive), f"{registry}/{repo}:v1",
                             "-q", "--compression", "none"],
                            env={**os.environ, **dirs.env()}, capture_output=True, text=True,
                            timeout=300)
    assert pushed.returncode == 0, pushed.stderr
    proxy = RegistryProxy(registry).start()
    proxy.faults.append(SlowReplies())
    try:
        out = tmp_path / "out"
        out.mkdir()
        output = str(out / "app.tar") if to == "file" else "-"  # stdout: a temporary tar
        process = _start(["pull", f"{proxy.host}/{repo}:v1", output, "-q"], dirs)
        code, err, took = _stop(process, signum, 0.3, proxy)
    finally:
        proxy.stop()
    assert code == 128 + signum, err
    assert took < STOP_WITHIN
    assert list(out.iterdir()) == []  # no tar, no hidden staging directory
    assert dirs.leftovers() == []


def test_a_signal_stops_a_copy_between_registries(slow: RegistryProxy, registry: str,
                                                  archive: Path, tmp_path: Path) -> None:
    dirs = UserDirs.under(tmp_path)
    pushed = subprocess.run([*freight_argv(), "push", str(archive), f"{registry}/sig/src:v1",
                             "-q"], env={**os.environ, **dirs.env()}, capture_output=True,
                            text=True, timeout=300)
    assert pushed.returncode == 0, pushed.stderr
    other = f"sig/copy-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"
    process = _start(["copy", f"{registry}/sig/src:v1", f"{slow.host}/{other}:v1", "-q"], dirs)
    code, err, took = _stop(process, signal.SIGTERM, 0.3, slow)
    assert code == 128 + signal.SIGTERM, err
    assert took < STOP_WITHIN
    assert _tags(registry, other) == []
    assert dirs.leftovers() == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_query_with_its_own_message(registry: str, tmp_path: Path,
                                                     signum: int) -> None:
    """A command that moves nothing says it was stopped, not that "nothing was tagged"."""
    proxy = RegistryProxy(registry).start()
    stall = StalledReplies()
    proxy.faults.append(stall)
    try:
        process = _start(["tags", f"{proxy.host}/sig/query"], UserDirs.under(tmp_path))
        assert stall.arrived.wait(60), "freight never asked the registry"
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
        code = process.returncode
    finally:
        proxy.stop()
    word = "interrupted" if signum == signal.SIGINT else "terminated"
    assert code == 128 + signum, err
    assert err.strip() == f"freight: error: {word}", err
