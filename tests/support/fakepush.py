"""Feeds the CLI's progress renderer the events of a push of one image with many layers, as
the planning engine sends them, without a registry: for the tmux tests of the display.

    python tests/support/fakepush.py --layers 36 --handshake DIR

With --handshake, the run first finishes `--first` layers (5 uploaded, 1 skipped by
default), then stops with `--hold` rows active (half done each), creates DIR/paused and
waits for DIR/go, so a test can look at a known moment; then it finishes every blob with
`--jobs` threads and ends with the summary.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from freight.cli.output import progress_for
from freight.progress import Phase, Plan, Progress, Summary
from freight.results import Action

MB = 1_000_000
CHUNK = 1 << 20  # the engine reports progress per MiB read or sent
STEP_SECONDS = 0.002  # slow enough that a capture sees rows move, fast enough for a test
HANDSHAKE_TIMEOUT_SECONDS = 120
NOTE = "the archive has no linux/arm64 image; pushing linux/amd64"


def layer_sizes(layers: int) -> list[int]:
    """Between 3 and 12 MB each; deterministic."""
    return [(3 + index * 7 % 10) * MB + index * 1013 for index in range(layers)]


def fate(index: int) -> Action:
    """Most layers are uploaded; every fifth is there already, one is mounted."""
    if index == 7:
        return Action.MOUNTED
    return Action.SKIPPED if index % 5 == 4 else Action.UPLOADED


def label(index: int) -> str:
    return f"layer {index + 1} of synth/big:1 ({index:064x}"[:52] + "/layer.tar)"


def advance(progress: Progress, key: str, n: int, *, overall: bool) -> None:
    while n > 0:
        step = min(CHUNK, n)
        progress.blob_advance(key, step)
        if overall:
            progress.overall(step)
        n -= step
        time.sleep(STEP_SECONDS)


class Layer:
    """One layer's rows: compress (source bytes, counted overall), then upload."""

    def __init__(self, progress: Progress, index: int, size: int) -> None:
        self.progress, self.index, self.size = progress, index, size
        self.key, self.what = f"layer-{index}", label(index)
        self.read = 0

    def start(self, part: float = 1.0) -> None:
        if fate(self.index) is not Action.UPLOADED:
            return
        self.progress.blob_start(f"{self.key}#convert", self.what, self.size, Phase.COMPRESS)
        self.read = int(self.size * part)
        advance(self.progress, f"{self.key}#convert", self.read, overall=True)

    def finish(self) -> None:
        action = fate(self.index)
        if action is not Action.UPLOADED:
            self.progress.overall(self.size)
            self.progress.blob_done(self.key, action)
            return
        if not self.read:
            self.start()
        advance(self.progress, f"{self.key}#convert", self.size - self.read, overall=True)
        self.progress.blob_done(f"{self.key}#convert", None)
        sent = self.size * 9 // 10  # random bytes hardly compress
        self.progress.blob_start(self.key, self.what, sent, Phase.UPLOAD)
        advance(self.progress, self.key, sent, overall=False)
        self.progress.blob_done(self.key, Action.UPLOADED)


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT_SECONDS
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.05)


def run(progress: Progress, args: argparse.Namespace) -> None:
    sizes = layer_sizes(args.layers)
    config = 2_345
    started = time.monotonic()
    progress.note(NOTE)
    progress.begin(Plan("push", 1, args.layers + 1, sum(sizes) + config))
    layers = [Layer(progress, i, size) for i, size in enumerate(sizes)]
    if args.handshake:
        for layer in layers[:args.first]:
            layer.finish()
        layers = layers[args.first:]
        held = [layer for layer in layers if fate(layer.index) is Action.UPLOADED][:args.hold]
        for layer in held:
            layer.start(part=0.5)
        (args.handshake / "paused").touch()
        wait_for(args.handshake / "go")
    queue = list(layers)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                layer = queue.pop(0)
            layer.finish()

    threads = [threading.Thread(target=work) for _ in range(args.jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.blob_start("config", "config of synth/big:1", config, Phase.UPLOAD)
    advance(progress, "config", config, overall=True)
    progress.blob_done("config", Action.UPLOADED)
    uploaded = [s for i, s in enumerate(sizes) if fate(i) is Action.UPLOADED]
    progress.end(Summary("push", 1, len(uploaded) + 1,
                         sum(fate(i) is Action.SKIPPED for i in range(args.layers)), 1,
                         sum(s * 9 // 10 for s in uploaded) + config,
                         time.monotonic() - started))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=36)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--first", type=int, default=6)
    parser.add_argument("--hold", type=int, default=20)
    parser.add_argument("--handshake", type=Path)
    args = parser.parse_args()
    with progress_for(quiet=False) as progress:
        run(progress, args)
    print("synth/big:1@sha256:" + "0" * 64)


if __name__ == "__main__":
    main()
