"""What serve_bench.py and pull_bench.py share with push_bench.py: options, niceness and
signals, the cached images, a quiet-machine runner, py-spy and the JSON report.

The measuring itself (`timed`, `quiet_step`, `freight_snapshot`) is push_bench's own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

from bench_extras import PY_SPY, venv_with
from bench_image import Archives, cached_archives, ensure_images
from bench_procs import ProcStats, private_docker
from bench_report import Sample, ToolResult
from push_bench import (
    DEFAULT_RUNS,
    DEFAULT_WORKDIR,
    Bench,
    _spread,
    _top_self,
    freight_snapshot,
    quiet_step,
    timed,
)

HERE = Path(__file__).resolve().parent


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """push_bench's options that apply to every benchmark, with the same defaults."""
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs per tool")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="image cache, venvs (default %(default)s)")
    parser.add_argument("--mirror", help="Debian mirror for debootstrap (default: apt's)")
    parser.add_argument("--quiet-cores", type=float, default=0.5, metavar="N",
                        help="before each run, wait until other processes use < N cores")
    parser.add_argument("--patience", type=float, default=15, metavar="S",
                        help="...but at most S seconds (default %(default)s)")
    parser.add_argument("--nice", type=int, default=-10, metavar="N",
                        help="niceness for everything started (default %(default)s)")
    parser.add_argument("--registry-dir", type=Path, default=Path("/dev/shm"), metavar="DIR",
                        help="parent dir of every registry's storage, freight serve's and "
                             "distribution's alike (default %(default)s: tmpfs)")
    parser.add_argument("--freight-rev", default="HEAD", metavar="REV",
                        help="git revision of freight to measure, or 'worktree' "
                             "(default %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="also record py-spy profiles of freight (see the report)")


def prepare_process(args: argparse.Namespace, prog: str) -> None:
    """As push_bench: SIGINT/SIGTERM unwind through `finally`; niceness for all children."""
    if args.runs < 1:
        raise SystemExit(f"{prog}: --runs must be at least 1")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminated)
    if args.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        except PermissionError:
            print(f"{prog}: cannot set niceness {args.nice} (not root); running as is",
                  file=sys.stderr)


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def load_archives(workdir: Path, mirror: str | None) -> Archives:
    """push_bench's cached images; built (with a private dockerd) when not there yet."""
    found = cached_archives(workdir)
    if found is not None:
        return found
    with private_docker(workdir / "docker") as docker:
        return ensure_images(docker, workdir, mirror)


@contextlib.contextmanager
def bench_session(args: argparse.Namespace, archives: Archives) -> Iterator[Bench]:
    """push_bench's Bench (no dockerd, no peers): freight snapshot, scratch dir on disk,
    registry storage under --registry-dir, quiet-machine settings; all removed on exit."""
    workdir: Path = args.workdir.resolve()
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    registries = Path(tempfile.mkdtemp(prefix="freight-bench-", dir=args.registry_dir))
    try:
        argv, env, source = freight_snapshot(workdir, args.freight_rev)
        yield Bench(workdir, None, archives, argv, scratch, {},  # type: ignore[arg-type]
                    max_busy=args.quiet_cores, patience=args.patience, freight_env=env,
                    freight_source=source, registry_parent=registries)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(registries, ignore_errors=True)


def step(bench: Bench, result: ToolResult, run: Callable[[], None]) -> None:
    """push_bench.quiet_step for one result: wait for a quiet machine, run, print."""
    quiet_step(bench, [result], run)


def timed_with_server(argv: list[str], *, env: dict[str, str] | None, scratch: Path,
                      server_pid: int | None) -> Sample:
    """push_bench.timed, plus the server's peak RSS and CPU time during the run."""
    stats = ProcStats(server_pid).start() if server_pid else None
    sample = timed(argv, env=env, scratch=scratch)
    if stats is not None:
        sample.server_rss_mb, sample.server_cpu_s = stats.stop()
    return sample


def py_spy(workdir: Path, out: Path, *, argv: Sequence[str] = (), pid: int | None = None,
           env: dict[str, str] | None = None, seconds: float | None = None,
           during: Callable[[], None] | None = None) -> dict[str, object]:
    """py-spy (own venv, as push_bench) over `argv`, or attached to `pid` while `during`
    runs. Returns the collapsed-stack file and the top innermost frames."""
    bin_dir = venv_with(workdir / "venvs" / "py-spy", PY_SPY)
    base = [str(bin_dir / "py-spy"), "record", "--format", "raw", "--rate", "200",
            "-o", str(out)]
    if pid is None:
        subprocess.run([*base, "--", *argv], env=env, check=True, capture_output=True)
    else:
        spy = subprocess.Popen([*base, "--pid", str(pid), "--threads"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)  # py-spy attaches
            assert during is not None
            during()
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait(60)
    text = out.read_text() if out.exists() else ""
    return {"collapsed_stacks": str(out), "top_self": _top_self(text, 15)}


def write_report(kind: str, report: dict[str, object]) -> Path:
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = str(report.get("started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
    out = out_dir / f"{kind}-{stamp.replace(':', '')}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    return out


def results_json(results: list[ToolResult]) -> list[dict[str, object]]:
    return [{**asdict(r), "median": r.median(), "peak_rss_mb": r.peak_rss(),
             "peak_server_rss_mb": r.peak_server_rss()} for r in results]


def spread(values: list[float]) -> dict[str, float]:
    return _spread(values)
