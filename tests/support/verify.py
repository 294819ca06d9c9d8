"""Checking a pushed image through the registry API: media types match bytes, DiffIDs match."""

from __future__ import annotations

import gzip
import hashlib
import json
from typing import Any

import zstandard

from .registry import Registry
from .registry_api import FetchedManifest, blob, manifest

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar": ("tar", OCI_MANIFEST),
    "application/vnd.oci.image.layer.v1.tar+gzip": ("gzip", OCI_MANIFEST),
    "application/vnd.oci.image.layer.v1.tar+zstd": ("zstd", OCI_MANIFEST),
    "application/vnd.docker.image.rootfs.diff.tar": ("tar", DOCKER_MANIFEST),
    "application/vnd.docker.image.rootfs.diff.tar.gzip": ("gzip", DOCKER_MANIFEST),
}
CONFIG_TYPES = {
    OCI_MANIFEST: "application/vnd.oci.image.config.v1+json",
    DOCKER_MANIFEST: "application/vnd.docker.container.image.v1+json",
}


def sniff(data: bytes) -> str:
    """What the bytes are: gzip, zstd, tar (ustar magic, or an all-zero empty tar), unknown."""
    if data.startswith(GZIP_MAGIC):
        return "gzip"
    if data.startswith(ZSTD_MAGIC):
        return "zstd"
    if data[257:262] == b"ustar" or (len(data) >= 1024 and not any(data[:1024])):
        return "tar"
    return "unknown"


def decompress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.decompress(data)
    if kind == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_image(
    registry: Registry,
    repository: str,
    reference: str,
    *,
    image_id: str,
    compression: str | None,
) -> FetchedManifest:
    """Assert the pushed image is sound; ``compression`` is what every layer must be.

    Checks: manifest and config media types agree; config digest == the image ID docker
    gave it; every layer's media type matches its magic bytes and the manifest's family;
    every layer decompresses to the DiffID recorded in the config.
    """
    fetched = manifest(registry, repository, reference)
    body = fetched.json
    assert fetched.media_type in CONFIG_TYPES, fetched.media_type
    assert body.get("mediaType", fetched.media_type) == fetched.media_type
    assert body["config"]["mediaType"] == CONFIG_TYPES[fetched.media_type]
    assert body["config"]["digest"] == image_id, "config (image ID) changed on the way"
    config: dict[str, Any] = json.loads(blob(registry, repository, image_id))
    diff_ids = config["rootfs"]["diff_ids"]
    assert len(body["layers"]) == len(diff_ids)
    for index, (layer, diff_id) in enumerate(zip(body["layers"], diff_ids, strict=True)):
        _verify_layer(registry, repository, layer, diff_id, fetched.media_type, compression, index)
    return fetched


def _verify_layer(
    registry: Registry,
    repository: str,
    layer: dict[str, Any],
    diff_id: str,
    manifest_type: str,
    compression: str | None,
    index: int,
) -> None:
    data = blob(registry, repository, layer["digest"])
    where = f"layer {index} ({layer['mediaType']}, {layer['digest']})"
    assert layer["mediaType"] in LAYER_TYPES, f"{where}: unknown layer media type"
    labelled, family = LAYER_TYPES[layer["mediaType"]]
    assert family == manifest_type, f"{where}: layer type from another manifest family"
    actual = sniff(data)
    assert actual == labelled, f"{where}: labelled {labelled} but the bytes are {actual}"
    assert layer["size"] == len(data), f"{where}: size in manifest != blob size"
    if compression is not None:
        assert actual == compression, f"{where}: expected {compression} layers"
    assert sha256(decompress(data, actual)) == diff_id, f"{where}: does not match its DiffID"
