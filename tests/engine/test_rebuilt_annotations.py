"""A manifest rebuilt on the way (a plain layer compressed) keeps each descriptor's
annotations where the bytes are sent unchanged (zstd:chunked's table of contents, a
title, a foreign layer's), and drops them from a converted layer: they described the
bytes it replaced. Layout to layout, layout to registry: one engine, one rule."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx

import freight
from freight import mediatypes as mt
from freight.testing import random_image
from freight.testing.registry import serve_in_thread

CHUNKED = {"io.github.containers.zstd-chunked.manifest-checksum": "sha256:" + "c" * 64,
           "org.opencontainers.image.title": "kept.tar.gz"}
PLAIN = {"org.opencontainers.image.title": "plain.tar"}


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _annotated_layout(path: Path) -> None:
    """An OCI layout of a gzip layer and a plain one, each descriptor annotated."""
    random_image(path, layers=2, format="oci", compression=("gzip", "none"), seed=31)
    index = json.loads((path / "index.json").read_bytes())
    manifest = json.loads(_blob(path, index["manifests"][0]["digest"]).read_bytes())
    manifest["layers"][0]["annotations"] = CHUNKED
    manifest["layers"][1]["annotations"] = PLAIN
    raw = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    _blob(path, digest).write_bytes(raw)
    index["manifests"][0].update(digest=digest, size=len(raw))
    (path / "index.json").write_text(json.dumps(index))


def _layers(manifest: bytes) -> list[dict[str, object]]:
    layers: list[dict[str, object]] = json.loads(manifest)["layers"]
    return layers


def test_a_layout_copy_keeps_the_annotations_of_the_unchanged_layer(tmp_path: Path) -> None:
    source, out = tmp_path / "source", tmp_path / "out"
    _annotated_layout(source)
    (result,) = freight.copy(f"oci:{source}", f"oci:{out}:1", compression="gzip")
    kept, compressed = _layers(_blob(out, str(result.digest)).read_bytes())
    assert kept["annotations"] == CHUNKED
    assert kept["mediaType"] == mt.OCI_LAYER_GZIP
    assert "annotations" not in compressed
    assert compressed["mediaType"] == mt.OCI_LAYER_GZIP  # the plain layer, gzipped now


def test_a_push_to_a_registry_keeps_them_too(tmp_path: Path) -> None:
    """(Without the rebuild, a copy keeps the source's manifest bytes, annotations and
    all; the rebuild is what this checks.)"""
    source = tmp_path / "source"
    _annotated_layout(source)
    with serve_in_thread(tmp_path / "registry") as registry:
        # push's default compresses the plain layer and keeps the gzip one as it is
        (result,) = freight.push(str(source), f"{registry.host}/annotated/app:1")
        answer = httpx.get(f"{registry.url}/v2/annotated/app/manifests/{result.digest}",
                           headers={"Accept": mt.OCI_MANIFEST})
    kept, compressed = _layers(answer.content)
    assert kept["annotations"] == CHUNKED
    assert "annotations" not in compressed
