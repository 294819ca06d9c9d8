"""Registry benchmark: `freight serve` against the CNCF distribution registry, same client.

    python bench/serve_bench.py [--runs 3] [--registry-dir /dev/shm] [--profile]

freight (the client) pushes the ~267 MB app image to each registry and pulls it back
(`freight pull REF out.tar`), with gzip (default) and with `--compression none` (the
registry, not client compression, dominates); then 4 concurrent pushes of 4 distinct
variants of the app image; then the ~844 MB image, for the server's peak RSS. Every step
gets a brand-new registry; both registries keep their storage under the same
--registry-dir (default /dev/shm, tmpfs). In each round the two registries take turns at
going first. Peak RSS and CPU time of the *server process* are read from /proc (VmHWM,
reset before each step through clear_refs; utime + stime).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_cli import add_common_args, run_main
from bench_extras import FLOOR_SCRIPT, GET_FLOOR_SCRIPT, has_blob, loose_layers
from bench_image import app_variants
from bench_procs import (
    ProcStats,
    Registry,
    fresh_freight_serve,
    fresh_registry,
)
from bench_report import Sample, ToolResult, compare_table
from bench_session import (
    bench_session,
    load_archives,
    publish,
    py_spy,
    results_json,
    spread,
    step,
    timed_with_server,
)
from push_bench import Bench, _warm_page_cache, timed

FREIGHT, DISTRIBUTION = "freight serve", "distribution"
KINDS = (FREIGHT, DISTRIBUTION)
REPO, TAG = "bench/app", "1"
CONCURRENT = 4
RSS_TARGET_MB = 150
GROUPS = ("gzip", "none", "concurrent", "floor", "big")  # what --only can pick


@contextlib.contextmanager
def server(bench: Bench, kind: str) -> Iterator[Registry]:
    """A brand-new registry of `kind`, its storage under --registry-dir."""
    if kind == FREIGHT:
        with fresh_freight_serve(bench.registry_parent, bench.freight,
                                 bench.freight_env) as registry:
            yield registry
    else:
        with fresh_registry(bench.registry_parent) as registry:
            yield registry


def _fresh_cache_env(bench: Bench) -> tuple[dict[str, str], Path]:
    cache = bench.new_cache()
    return bench.cache_env(cache), cache


def push(bench: Bench, registry: Registry, archive: Path, repo: str,
         compression: str) -> Sample:
    env, cache = _fresh_cache_env(bench)
    argv = [*bench.freight, "push", str(archive), f"{registry.host}/{repo}:{TAG}", "--quiet",
            "--compression", compression]
    try:
        sample = timed_with_server(argv, env=env, scratch=bench.scratch,
                                   server_pid=registry.pid)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if sample.ok and not registry.has_manifest(repo, TAG):
        sample.ok, sample.detail = False, "exit 0, but the registry has no manifest for the tag"
    return sample


def pull(bench: Bench, registry: Registry, repo: str) -> Sample:
    env, cache = _fresh_cache_env(bench)
    out = bench.scratch / "out.tar"
    out.unlink(missing_ok=True)
    argv = [*bench.freight, "pull", f"{registry.host}/{repo}:{TAG}", str(out), "--quiet"]
    try:
        sample = timed_with_server(argv, env=env, scratch=bench.scratch,
                                   server_pid=registry.pid)
        if sample.ok and (not out.exists() or out.stat().st_size < 1 << 20):
            sample.ok, sample.detail = False, "exit 0, but no output tar"
    finally:
        out.unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
    return sample


def concurrent_push(bench: Bench, registry: Registry, archives: list[Path],
                    compression: str) -> Sample:
    """All variants at once, one freight process each; wall time until the last is done.

    Client RSS is the largest of the four, client CPU their sum."""
    jobs = []
    for n, archive in enumerate(archives):
        scratch = bench.scratch / f"c{n}"
        scratch.mkdir(exist_ok=True)
        env, cache = _fresh_cache_env(bench)
        argv = [*bench.freight, "push", str(archive), f"{registry.host}/bench/app-v{n}:{TAG}",
                "--quiet", "--compression", compression]
        jobs.append((argv, env, scratch, cache))
    stats = ProcStats(registry.pid).start() if registry.pid else None
    start = time.perf_counter()
    with ThreadPoolExecutor(len(jobs)) as pool:
        samples = list(pool.map(lambda j: timed(j[0], env=j[1], scratch=j[2]), jobs))
    seconds = time.perf_counter() - start
    server_rss, server_cpu = stats.stop() if stats else (None, None)
    for _, _, scratch, cache in jobs:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    ok = all(s.ok for s in samples)
    detail = "; ".join(s.detail for s in samples if not s.ok)
    if ok:
        missing = [n for n in range(len(archives))
                   if not registry.has_manifest(f"bench/app-v{n}", TAG)]
        if missing:
            ok, detail = False, f"no manifest for variants {missing}"
    rss = [s.rss_mb for s in samples if s.rss_mb is not None]
    cpu = [s.cpu_s for s in samples if s.cpu_s is not None]
    return Sample(seconds, max(rss) if rss else None, ok, detail,
                  sum(cpu) if len(cpu) == len(samples) else None, os.getloadavg()[0],
                  server_rss_mb=server_rss, server_cpu_s=server_cpu)


class Results:
    """One ToolResult per (operation, registry), in table order."""

    def __init__(self, app: Path, big: Path) -> None:
        self.by_key: dict[tuple[str, str], ToolResult] = {}
        ops = [
            ("push gzip", f"freight push {app} REF --compression gzip"),
            ("pull (gzip blobs)", "freight pull REF out.tar"),
            ("push none", f"freight push {app} REF --compression none"),
            ("pull (uncompressed blobs)", "freight pull REF out.tar"),
            (f"{CONCURRENT} concurrent pushes gzip",
             f"{CONCURRENT}x freight push app-vN.tar REF-N --compression gzip, at once"),
            (f"{CONCURRENT} concurrent pushes none",
             f"{CONCURRENT}x freight push app-vN.tar REF-N --compression none, at once"),
            ("floor: curl PUT 3 layers", "curl -T LAYER.tar, 3 at once, digests known"),
            ("floor: curl GET 3 layers", "curl -o /dev/null the 3 layer blobs, at once"),
            ("push 844 MB none", f"freight push {big} REF --compression none"),
        ]
        self.ops = [op for op, _ in ops]
        for op, command in ops:
            for kind in KINDS:
                self.by_key[op, kind] = ToolResult(f"{op} — {kind}", command)

    def __getitem__(self, key: tuple[str, str]) -> ToolResult:
        return self.by_key[key]

    def ordered(self) -> list[ToolResult]:
        return [self.by_key[op, kind] for op in self.ops for kind in KINDS]

    def base_of(self) -> dict[str, str]:
        return {self.by_key[op, kind].name: self.by_key[op, FREIGHT].name
                for op in self.ops for kind in KINDS}


def floor_put(bench: Bench, registry: Registry, layers: list[tuple[Path, str]]) -> Sample:
    """push_bench's floor: curl PUTs the loose layer files, no client-side work."""
    argv = ["bash", "-c", FLOOR_SCRIPT, "floor", registry.host,
            *(f"{path}={digest}" for path, digest in layers)]
    sample = timed_with_server(argv, env=None, scratch=bench.scratch, server_pid=registry.pid)
    if sample.ok and not all(has_blob(registry.host, REPO, d) for _, d in layers):
        sample.ok, sample.detail = False, "a layer is missing from the registry"
    return sample


def floor_get(bench: Bench, registry: Registry, layers: list[tuple[Path, str]]) -> Sample:
    argv = ["bash", "-c", GET_FLOOR_SCRIPT, "floor", registry.host, *(d for _, d in layers)]
    return timed_with_server(argv, env=None, scratch=bench.scratch, server_pid=registry.pid)


def run_round(bench: Bench, results: Results, kind: str, variants: list[Path],
              groups: set[str]) -> None:
    app, big = bench.archives.app, bench.archives.big

    def add(op: str, make: Callable[[], Sample]) -> None:
        result = results[op, kind]
        step(bench, result, lambda: result.samples.append(make()))

    for compression, pull_op in (("gzip", "pull (gzip blobs)"),
                                 ("none", "pull (uncompressed blobs)")):
        if compression not in groups:
            continue
        with server(bench, kind) as registry:
            add(f"push {compression}", lambda r=registry, c=compression: push(
                bench, r, app, REPO, c))
            if results[f"push {compression}", kind].samples[-1].ok:
                add(pull_op, lambda r=registry: pull(bench, r, REPO))
    for compression in ("gzip", "none") if "concurrent" in groups else ():
        with server(bench, kind) as registry:
            add(f"{CONCURRENT} concurrent pushes {compression}",
                lambda r=registry, c=compression: concurrent_push(bench, r, variants, c))
    if "floor" in groups:
        layers = loose_layers(bench.workdir, app)
        with server(bench, kind) as registry:
            add("floor: curl PUT 3 layers", lambda r=registry: floor_put(bench, r, layers))
            if results["floor: curl PUT 3 layers", kind].samples[-1].ok:
                add("floor: curl GET 3 layers", lambda r=registry: floor_get(bench, r, layers))
    if "big" in groups:
        with server(bench, kind) as registry:
            add("push 844 MB none", lambda r=registry: push(bench, r, big, "bench/big", "none"))


def profile(bench: Bench) -> dict[str, object]:
    """py-spy attached to `freight serve` while freight pushes (none) and then pulls."""
    found: dict[str, object] = {}
    for name, compression in (("serve-push-none", "none"), ("serve-push-gzip", "gzip")):
        with server(bench, FREIGHT) as registry:
            assert registry.pid is not None
            found[name] = py_spy(bench.workdir, bench.workdir / f"profile-{name}.txt",
                                 pid=registry.pid,
                                 during=lambda r=registry, c=compression: push(
                                     bench, r, bench.archives.app, REPO, c))
            if name == "serve-push-none":
                found["serve-pull"] = py_spy(bench.workdir, bench.workdir / "profile-pull.txt",
                                             pid=registry.pid,
                                             during=lambda r=registry: pull(bench, r, REPO))
    return found


def targets(results: Results) -> list[str]:
    lines = []
    for op in results.ops:
        if op.startswith("push 844") or not results[op, FREIGHT].samples:
            continue
        f, d = results[op, FREIGHT].median(), results[op, DISTRIBUTION].median()
        if f is None or d is None:
            lines.append(f"- {op}: freight serve ≥ distribution: not measured")
            continue
        fmin = min(results[op, FREIGHT].ok_seconds())
        dmin = min(results[op, DISTRIBUTION].ok_seconds())
        if op.startswith("floor"):
            lines.append(f"- ({op}, no client work: distribution / freight serve = "
                         f"{d / f:.2f}x; on minimums {dmin / fmin:.2f}x)")
            continue
        lines.append(f"- {op}: distribution / freight serve = {d / f:.2f}x (on minimums "
                     f"{dmin / fmin:.2f}x) -> {'met' if d / f >= 1.0 else 'MISSED'}")
    rss = results["push 844 MB none", FREIGHT].peak_server_rss()
    if rss is None:
        lines.append(f"- freight serve peak RSS < {RSS_TARGET_MB} MB receiving 844 MB: "
                     "not measured")
    else:
        lines.append(f"- freight serve peak RSS < {RSS_TARGET_MB} MB receiving 844 MB: "
                     f"{rss:.0f} MB -> {'met' if rss < RSS_TARGET_MB else 'MISSED'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--skip-big", action="store_true", help="skip the 844 MB RSS runs")
    parser.add_argument("--only", default=",".join(GROUPS), metavar="GROUPS",
                        help="comma-separated subset of " + ",".join(GROUPS)
                             + " (default: all)")
    args = parser.parse_args(argv)
    args.groups = set(args.only.split(",")) - ({"big"} if args.skip_big else set())
    if not args.groups <= set(GROUPS):
        parser.error(f"--only takes {','.join(GROUPS)}")
    return run_main("serve_bench", args, _session)


def _session(args: argparse.Namespace) -> int:
    archives = load_archives(args.workdir.resolve(), args.mirror)
    variants = app_variants(archives.app, args.workdir.resolve() / "images" / "variants",
                            CONCURRENT)
    with bench_session(args, archives) as bench:
        for path in (archives.app, archives.big, *variants):
            _warm_page_cache(path)
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        results = Results(archives.app, archives.big)
        for index in range(args.runs):
            print(f"round {index + 1}/{args.runs}", flush=True)
            order = KINDS if index % 2 == 0 else KINDS[::-1]
            for kind in order:
                run_round(bench, results, kind, variants, args.groups)
        rows = [r for r in results.ordered() if r.samples]
        report = {
            "started": started, "runs": args.runs, "image": archives.meta,
            "variants": [str(v) for v in variants],
            "niceness": os.getpriority(os.PRIO_PROCESS, 0),
            "registry_storage_under": str(args.registry_dir),
            "background_busy_cores": spread(bench.background),
            "freight": bench.freight_source,
            "results": results_json(rows),
            "table": compare_table(rows, results.base_of(), "÷ freight serve", server=True),
            "targets": targets(results),
            "groups": sorted(args.groups),
            "profile": profile(bench) if args.profile else None,
        }
        publish("serve", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
