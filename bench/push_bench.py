"""Push benchmark: freight against skopeo, docker and two Python pushers, cold, on loopback.

    python bench/push_bench.py [--runs 3] [--workdir /tmp/freight-bench] [--profile]

Every cold push goes to a brand-new CNCF distribution registry (new storage, new port).
Wall time is `time.perf_counter` around the child; peak RSS is `/usr/bin/time -v`'s
"Maximum resident set size" of that child. Results go to bench/results/ as JSON and are
printed as the markdown table used in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench_cli import add_common_args, run_main
from bench_extras import (
    FLOOR_SCRIPT,
    PEERS,
    PY_SPY,
    has_blob,
    install_peers,
    loose_layers,
    venv_with,
)
from bench_image import APP, Archives, ensure_images
from bench_procs import (
    BenchError,
    Docker,
    Registry,
    fresh_registry,
    private_docker,
    wait_for_quiet,
)
from bench_report import Sample, ToolResult, table, targets

HERE = Path(__file__).resolve().parent
PUSH_TIMEOUT_SECONDS = 900  # the slowest peer (crpy, whole layers in memory) takes ~1 min
REPOSITORY, TAG = "bench/app", "1"  # dockertarpush can only push to the archive's own name


def timed(argv: list[str], *, env: dict[str, str] | None = None, scratch: Path) -> Sample:
    """Run `argv` once under `/usr/bin/time -v`; wall time from perf_counter around it."""
    report = scratch / "time.txt"
    report.unlink(missing_ok=True)
    load1 = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", "-o", str(report), *argv], env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=PUSH_TIMEOUT_SECONDS)
    seconds = time.perf_counter() - start
    stats = _time_v(report.read_text()) if report.exists() else {}
    rss = stats.get("Maximum resident set size (kbytes)")
    cpu = [stats.get("User time (seconds)"), stats.get("System time (seconds)")]
    ok = done.returncode == 0
    detail = "" if ok else done.stderr.decode(errors="replace")[-800:]
    return Sample(seconds, None if rss is None else rss / 1024, ok, detail,
                  sum(c for c in cpu if c is not None) if None not in cpu else None, load1)


def _time_v(text: str) -> dict[str, float]:
    """The numeric lines of `/usr/bin/time -v`'s report, by label."""
    stats = {}
    for line in text.splitlines():
        label, _, value = line.strip().rpartition(": ")
        try:
            stats[label] = float(value)
        except ValueError:
            continue
    return stats


@dataclass
class Bench:
    """Shared state for one benchmark session."""

    workdir: Path
    docker: Docker
    archives: Archives
    freight: list[str]
    scratch: Path
    peers: dict[str, Path | str]  # venv bin dir, or why the peer could not be installed
    background: list[float] = field(default_factory=list)  # busy cores of others, per step
    max_busy: float = 0.5  # wait for others to use fewer cores than this before each run
    patience: float = 0.0  # ...but never longer than this many seconds
    freight_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    freight_source: str = "editable install"
    registry_parent: Path = Path("/tmp")  # where each fresh registry keeps its storage

    def cache_env(self, cache: Path) -> dict[str, str]:
        return {**self.freight_env, "FREIGHT_CACHE_DIR": str(cache)}

    def new_cache(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="cache-", dir=self.scratch))


def freight_argv() -> list[str]:
    """The installed `freight` entry point, without pyenv's shell shim (~50 ms per call)."""
    beside = Path(sys.executable).parent / "freight"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "freight"]


def freight_snapshot(workdir: Path, rev: str) -> tuple[list[str], dict[str, str], str]:
    """freight as committed at `rev`, unpacked once into the work dir: argv, env, label.

    The work tree is shared and edited while the benchmark runs; a commit stays put, so
    every run of a session measures the same code. `rev=worktree` uses the live tree.

    The snapshot is byte-compiled, as `pip install` does: with PYTHONDONTWRITEBYTECODE set
    (it is, on this machine), Python would otherwise compile every module of freight on
    every run, ~70 ms that no installed freight pays."""
    if rev == "worktree":
        return freight_argv(), dict(os.environ), "editable install (live work tree)"
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=HERE.parent,
                         check=True, capture_output=True, text=True).stdout.strip()
    dest = workdir / "freight-src" / sha[:12]
    if not (dest / "src" / "freight" / "__main__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "archive", sha, "src/freight"], cwd=HERE.parent,
                                   stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise BenchError(f"git archive {sha} failed")
    if not (dest / "src" / "freight" / "__pycache__").exists():
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "src")],
                       check=True)
    env = {**os.environ, "PYTHONPATH": str(dest / "src")}  # ahead of the editable install
    return [sys.executable, "-m", "freight"], env, f"commit {sha}"


def _ref(registry: Registry) -> str:
    return f"{registry.host}/{REPOSITORY}:{TAG}"


def _checked(sample: Sample, registry: Registry, repository: str = REPOSITORY) -> Sample:
    """A run only counts when the registry really has the tag afterwards."""
    if sample.ok and not registry.has_manifest(repository, TAG):
        sample.ok, sample.detail = False, "exit 0, but the registry has no manifest for the tag"
    return sample


def run_freight_pair(bench: Bench, cold: ToolResult, warm: ToolResult) -> None:
    """Cold push (fresh registry, empty cache), then re-push of the same image (warm)."""
    cache = bench.new_cache()
    with fresh_registry(bench.registry_parent) as registry:
        argv = [*bench.freight, "push", str(bench.archives.app), _ref(registry), "--quiet"]
        env = bench.cache_env(cache)
        cold.samples.append(_checked(timed(argv, env=env, scratch=bench.scratch), registry))
        warm.samples.append(_checked(timed(argv, env=env, scratch=bench.scratch), registry))
    shutil.rmtree(cache, ignore_errors=True)


def run_freight(bench: Bench, result: ToolResult, archive: Path, *extra: str) -> None:
    cache = bench.new_cache()
    with fresh_registry(bench.registry_parent) as registry:
        argv = [*bench.freight, "push", str(archive), _ref(registry), "--quiet", *extra]
        sample = timed(argv, env=bench.cache_env(cache), scratch=bench.scratch)
        result.samples.append(_checked(sample, registry))
    shutil.rmtree(cache, ignore_errors=True)


def run_skopeo(bench: Bench, result: ToolResult) -> None:
    with fresh_registry(bench.registry_parent) as registry:
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                f"docker-archive:{bench.archives.app}", f"docker://{_ref(registry)}"]
        result.samples.append(_checked(timed(argv, scratch=bench.scratch), registry))


def run_docker(bench: Bench, result: ToolResult) -> None:
    """`docker push`: the work happens in dockerd, so the CLI's RSS is not reported."""
    with fresh_registry(bench.registry_parent) as registry:
        bench.docker.run("tag", APP, _ref(registry))
        try:
            argv = ["/usr/bin/docker", "push", "--quiet", _ref(registry)]
            sample = timed(argv, env=bench.docker.env, scratch=bench.scratch)
            sample.rss_mb = sample.cpu_s = None
            result.samples.append(_checked(sample, registry))
        finally:
            bench.docker.run("rmi", _ref(registry), check=False)


def run_peer(bench: Bench, result: ToolResult, name: str,
             argv_for: Callable[[Path, Registry], list[str]]) -> None:
    where = bench.peers[name]
    if isinstance(where, str):
        result.note = where
        return
    with fresh_registry(bench.registry_parent) as registry:
        argv = argv_for(where, registry)
        result.samples.append(_checked(timed(argv, scratch=bench.scratch), registry))


def run_floor(bench: Bench, result: ToolResult) -> None:
    """curl PUTs the three layer files at once, digests known: the registry's own floor."""
    layers = loose_layers(bench.workdir, bench.archives.app)
    with fresh_registry(bench.registry_parent) as registry:
        argv = ["bash", "-c", FLOOR_SCRIPT, "floor", registry.host,
                *(f"{path}={digest}" for path, digest in layers)]
        sample = timed(argv, scratch=bench.scratch)
        if sample.ok and not all(has_blob(registry.host, REPOSITORY, d) for _, d in layers):
            sample.ok, sample.detail = False, "a layer is missing from the registry"
        result.samples.append(sample)


def dockertarpush_argv(bench: Bench) -> Callable[[Path, Registry], list[str]]:
    # It pushes to the archive's own RepoTags (bench/app:1); the URL picks http.
    return lambda bin_dir, reg: [str(bin_dir / "docker-tar-push"), f"http://{reg.host}",
                                 str(bench.archives.app)]


def crpy_argv(bench: Bench) -> Callable[[Path, Registry], list[str]]:
    # An explicit http:// scheme makes crpy speak plain HTTP.
    return lambda bin_dir, reg: [str(bin_dir / "crpy"), "push", str(bench.archives.app),
                                 f"http://{_ref(reg)}"]


def run_all(bench: Bench, runs: int) -> list[ToolResult]:
    """`runs` rounds; each round runs every tool once, so drift hits all tools alike."""
    app = str(bench.archives.app)
    fg = ToolResult("freight (gzip, default)", f"freight push {app} REF --quiet")
    warm = ToolResult("freight re-push (warm cache)", "same command again, same registry")
    fn = ToolResult("freight --compression none", f"freight push {app} REF --quiet "
                                                  "--compression none")
    sk = ToolResult("skopeo copy", f"skopeo copy --dest-tls-verify=false docker-archive:{app} "
                                   "docker://REF")
    dk = ToolResult("docker push", "docker tag bench/app:1 REF && docker push REF")
    dt = ToolResult("dockertarpush", f"docker-tar-push http://HOST {app}")
    cr = ToolResult("crpy", f"crpy push {app} http://REF")
    start = ToolResult("freight --version (start-up only)", "freight --version")
    floor = ToolResult("floor: curl, 3 parallel PUTs (blobs only)",
                       "curl -T LAYER.tar, digests precomputed, no client-side work")
    for round_index in range(runs):
        print(f"round {round_index + 1}/{runs}", flush=True)
        steps: list[tuple[ToolResult, Callable[[], None]]] = [
            (fg, lambda: run_freight_pair(bench, fg, warm)),
            (fn, lambda: run_freight(bench, fn, bench.archives.app, "--compression", "none")),
            (sk, lambda: run_skopeo(bench, sk)),
            (dk, lambda: run_docker(bench, dk)),
            (dt, lambda: run_peer(bench, dt, "dockertarpush", dockertarpush_argv(bench))),
            (cr, lambda: run_peer(bench, cr, "crpy", crpy_argv(bench))),
            (floor, lambda: run_floor(bench, floor)),
            (start, lambda: start.samples.append(
                timed([*bench.freight, "--version"], env=bench.freight_env,
                      scratch=bench.scratch))),
        ]
        for result, step in steps:
            quiet_step(bench, [result, warm] if result is fg else [result], step)
    return [fg, warm, fn, sk, dk, dt, cr, floor, start]


def run_big(bench: Bench, runs: int) -> list[ToolResult]:
    """freight on the ~800 MB image: the peak-RSS target (gzip and uncompressed)."""
    big = str(bench.archives.big)
    gz = ToolResult("freight 800 MB (gzip)", f"freight push {big} REF --quiet")
    none = ToolResult("freight 800 MB (none)", f"freight push {big} REF --quiet "
                                               "--compression none")
    for _ in range(runs):
        quiet_step(bench, [gz], lambda: run_freight(bench, gz, bench.archives.big))
        quiet_step(bench, [none], lambda: run_freight(bench, none, bench.archives.big,
                                                      "--compression", "none"))
    return [gz, none]


def quiet_step(bench: Bench, results: list[ToolResult], step: Callable[[], None]) -> None:
    """Wait for a quiet machine, run `step`, tag and print the samples it added."""
    counts = [len(r.samples) for r in results]
    busy = wait_for_quiet(bench.max_busy, bench.patience)
    bench.background.append(busy)
    step()
    for result, before in zip(results, counts, strict=True):
        for sample in result.samples[before:]:
            sample.background = round(busy, 2)
        _print_last(result)


def _print_last(result: ToolResult) -> None:
    if not result.samples:
        print(f"  {result.name:32s} skipped: {result.note}", flush=True)
        return
    s = result.samples[-1]
    rss = f"{s.rss_mb:7.1f} MB" if s.rss_mb is not None else "      n/a"
    state = "ok" if s.ok else f"FAILED: {s.detail.strip()[-300:]}"
    print(f"  {result.name:32s} {s.seconds:8.2f} s  {rss}  {state}", flush=True)


def profile_freight(bench: Bench) -> dict[str, object]:
    """py-spy (own venv) over one cold default push: where does the time go?"""
    bin_dir = venv_with(bench.workdir / "venvs" / "py-spy", PY_SPY)
    out = bench.workdir / "profile-gzip.txt"
    cache = bench.new_cache()
    with fresh_registry(bench.registry_parent) as registry:
        argv = [str(bin_dir / "py-spy"), "record", "--format", "raw",
                "--rate", "200", "-o", str(out), "--", *bench.freight, "push",
                str(bench.archives.app), _ref(registry), "--quiet"]
        subprocess.run(argv, env=bench.cache_env(cache), check=True, capture_output=True)
    return {"collapsed_stacks": str(out), "top_self": _top_self(out.read_text())}


def _top_self(collapsed: str, limit: int = 12) -> list[tuple[str, float]]:
    """Share of samples per innermost frame, biggest first (idle waits included)."""
    totals: dict[str, int] = {}
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        leaf = frames[-1]
        if leaf.startswith("Hasher.update") and len(frames) > 1:
            leaf = f"{leaf} <- {frames[-2]}"  # which of the hashes it is
        totals[leaf] = totals.get(leaf, 0) + int(count)
    all_samples = sum(totals.values()) or 1
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [(leaf, round(100 * n / all_samples, 1)) for leaf, n in ranked]


def versions(bench: Bench) -> dict[str, str]:
    """Versions of everything measured, for the JSON report."""
    def first_line(argv: list[str]) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, env=bench.freight_env)
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if lines else "?"

    return {
        "freight": f"{first_line([*bench.freight, '--version'])} ({bench.freight_source})",
        "skopeo": first_line(["skopeo", "--version"]),
        "dockerd": bench.docker.run("version", "-f", "{{.Server.Version}}").stdout.strip(),
        "registry": first_line(["docker-registry", "--version"]),
        "python": platform.python_version(),
        **{name: PEERS[name] for name in PEERS},
        "cpus": str(os.cpu_count()),
        "kernel": platform.release(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--skip-big", action="store_true", help="skip the 800 MB RSS runs")
    return run_main("push_bench", parser.parse_args(argv), _session)


def _session(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    registries = Path(tempfile.mkdtemp(prefix="freight-bench-", dir=args.registry_dir))
    try:
        with private_docker(workdir / "docker") as docker:
            archives = ensure_images(docker, workdir, args.mirror)
            peers = install_peers(workdir / "venvs")
            argv, env, source = freight_snapshot(workdir, args.freight_rev)
            bench = Bench(workdir, docker, archives, argv, scratch, peers,
                          max_busy=args.quiet_cores, patience=args.patience,
                          freight_env=env, freight_source=source,
                          registry_parent=registries)
            for archive in (archives.app, archives.big):
                _warm_page_cache(archive)  # every tool reads the archive from memory alike
            return _measure_and_report(bench, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(registries, ignore_errors=True)


def _spread(values: list[float]) -> dict[str, float]:
    """min / median / max of other processes' busy cores before the runs."""
    if not values:
        return {}
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
            "max": round(max(values), 2)}


def _warm_page_cache(path: Path) -> None:
    with path.open("rb") as f:
        while f.read(8 << 20):
            pass


def _measure_and_report(bench: Bench, args: argparse.Namespace) -> int:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results = run_all(bench, args.runs)
    big = [] if args.skip_big else run_big(bench, args.runs)
    by_name = {r.name: r for r in results + big}
    base = {"gzip": by_name["freight (gzip, default)"].median(),
            "none": by_name["freight --compression none"].median()}
    report = {
        "started": started, "runs": args.runs, "image": bench.archives.meta,
        "niceness": os.getpriority(os.PRIO_PROCESS, 0),
        "registry_storage_under": str(bench.registry_parent),
        "background_busy_cores": _spread(bench.background),
        "versions": versions(bench),
        "results": [{**asdict(r), "median": r.median(), "peak_rss_mb": r.peak_rss()}
                    for r in results + big],
        "table": table(results + big, base),
        "targets": targets(by_name),
        "profile": profile_freight(bench) if args.profile else None,
    }
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    out = out_dir / f"push-{started.replace(':', '')}.json"
    out.write_text(json.dumps(report, indent=2))
    print("\n" + str(report["table"]) + "\n\n" + "\n".join(report["targets"]))
    print(f"other processes kept {report['background_busy_cores']} cores busy before runs")
    print(f"\nraw results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
