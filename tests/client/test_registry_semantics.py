"""What a user names is what they get: `name:tag@digest`, platforms with and without a
variant, and an upload session that keeps only the bytes the registry accepted.

Each test here was written against a bug seeded into the code that the rest of the suite
let through (mutation testing, README "Mutation testing").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import freight
from freight import mediatypes as mt
from freight.testing import (
    ImageSpec,
    Registry,
    config_for,
    random_image,
    random_layer,
    serve_in_thread,
    sha256,
)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    with serve_in_thread(tmp_path / "registry") as running:
        yield running


def _put_blob(client: httpx.Client, repo: str, data: bytes) -> None:
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    assert client.put(location, params={"digest": sha256(data)}, content=data).status_code == 201


def _put_manifest(client: httpx.Client, repo: str, ref: str, doc: object, kind: str) -> str:
    raw = json.dumps(doc).encode()
    reply = client.put(f"/v2/{repo}/manifests/{ref}", content=raw,
                       headers={"Content-Type": kind})
    assert reply.status_code == 201, reply.text
    return sha256(raw)


def _push_index(registry: Registry, repo: str, platforms: list[tuple[str, str | None]]) -> None:
    """An OCI index tagged `v1` with one single-layer image per (architecture, variant)."""
    children = []
    with httpx.Client(base_url=registry.url) as client:
        for number, (arch, variant) in enumerate(platforms):
            layer = random_layer(100, seed=number)
            config = config_for(ImageSpec([layer], architecture=arch))
            for blob in (layer, config):
                _put_blob(client, repo, blob)
            manifest = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256(config),
                                   "size": len(config)},
                        "layers": [{"mediaType": mt.OCI_LAYER, "digest": sha256(layer),
                                    "size": len(layer)}]}
            digest = _put_manifest(client, repo, sha256(json.dumps(manifest).encode()),
                                   manifest, mt.OCI_MANIFEST)
            platform = {"os": "linux", "architecture": arch}
            if variant:
                platform["variant"] = variant
            children.append({"mediaType": mt.OCI_MANIFEST, "digest": digest,
                             "size": len(json.dumps(manifest).encode()), "platform": platform})
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": children}
        _put_manifest(client, repo, "v1", index, mt.OCI_INDEX)


def _architecture(pulled: Path) -> str:
    index = json.loads((pulled / "index.json").read_text())
    manifest = json.loads((pulled / "blobs" / "sha256" /
                           index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    config = (pulled / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1])
    return str(json.loads(config.read_bytes())["architecture"])


def test_tag_and_digest_pulls_the_digest(registry: Registry, tmp_path: Path) -> None:
    """`repo:tag@digest` means the digest, as docker says; the tag is only a label."""
    first = random_image(tmp_path / "one.tar", layers=1, seed=1)
    second = random_image(tmp_path / "two.tar", layers=1, seed=2)
    (one,) = freight.push(first.path, registry.reference("team/app", "1"))
    freight.push(second.path, registry.reference("team/app", "2"))
    (pulled,) = freight.pull(f"{registry.reference('team/app', '2')}@{one.digest}",
                             str(tmp_path / "out"), format="oci")
    assert pulled.digest == one.digest
    config = [b for b in pulled.blobs if b.media_type in (mt.OCI_CONFIG, mt.DOCKER_CONFIG)]
    assert [str(b.digest) for b in config] == [first.image.config_digest]


@pytest.mark.parametrize(("asked", "expected"), [
    ("linux/arm64", "arm64"),  # no variant asked: arm64/v8 will do, as docker picks it
    ("linux/arm64/v8", "arm64"),
    ("linux/amd64", "amd64"),  # the index lists amd64 without a variant
])
def test_platform_without_a_variant_matches_any_variant(
        registry: Registry, tmp_path: Path, asked: str, expected: str) -> None:
    _push_index(registry, "multi/app", [("amd64", None), ("arm64", "v8")])
    out = tmp_path / "out"
    freight.pull(registry.reference("multi/app", "v1"), str(out), format="oci", platform=asked)
    assert _architecture(out) == expected


def test_platform_with_another_variant_is_not_found(registry: Registry, tmp_path: Path) -> None:
    """A platform that matches nothing is a usage error (exit 2) naming what there is."""
    _push_index(registry, "multi/app", [("amd64", None), ("arm64", "v8")])
    with pytest.raises(freight.UsageError, match="linux/arm64/v7"):
        freight.pull(registry.reference("multi/app", "v1"), str(tmp_path / "out"),
                     format="oci", platform="linux/arm64/v7")


def test_a_refused_chunk_leaves_the_session_as_it_was(registry: Registry) -> None:
    """A PATCH whose body is shorter than its Content-Range is refused, and its bytes are
    not kept: the client resends from the same offset and the blob is whole."""
    data = bytes(range(256)) * 4
    with httpx.Client(base_url=registry.url) as client:
        location = client.post("/v2/team/app/blobs/uploads/").headers["location"]
        short = client.patch(location, content=iter([data[:100]]),
                             headers={"Content-Range": f"0-{len(data) - 1}",
                                      "Content-Type": "application/octet-stream"})
        assert short.status_code == 400 and "SIZE_INVALID" in short.text
        status = client.get(location)
        assert status.headers["range"] == "0-0"  # nothing kept
        whole = client.patch(location, content=data,
                             headers={"Content-Range": f"0-{len(data) - 1}",
                                      "Content-Type": "application/octet-stream"})
        assert whole.status_code == 202, whole.text
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        done = client.put(whole.headers["location"], params={"digest": digest})
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/team/app/blobs/{digest}").content == data
