"""Pull and copy benchmark: freight against skopeo and docker, cold, on loopback.

    python bench/pull_bench.py [--runs 3] [--registry-dir /dev/shm] [--profile]

Source: one CNCF distribution registry for the whole session, to which freight pushes the
~267 MB app image once (default gzip: ~130 MB of blobs). Each round then runs:

* pull to a tar on disk ($TMPDIR, under the work dir): `freight pull REF out.tar`,
  `skopeo copy docker://REF docker-archive:out.tar` (and, for reference, to
  `oci-archive:`, which keeps the gzip blobs as freight's tar does);
* `docker pull REF` into a brand-new dockerd with an empty data root (vfs, on disk);
* registry to registry: `freight copy` and `skopeo copy` to a brand-new distribution
  registry (second port) each run.

freight gets an empty cache every run. Peak RSS is the tool's (`/usr/bin/time -v`); for
docker, the CLI only asks dockerd, so dockerd's own peak RSS and CPU are reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_cli import add_common_args, run_main
from bench_extras import COPY_FLOOR_SCRIPT, GET_FLOOR_SCRIPT, has_blob, manifest_blobs
from bench_procs import BenchError, ProcStats, Registry, fresh_registry, private_docker
from bench_report import Sample, ToolResult, compare_table
from bench_session import (
    bench_session,
    load_archives,
    publish,
    py_spy,
    results_json,
    spread,
    step,
)
from push_bench import Bench, _warm_page_cache, timed

REPO, TAG = "bench/app", "1"
PULL_TARGET = 1.5  # issue 10: pull to a tar >= 1.5x faster than skopeo to oci-archive
COPY_TARGET = 1.2  # issue 10: copy registry -> registry >= 1.2x faster than skopeo
START_TARGET = 0.12  # issue 10: seconds for a registry command's start-up


def _out_ok(sample: Sample, out: Path) -> Sample:
    if sample.ok and (not out.exists() or out.stat().st_size < 1 << 20):
        sample.ok, sample.detail = False, "exit 0, but no output tar"
    return sample


def pull_to_tar(bench: Bench, argv_for: Callable[[Path], list[str]], *,
                freight: bool) -> Sample:
    out = bench.scratch / "out.tar"
    out.unlink(missing_ok=True)
    cache = bench.new_cache()
    env = bench.cache_env(cache) if freight else None
    try:
        return _out_ok(timed(argv_for(out), env=env, scratch=bench.scratch), out)
    finally:
        out.unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)


def docker_pull(bench: Bench, ref: str) -> Sample:
    """A new dockerd, empty data root (vfs, on disk), then `docker pull`: download, gunzip,
    unpack into vfs and register the image. Only the pull is timed."""
    data_root = Path(tempfile.mkdtemp(prefix="docker-pull-", dir=bench.scratch))
    try:
        with private_docker(data_root / "root") as docker:
            stats = ProcStats(docker.service.process.pid).start()
            sample = timed(["/usr/bin/docker", "pull", "--quiet", ref], env=docker.env,
                           scratch=bench.scratch)
            sample.server_rss_mb, sample.server_cpu_s = stats.stop()
            sample.rss_mb = sample.cpu_s = None  # the CLI's own numbers say nothing
            if sample.ok and docker.run("image", "inspect", ref, check=False).returncode:
                sample.ok, sample.detail = False, "exit 0, but dockerd has no such image"
            return sample
    finally:
        shutil.rmtree(data_root, ignore_errors=True)


def copy(bench: Bench, argv_for: Callable[[Registry], list[str]], *, freight: bool) -> Sample:
    cache = bench.new_cache()
    env = bench.cache_env(cache) if freight else None
    try:
        with fresh_registry(bench.registry_parent) as dest:
            sample = timed(argv_for(dest), env=env, scratch=bench.scratch)
            if sample.ok and not dest.has_manifest(REPO, TAG):
                sample.ok, sample.detail = False, "exit 0, but no manifest at the destination"
            return sample
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def copy_floor(bench: Bench, source: Registry, blobs: list[str]) -> Sample:
    with fresh_registry(bench.registry_parent) as dest:
        sample = timed(["bash", "-c", COPY_FLOOR_SCRIPT, "floor", source.host, dest.host,
                        *blobs], scratch=bench.scratch)
        if sample.ok and not all(has_blob(dest.host, REPO, d) for d in blobs):
            sample.ok, sample.detail = False, "a blob is missing at the destination"
        return sample


def run_all(bench: Bench, source: Registry, runs: int) -> list[ToolResult]:
    ref = f"{source.host}/{REPO}:{TAG}"
    blobs = manifest_blobs(source.host, REPO, TAG)
    fp = ToolResult("pull: freight pull → tar", "freight pull REF out.tar --quiet")
    sp = ToolResult("pull: skopeo → docker-archive",
                    "skopeo copy --src-tls-verify=false docker://REF docker-archive:out.tar")
    so = ToolResult("pull: skopeo → oci-archive (reference)",
                    "skopeo copy --src-tls-verify=false docker://REF oci-archive:out.tar")
    dp = ToolResult("pull: docker pull (empty dockerd)", "docker pull REF")
    fc = ToolResult("copy: freight copy", "freight copy REF B/bench/app:1 --quiet")
    sc = ToolResult("copy: skopeo copy", "skopeo copy --src-tls-verify=false "
                    "--dest-tls-verify=false docker://REF docker://B/bench/app:1")
    pf = ToolResult("pull floor: curl GET blobs → /dev/null",
                    "curl -o /dev/null each blob (config + 3 layers), all at once")
    st = ToolResult("start-up: freight tags REPO", "one registry command: start-up + one GET")
    py = ToolResult("start-up floor: python -c pass", "the interpreter alone, with site")
    cf = ToolResult("copy floor: curl GET piped to curl PUT",
                    "per blob: curl GET SRC | curl -T - PUT DST, all at once, no manifest")
    skopeo = ["skopeo", "copy", "--quiet", "--src-tls-verify=false"]
    steps: list[tuple[ToolResult, Callable[[], Sample]]] = [
        (fp, lambda: pull_to_tar(bench, lambda out: [*bench.freight, "pull", ref, str(out),
                                                     "--quiet"], freight=True)),
        (sp, lambda: pull_to_tar(bench, lambda out: [*skopeo, f"docker://{ref}",
                                                     f"docker-archive:{out}"], freight=False)),
        (so, lambda: pull_to_tar(bench, lambda out: [*skopeo, f"docker://{ref}",
                                                     f"oci-archive:{out}"], freight=False)),
        (pf, lambda: timed(["bash", "-c", GET_FLOOR_SCRIPT, "floor", source.host, *blobs],
                           scratch=bench.scratch)),
        (dp, lambda: docker_pull(bench, ref)),
        (fc, lambda: copy(bench, lambda d: [*bench.freight, "copy", ref,
                                            f"{d.host}/{REPO}:{TAG}", "--quiet"],
                          freight=True)),
        (sc, lambda: copy(bench, lambda d: [*skopeo, "--dest-tls-verify=false",
                                            f"docker://{ref}", f"docker://{d.host}/{REPO}:{TAG}"],
                          freight=False)),
        (cf, lambda: copy_floor(bench, source, blobs)),
        (st, lambda: timed([*bench.freight, "tags", f"{source.host}/{REPO}"],
                           env=bench.freight_env, scratch=bench.scratch)),
        (py, lambda: timed([sys.executable, "-c", "pass"], scratch=bench.scratch)),
    ]
    for index in range(runs):
        print(f"round {index + 1}/{runs}", flush=True)
        for result, make in steps:
            step(bench, result, lambda r=result, m=make: r.samples.append(m()))
    return [fp, sp, so, pf, dp, fc, sc, cf, st, py]


def targets(by_name: dict[str, ToolResult]) -> list[str]:
    lines = []
    for label, mine, theirs, target in (
            ("pull: freight ≥ 1.5x faster than skopeo (oci-archive)",
             "pull: freight pull → tar", "pull: skopeo → oci-archive (reference)", PULL_TARGET),
            ("copy: freight ≥ 1.2x faster than skopeo", "copy: freight copy",
             "copy: skopeo copy", COPY_TARGET)):
        f, s = by_name[mine], by_name[theirs]
        if f.median() is None or s.median() is None:
            lines.append(f"- {label}: not measured")
            continue
        ratio = s.median() / f.median()  # type: ignore[operator]
        best = min(s.ok_seconds()) / min(f.ok_seconds())
        lines.append(f"- {label}: {ratio:.2f}x (on minimums {best:.2f}x; freight peak RSS "
                     f"{f.peak_rss() or 0:.0f} MB, skopeo {s.peak_rss() or 0:.0f} MB) -> "
                     f"{'met' if ratio >= target else 'MISSED'}")
    start = by_name["start-up: freight tags REPO"].median()
    if start is not None:
        lines.append(f"- a registry command starts in <= {START_TARGET} s: {start:.3f} s "
                     f"(median, with one GET) -> {'met' if start <= START_TARGET else 'MISSED'}")
    return lines


def profile(bench: Bench, source: Registry) -> dict[str, object]:
    ref = f"{source.host}/{REPO}:{TAG}"
    found: dict[str, object] = {}
    cache = bench.new_cache()
    out = bench.scratch / "profile-out.tar"
    found["pull"] = py_spy(bench.workdir, bench.workdir / "profile-freight-pull.txt",
                           argv=[*bench.freight, "pull", ref, str(out), "--quiet"],
                           env=bench.cache_env(cache))
    out.unlink(missing_ok=True)
    with fresh_registry(bench.registry_parent) as dest:
        found["copy"] = py_spy(bench.workdir, bench.workdir / "profile-freight-copy.txt",
                               argv=[*bench.freight, "copy", ref, f"{dest.host}/{REPO}:{TAG}",
                                     "--quiet"], env=bench.cache_env(bench.new_cache()))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    args = parser.parse_args(argv)
    return run_main("pull_bench", args, _session)


def _session(args: argparse.Namespace) -> int:
    archives = load_archives(args.workdir.resolve(), args.mirror)
    with bench_session(args, archives) as bench, \
            fresh_registry(bench.registry_parent) as source:
        _warm_page_cache(archives.app)
        cache = bench.new_cache()
        seed = timed([*bench.freight, "push", str(archives.app), f"{source.host}/{REPO}:{TAG}",
                      "--quiet"], env=bench.cache_env(cache), scratch=bench.scratch)
        if not seed.ok or not source.has_manifest(REPO, TAG):
            raise BenchError(f"seeding the source registry failed: {seed.detail}")
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        results = run_all(bench, source, args.runs)
        by_name = {r.name: r for r in results}
        firsts = {"pull": "pull: freight pull → tar", "copy": "copy: freight copy",
                  "start-up": "start-up: freight tags REPO"}
        base = {r.name: next(v for k, v in firsts.items() if r.name.startswith(k))
                for r in results}
        report = {
            "started": started, "runs": args.runs, "image": archives.meta,
            "niceness": os.getpriority(os.PRIO_PROCESS, 0),
            "registry_storage_under": str(args.registry_dir),
            "background_busy_cores": spread(bench.background),
            "freight": bench.freight_source,
            "results": results_json(results),
            "table": compare_table(results, base, "÷ freight", server=True),
            "targets": targets(by_name),
            "profile": profile(bench, source) if args.profile else None,
        }
        publish("pull", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
