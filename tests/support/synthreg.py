"""Small images written straight to a registry over the v2 API (no docker, no freight).

Layers are deterministic bytes, so images built from the same names share blobs (the
"base layer" of several images), and two platforms make a real OCI index.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(name: str, size: int = 2048) -> bytes:
    """A tar holding one file of `size` bytes derived from `name` (same name, same bytes)."""
    seed = hashlib.sha256(name.encode()).digest()
    body = (seed * (size // len(seed) + 1))[:size]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(f"{name}.bin")
        info.size, info.mtime = len(body), 0
        tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


@dataclass(frozen=True)
class Pushed:
    digest: str
    media_type: str
    size: int
    blobs: tuple[str, ...]  # every blob digest the image needs


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    if client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200:
        return digest
    start = client.post(f"/v2/{repo}/blobs/uploads/")
    assert start.status_code == 202, start.text
    location = start.headers["Location"]
    sep = "&" if "?" in location else "?"
    done = client.put(f"{location}{sep}digest={digest}", content=data,
                      headers={"Content-Type": "application/octet-stream"})
    assert done.status_code == 201, done.text
    return digest


def push_manifest(client: httpx.Client, repo: str, ref: str, raw: bytes,
                  media_type: str) -> httpx.Response:
    reply = client.put(f"/v2/{repo}/manifests/{ref}", content=raw,
                       headers={"Content-Type": media_type})
    assert reply.status_code == 201, reply.text
    return reply


def push_image(client: httpx.Client, repo: str, tag: str | None, layers: list[str], *,
               arch: str = "amd64") -> Pushed:
    """One single-platform image whose layers are `layer(name)` for each name."""
    blobs = [layer(n) for n in layers]
    diff_ids = [digest_of(b) for b in blobs]
    config = json.dumps({"architecture": arch, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    push_blob(client, repo, config)
    for blob in blobs:
        push_blob(client, repo, blob)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(b), "size": len(b)}
                   for b in blobs]}).encode()
    push_manifest(client, repo, tag or digest_of(manifest), manifest, OCI_MANIFEST)
    return Pushed(digest_of(manifest), OCI_MANIFEST, len(manifest),
                  (digest_of(config), *diff_ids))


def push_index(client: httpx.Client, repo: str, tag: str, layers: list[str]) -> Pushed:
    """A two-platform (amd64, arm64) index over images of `layers` (+ an arch layer)."""
    children = [push_image(client, repo, None, [*layers, f"{tag}-{arch}"], arch=arch)
                for arch in ("amd64", "arm64")]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": c.media_type, "digest": c.digest, "size": c.size,
         "platform": {"os": "linux", "architecture": arch}}
        for c, arch in zip(children, ("amd64", "arm64"), strict=True)]}).encode()
    push_manifest(client, repo, tag, index, OCI_INDEX)
    return Pushed(digest_of(index), OCI_INDEX, len(index),
                  tuple(b for c in children for b in c.blobs))


def tags(client: httpx.Client, repo: str) -> list[str]:
    """Every tag, following `Link` pages."""
    out: list[str] = []
    url: str | None = f"/v2/{repo}/tags/list?n=1000"
    while url:
        reply = client.get(url)
        if reply.status_code == 404:
            return []
        out += reply.json().get("tags") or []
        link = reply.headers.get("Link", "")
        url = link[link.index("<") + 1:link.index(">")] if link else None
    return sorted(out)


def state(client: httpx.Client, repo: str) -> dict[str, str]:
    """tag -> digest for every tag of `repo` (what "equal registries" compares)."""
    accept = ", ".join((OCI_INDEX, OCI_MANIFEST,
                        "application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json"))
    return {t: client.head(f"/v2/{repo}/manifests/{t}",
                           headers={"Accept": accept}).headers["Docker-Content-Digest"]
            for t in tags(client, repo)}
