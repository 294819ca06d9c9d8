"""The progress display under a real terminal (tmux), read with capture-pane as a user sees
it: a stable overall total, a bounded set of rows, finished blobs as counts, a summary line.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from freight.cli.progress_view import MAX_ROWS, human_bytes
from freight.testing import random_image
from support import fakepush
from support.archives import read_member
from support.faults import Fault, Reply, RequestInfo
from support.freightcli import UserDirs
from support.proxy import RegistryProxy
from support.tmux import PANE_TIMEOUT_SECONDS, Pane

MB = 1 << 20

pytestmark = pytest.mark.integration

SRC = str(Path(__file__).resolve().parents[2] / "src")
FAKE = str(Path(fakepush.__file__).resolve())
ROW = re.compile(r"^  (compress|decompress|upload|download|write) ")
AMOUNT = re.compile(r" ([\d.]+)/([\d.]+ [kMGT]?B) ")
SUMMARY = re.compile(r"^freight: pushed 1 image: (\d+) blobs? sent, (\d+) skipped, (\d+) "
                     r"mounted; [\d.]+ [kMGT]?B in [\d.]+ s( \([\d.]+ [kMGT]?B/s\))?$", re.M)
SPARE_LINES = 4  # as in freight.cli.output: rows give way to these on a small terminal


@pytest.fixture
def pane() -> Iterator[Callable[..., Pane]]:
    panes: list[Pane] = []

    def start(command: list[str], **kwargs: object) -> Pane:
        panes.append(Pane(command, **kwargs))  # type: ignore[arg-type]
        return panes[-1]

    yield start
    for each in panes:
        each.stop()


def overall_lines(screen: str, verb: str = "push") -> list[str]:
    return [line for line in screen.splitlines() if line.startswith(f"{verb} ")]


def row_lines(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if ROW.match(line)]


def check_screens(screens: list[str], *, total: int, rows: int) -> list[float]:
    """Every screen: the overall total is the plan's, at most `rows` rows; the amounts done."""
    done = []
    for screen in screens:
        assert len(row_lines(screen)) <= rows, screen
        for line in overall_lines(screen):
            match = AMOUNT.search(line + " ")
            assert match is not None, line
            assert match.group(2) == human_bytes(total), screen
            done.append(float(match.group(1)))
        assert "0/0" not in screen and "?" not in screen, screen
    assert done == sorted(done), "the overall bar moved backwards"
    return done


@pytest.mark.parametrize(("height", "rows"), [(30, MAX_ROWS), (8, 8 - SPARE_LINES)])
def test_a_push_of_36_layers_as_the_terminal_shows_it(
        pane: Callable[..., Pane], tmp_path: Path, height: int, rows: int) -> None:
    handshake = tmp_path / "handshake"
    handshake.mkdir()
    total = sum(fakepush.layer_sizes(36)) + 2_345
    term = pane([sys.executable, FAKE, "--layers", "36", "--handshake", str(handshake)],
                env={"PYTHONPATH": SRC}, width=120, height=height)
    screens: list[str] = []
    held = term.wait_for(lambda s: (handshake / "paused").exists() and f"… and {20 - rows} more"
                         in s, what="20 active layers", seen=screens)
    assert len(overall_lines(held)) == 1, held
    assert " 1 image, 37 blobs " in held, held
    assert len(row_lines(held)) == rows, held
    assert all(line.startswith("  compress layer") for line in row_lines(held)), held
    assert "5 uploaded, 1 skipped" in held, held  # the finished ones, as one line
    (handshake / "go").touch()
    status, final = term.wait_exit(seen=screens)
    assert status == 0, final
    check_screens(screens, total=total, rows=rows)
    summary = SUMMARY.search(final)
    assert summary is not None, final
    assert summary.groups()[:3] == ("29", "7", "1")
    assert row_lines(final) == [] and overall_lines(final) == [], final  # the bars are gone
    assert "synth/big:1@sha256:" in final
    assert f"freight: note: {fakepush.NOTE}" in final  # printed above the bars, kept


class Gate(Fault):
    """Lets `after` blob uploads through, then holds every other one until `open` is set."""

    def __init__(self, after: int) -> None:
        self.after, self.passed = after, 0
        self.lock, self.open = threading.Lock(), threading.Event()

    def before(self, request: RequestInfo) -> Reply | None:
        if request.kind != "upload" or request.method not in ("PUT", "PATCH"):
            return None
        with self.lock:
            self.passed += 1
            held = self.passed > self.after
        if held:
            self.open.wait(PANE_TIMEOUT_SECONDS)
        return None


@pytest.fixture
def gated(serve_registry: Callable[[], str]) -> Iterator[tuple[RegistryProxy, Gate]]:
    """A fresh embedded registry behind a proxy that holds uploads after the 10th."""
    proxy, gate = RegistryProxy(serve_registry()).start(), Gate(after=10)
    proxy.faults.append(gate)
    try:
        yield proxy, gate
    finally:
        gate.open.set()
        proxy.stop()


def test_a_real_push_of_41_layers_under_a_real_terminal(
        pane: Callable[..., Pane], tmp_path: Path,
        gated: tuple[RegistryProxy, Gate]) -> None:
    proxy, gate = gated
    image = random_image(tmp_path / "big.tar", layers=[MB // 4] * 40, tags=["synth/big:1"])
    config = read_member(image.path, image.image.config_digest.removeprefix("sha256:") + ".json")
    total = sum(image.image.layer_sizes) + len(config)  # the plan: blobs as the archive holds them
    dirs = UserDirs.under(tmp_path / "user")
    env = {"PYTHONPATH": SRC, **dirs.env()}
    push = [sys.executable, "-m", "freight", "push", str(image.path),
            f"{proxy.host}/synth/big:1", "--jobs", "16"]
    term = pane(push, env=env)
    screens: list[str] = []
    held = term.wait_for(lambda s: "… and" in s and "uploaded" in s,
                         what="more active rows than shown", seen=screens)
    gate.open.set()
    assert len(row_lines(held)) == MAX_ROWS, held
    assert " 1 image, 41 blobs " in held, held
    status, final = term.wait_exit(seen=screens)
    assert status == 0, final
    check_screens(screens, total=total, rows=MAX_ROWS)
    summary = SUMMARY.search(final)
    assert summary is not None and summary.groups()[:3] == ("41", "0", "0"), final

    again = pane(push, env=env)  # everything is there: a no-op push
    screens = []
    status, final = again.wait_exit(seen=screens)
    assert status == 0, final
    check_screens(screens, total=total, rows=MAX_ROWS)
    summary = SUMMARY.search(final)
    assert summary is not None and summary.groups()[:3] == ("0", "41", "0"), final
