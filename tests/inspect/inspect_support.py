"""Helpers for the inspect tests: registries under test, and images pushed with plain HTTP
requests that share no code with freight."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from freight.testing import layer_tar
from support.procs import free_port, wait_until

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCEPT = f"{OCI_INDEX}, {OCI_MANIFEST}, application/vnd.docker.distribution.manifest.v2+json"
ARCHES = ("amd64", "arm64")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Target:
    """A registry under test: `host` for references, `kind` is `freight` or `distribution`.

    `log` is the embedded registry's access log (one JSON line per request), if any.
    """

    host: str
    kind: str
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def deletes_tags(self) -> bool:
        """distribution 2.8 has no tag deletion (protocol.md §3.5)."""
        return self.kind == "freight"

    @property
    def paginates_tags(self) -> bool:
        """distribution 2.8 ignores `n` and `last` on tags lists (protocol.md §3.6)."""
        return self.kind == "freight"

    def requests(self) -> list[dict[str, Any]]:
        """Every request the embedded registry has logged so far."""
        assert self.log is not None, "only the embedded registry keeps an access log here"
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


@dataclass(frozen=True)
class PushedIndex:
    """A two-platform OCI index: digests of the index, its manifests and their configs."""

    reference: str
    index: str
    manifests: dict[str, str]  # arch -> manifest digest
    configs: dict[str, bytes]  # arch -> config bytes
    raw: bytes


def start_served(root: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Target]:
    """`freight serve` on a free loopback port, its access log in `root/../serve.log`."""
    port = free_port()
    log = root.parent / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "freight", "serve", "--root", str(root),
             "--address", f"127.0.0.1:{port}", *extra],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    host = f"127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"http://{host}/v2/", timeout=1).status_code == 200,
               what=f"freight serve on {host}", timeout=30)
    return proc, Target(host, "freight", log)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(10)


def upload_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    """POST then PUT (protocol.md §2.1); the Location is used as returned."""
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = urljoin(str(started.url), started.headers["Location"])
    joiner = "&" if "?" in location else "?"
    digest = sha(data)
    done = client.put(f"{location}{joiner}digest={digest}", content=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def put_manifest(client: httpx.Client, repo: str, ref: str, raw: bytes, media_type: str) -> None:
    reply = client.put(f"/v2/{repo}/manifests/{ref}", content=raw,
                       headers={"Content-Type": media_type})
    assert reply.status_code == 201, reply.text


def get_manifest(target: Target, repo: str, ref: str) -> httpx.Response:
    """A plain GET with a full Accept list (no freight code)."""
    return httpx.get(f"{target.url}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT},
                     timeout=30)


def small_image(client: httpx.Client, repo: str, arch: str) -> tuple[bytes, bytes]:
    """Upload a one-layer linux/`arch` image's blobs; return (manifest bytes, config bytes)."""
    layer = layer_tar({f"etc/{arch}": f"built for {arch}\n".encode()})
    config = json.dumps({"architecture": arch, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    descriptors = []
    for data, media_type in ((config, OCI_CONFIG), (layer, OCI_LAYER)):
        descriptors.append({"mediaType": media_type, "digest": upload_blob(client, repo, data),
                            "size": len(data)})
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptors[0],
                "layers": descriptors[1:]}
    return json.dumps(manifest).encode(), config


def push_index(target: Target, repo: str, tag: str = "multi") -> PushedIndex:
    """Two single-layer images (linux/amd64, linux/arm64) and an OCI index over them."""
    with httpx.Client(base_url=target.url, timeout=30) as client:
        entries, manifests, configs = [], {}, {}
        for arch in ARCHES:
            raw, config = small_image(client, repo, arch)
            digest = sha(raw)
            put_manifest(client, repo, digest, raw, OCI_MANIFEST)
            manifests[arch], configs[arch] = digest, config
            entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw),
                            "platform": {"architecture": arch, "os": "linux"}})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                            "manifests": entries}).encode()
        put_manifest(client, repo, tag, index, OCI_INDEX)
    return PushedIndex(f"{target.host}/{repo}:{tag}", sha(index), manifests, configs, index)


def tag_raw(target: Target, repo: str, source: str, tags: list[str]) -> None:
    """PUT `source`'s manifest under each of `tags` with plain HTTP."""
    fetched = get_manifest(target, repo, source)
    assert fetched.status_code == 200, fetched.text
    media_type = fetched.headers["Content-Type"].split(";")[0]
    with httpx.Client(base_url=target.url, timeout=30) as client:
        for tag in tags:
            put_manifest(client, repo, tag, fetched.content, media_type)
