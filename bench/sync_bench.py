"""`freight sync` against `skopeo sync`: docker -> docker and docker -> local, cold and
re-sync, on three images (repositories) of N tags each that share a base layer.

    python bench/sync_bench.py --runs 3 --tags 20      # the issue's set
    python bench/sync_bench.py --runs 1 --tags 3       # a smoke run

The source is a CNCF distribution registry filled over the v2 API with seeded random
layers (nothing compresses): a base layer shared by every tag, one layer per image and one
per tag. Each cold run syncs into a brand-new destination registry (or empty directory);
the re-sync then runs the same command again with nothing new. freight writes a bundle
for "-> local" (one tar), skopeo a `dir:` tree: both are what a user carries across a gap.
Reported: median/min/max wall time per case, and the bytes the destination holds
(equal to the unique blobs when nothing is sent twice). Results go to
bench/results/sync-<UTC time>.json. Timing happens only here, never in tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench_procs import Registry, fresh_registry

HERE = Path(__file__).resolve().parent
IMAGES = ("app1", "app2", "app3")
MB = 1 << 20
BASE_MB, IMAGE_MB, TAG_KB = 8, 2, 256  # shared / per image / per tag layer sizes


def _put(url: str, data: bytes, method: str, headers: dict[str, str]) -> dict[str, str]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as reply:
        return dict(reply.headers)


def _blob(host: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = _put(f"http://{host}/v2/{repo}/blobs/uploads/", b"", "POST", {})
    location = start["Location"]
    location = location if location.startswith("http") else f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    _put(f"{location}{sep}digest={digest}", data, "PUT",
         {"Content-Type": "application/octet-stream"})
    return digest


def fill(source: Registry, tags: int) -> int:
    """Push IMAGES x `tags` images to `source`; return the bytes of unique blobs."""
    rng = random.Random(7)
    base = rng.randbytes(BASE_MB * MB)
    unique = len(base)
    for image in IMAGES:
        own = rng.randbytes(IMAGE_MB * MB)
        unique += len(own)
        for t in range(tags):
            mine = rng.randbytes(TAG_KB * 1024)
            layers = [base, own, mine]
            config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
                "type": "layers", "diff_ids": [
                    "sha256:" + hashlib.sha256(x).hexdigest() for x in layers]}}).encode()
            unique += len(mine) + len(config)
            descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                      "digest": _blob(source.host, image, x), "size": len(x)} for x in layers]
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": _blob(source.host, image, config), "size": len(config)},
                "layers": descs}).encode()
            _put(f"http://{source.host}/v2/{image}/manifests/{t}.0.0", manifest, "PUT",
                 {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    return unique


def configs(work: Path, source: str) -> tuple[Path, Path]:
    """The same selection for both tools: every tag of every image."""
    freight = work / "freight-sync.yaml"
    freight.write_text(json.dumps({"sync": [{"source": f"{source}/{i}"} for i in IMAGES]}))
    skopeo = work / "skopeo-sync.yaml"
    skopeo.write_text(json.dumps({source: {"tls-verify": False,
                                           "images": {i: [] for i in IMAGES}}}))
    return freight, skopeo


def commands(freight_cfg: Path, skopeo_cfg: Path) -> dict[str, Callable[[str], list[str]]]:
    """case -> argv for a destination (a registry host, or a local path)."""
    freight = [sys.executable, "-m", "freight"]
    return {
        # freight as users get it: referrers on (the set has none; discovery still asks)
        "freight sync -> registry": lambda dst: [*freight, "sync", str(freight_cfg), "--json"],
        "skopeo sync -> registry": lambda dst: [
            "skopeo", "sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false",
            str(skopeo_cfg), f"{dst}/mirror"],
        "freight sync -> bundle": lambda dst: [*freight, "sync", str(freight_cfg), "--to",
                                               f"{dst}/bundle.tar", "--json"],
        "skopeo sync -> dir": lambda dst: [
            "skopeo", "sync", "--src", "yaml", "--dest", "dir", str(skopeo_cfg), dst],
    }


SENT: list[int] = []  # bytes freight's --json report says each run sent, in run order


def timed(argv: list[str], env: dict[str, str], *, may_fail: bool = False) -> float:
    """Seconds `argv` took; NaN when it failed and `may_fail` (skopeo refuses to re-sync
    into a `dir:` destination: "Refusing to overwrite destination directory")."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        if may_fail:
            print(f"note: {' '.join(argv[:2])} failed: {done.stderr.strip()[-200:]}")
            return float("nan")
        raise SystemExit(f"{argv[:4]} failed ({done.returncode}):\n{done.stdout[-3000:]}"
                         f"{done.stderr[-2000:]}")
    if "--json" in argv:
        SENT.append(int(json.loads(done.stdout)["bytes"]))
    return elapsed


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def one_case(name: str, argv_for: Callable[[str], list[str]], work: Path, freight_cfg: Path,
             env: dict[str, str]) -> dict[str, object]:
    """Cold into a new destination, then the re-sync; with the bytes the destination holds."""
    if name.endswith("-> registry"):
        with fresh_registry(work) as dst:
            argv = argv_for(dst.host)
            if name.startswith("freight"):
                _retarget(freight_cfg, dst.host)
            cold, warm = timed(argv, env), timed(argv, env)
            return {"cold": cold, "resync": warm, "bytes": du(dst.storage / "docker"),
                    **_sent(name)}
    target = Path(tempfile.mkdtemp(prefix="sync-dst-", dir=work))
    try:
        argv = argv_for(str(target))
        cold = timed(argv, env)
        warm = timed(argv, env, may_fail=True)  # freight rewrites the bundle
        return {"cold": cold, "resync": warm, "bytes": du(target), **_sent(name)}
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _sent(name: str) -> dict[str, int]:
    """freight's own count of the bytes it sent, cold and re-sync (skopeo reports none)."""
    if not name.startswith("freight"):
        return {}
    return {"sent_cold": SENT[-2], "sent_resync": SENT[-1]}


def _retarget(config: Path, host: str) -> None:
    data = json.loads(config.read_text())
    data["destination"] = {"registry": host, "prefix": "mirror/"}
    config.write_text(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tags", type=int, default=20, help="tags per image (3 images)")
    parser.add_argument("--workdir", default="/tmp/freight-sync-bench")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    # as an installed freight runs: with bytecode (pip compiles on install; a shell that
    # sets PYTHONDONTWRITEBYTECODE would recompile every module on every start)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(HERE.parent / "src")
    subprocess.run([sys.executable, "-m", "freight", "--help"], env=env, check=True,
                   capture_output=True)
    subprocess.run([sys.executable, "-c", "import freight.cli.sync, freight.sync.run, "
                    "freight.sync.gap, freight.sync.config"], env=env, check=True)
    with fresh_registry(work) as source:
        unique = fill(source, args.tags)
        freight_cfg, skopeo_cfg = configs(work, source.host)
        samples: dict[str, list[dict[str, object]]] = {}
        for _ in range(args.runs):
            for name, argv_for in commands(freight_cfg, skopeo_cfg).items():
                samples.setdefault(name, []).append(
                    one_case(name, argv_for, work, freight_cfg, env))
    report = summarise(samples, unique, args)
    out = HERE / "results" / f"sync-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"results: {out}")


def summarise(samples: dict[str, list[dict[str, object]]], unique: int,
              args: argparse.Namespace) -> dict[str, object]:
    print(f"{len(IMAGES)} images x {args.tags} tags; unique blobs {unique / MB:.1f} MiB; "
          f"{args.runs} run(s)")
    print(f"{'case':28} {'cold s (min-max)':22} {'re-sync s (min-max)':22} {'dest MiB':>9} "
          f"{'sent MiB (cold/re)':>19}")
    rows: dict[str, dict[str, object]] = {}
    for name, runs in samples.items():
        row = {k: [float(r[k]) for r in runs] for k in ("cold", "resync")}  # type: ignore[arg-type]
        last = runs[-1]
        sent: dict[str, int] = {k: int(str(last[k])) for k in ("sent_cold", "sent_resync")
                                if k in last}
        stats: dict[str, object] = {k: {"median": statistics.median(v), "min": min(v),
                                        "max": max(v)} for k, v in row.items()}
        rows[name] = {**stats, "bytes": last["bytes"], **sent}
        shown = "/".join(f"{v / MB:.1f}" for v in sent.values())
        print(f"{name:28} " + " ".join(
            f"{statistics.median(v):6.2f} ({min(v):.2f}-{max(v):.2f})".ljust(22)
            for v in row.values()) + f" {int(str(last['bytes'])) / MB:9.1f} {shown:>19}")
    return {"images": len(IMAGES), "tags": args.tags, "runs": args.runs,
            "unique_bytes": unique, "results": rows}


if __name__ == "__main__":
    main()
