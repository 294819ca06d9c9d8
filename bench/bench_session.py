"""What serve_bench.py and pull_bench.py share with push_bench.py: options, niceness and
signals, the cached images, a quiet-machine runner, py-spy and the JSON report.

The measuring itself (`timed`, `quiet_step`, `freight_snapshot`) is push_bench's own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
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
    Bench,
    _spread,
    _top_self,
    freight_snapshot,
    quiet_step,
    timed,
)

HERE = Path(__file__).resolve().parent


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


def publish(kind: str, report: dict[str, object]) -> None:
    """Write the report (see write_report) and print its table, targets and profiles."""
    out = write_report(kind, report)
    print("\n" + str(report["table"]) + "\n\n" + "\n".join(report["targets"]))  # type: ignore[arg-type]
    print(f"other processes kept {report['background_busy_cores']} cores busy before runs")
    if report["profile"]:
        for name, found in report["profile"].items():  # type: ignore[attr-defined]
            print(f"\nprofile {name}: {found['top_self']}")
    print(f"\nraw results: {out}")


def results_json(results: list[ToolResult]) -> list[dict[str, object]]:
    return [{**asdict(r), "median": r.median(), "peak_rss_mb": r.peak_rss(),
             "peak_server_rss_mb": r.peak_server_rss()} for r in results]


def spread(values: list[float]) -> dict[str, float]:
    return _spread(values)
