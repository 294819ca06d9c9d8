"""Non-distributable layers (Windows base layers; OCI's `nondistributable` types): a layer
descriptor with `urls` names bytes that whoever runs the image fetches from those URLs.
Registries do not store them (the blob is absent at the source), so freight leaves them
where they are, as docker and skopeo do: the manifest keeps the descriptor, nothing is sent,
and a destination that must hold every layer (a docker archive) is refused up front."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import httpx
import pytest

import freight
from freight import mediatypes as mt
from freight.errors import SourceError, UsageError
from freight.manifest import Manifest
from freight.results import Action
from support.fixtures import module_registry, own_cache

URL = "https://mcr.microsoft.test/v2/windows/servercore/blobs/"
FOREIGN_ANNOTATIONS = {"org.opencontainers.image.title": "servercore base"}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Windowsish:
    """An image whose base layer is foreign (absent from the registry) on top of which
    sits an ordinary layer, stored as the manifest says (`compressed` or a plain tar)."""

    def __init__(self, *, docker: bool, compressed: bool) -> None:
        self.foreign = b"base layer bytes that live at Microsoft"
        plain = _tar("hello.txt", b"hello from the top layer\n")
        self.top = gzip.compress(plain, mtime=0) if compressed else plain
        self.diff_ids = [_digest(b"the foreign layer's tar"), _digest(plain)]
        config = {"architecture": "amd64", "os": "windows", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": self.diff_ids}}
        self.config = json.dumps(config).encode()
        if docker:
            foreign_type = mt.DOCKER_FOREIGN_LAYER_GZIP
            top_type = mt.DOCKER_LAYER_GZIP if compressed else mt.DOCKER_LAYER
            kind, config_type = mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG
        else:
            foreign_type = mt.OCI_LAYER_ND_GZIP
            top_type = mt.OCI_LAYER_GZIP if compressed else mt.OCI_LAYER
            kind, config_type = mt.OCI_MANIFEST, mt.OCI_CONFIG
        self.foreign_digest = _digest(self.foreign)
        self.media_type = kind
        self.raw = json.dumps({
            "schemaVersion": 2, "mediaType": kind,
            "config": {"mediaType": config_type, "digest": _digest(self.config),
                       "size": len(self.config)},
            "layers": [
                {"mediaType": foreign_type, "digest": self.foreign_digest,
                 "size": len(self.foreign), "urls": [URL + self.foreign_digest],
                 "annotations": FOREIGN_ANNOTATIONS},
                {"mediaType": top_type, "digest": _digest(self.top), "size": len(self.top)},
            ]}).encode()

    def push(self, registry: str, repository: str, tag: str) -> str:
        """Store it through the raw API (no foreign blob: the registry needs none)."""
        with httpx.Client(base_url=f"http://{registry}") as http:
            for blob in (self.top, self.config):
                started = http.post(f"/v2/{repository}/blobs/uploads/")
                done = http.put(started.headers["location"], params={"digest": _digest(blob)},
                                content=blob)
                assert done.status_code == 201, done.text
            put = http.put(f"/v2/{repository}/manifests/{tag}", content=self.raw,
                           headers={"Content-Type": self.media_type})
            assert put.status_code == 201, put.text
        return f"{registry}/{repository}:{tag}"


registry = module_registry("external-registry")
_own_cache = own_cache(own_tmpdir=True)


def _blob_status(registry: str, repository: str, digest: str) -> int:
    return httpx.head(f"http://{registry}/v2/{repository}/blobs/{digest}").status_code


def _manifest(registry: str, repository: str, tag: str) -> bytes:
    answer = httpx.get(f"http://{registry}/v2/{repository}/manifests/{tag}",
                       headers={"Accept": ", ".join(mt.ACCEPT_MANIFESTS)})
    assert answer.status_code == 200, answer.text
    return answer.content


@pytest.mark.parametrize("docker", [True, False], ids=["docker", "oci"])
def test_registry_to_registry_keeps_the_manifest_and_sends_no_foreign_bytes(
        registry: str, docker: bool) -> None:
    image = Windowsish(docker=docker, compressed=True)
    name = "docker" if docker else "oci"
    source = image.push(registry, f"win/{name}", "1")
    (result,) = freight.copy(source, f"{registry}/win/{name}-copy:1")
    assert _manifest(registry, f"win/{name}-copy", "1") == image.raw
    actions = {str(b.digest): b.action for b in result.blobs}
    assert actions[image.foreign_digest] is Action.EXTERNAL
    assert _blob_status(registry, f"win/{name}-copy", image.foreign_digest) == 404
    assert _blob_status(registry, f"win/{name}-copy", _digest(image.top)) == 200


def test_a_layout_round_trip_keeps_the_digest_without_the_foreign_blob(
        registry: str, tmp_path: Path) -> None:
    image = Windowsish(docker=False, compressed=True)
    source = image.push(registry, "win/layout", "1")
    layout = tmp_path / "layout"
    (out,) = freight.copy(source, f"oci:{layout}:1")
    assert str(out.digest) == _digest(image.raw)
    blobs = {p.name for p in (layout / "blobs" / "sha256").iterdir()}
    assert image.foreign_digest.removeprefix("sha256:") not in blobs  # the spec allows it
    (back,) = freight.copy(f"oci:{layout}:1", f"{registry}/win/layout-back:1")
    assert back.digest == out.digest
    assert _manifest(registry, "win/layout-back", "1") == image.raw


@pytest.mark.parametrize(("docker", "compression", "kind", "foreign_type"), [
    (True, "gzip", mt.DOCKER_MANIFEST, mt.DOCKER_FOREIGN_LAYER_GZIP),
    (True, "zstd", mt.OCI_MANIFEST, mt.OCI_LAYER_ND_GZIP),
    (False, "gzip", mt.OCI_MANIFEST, mt.OCI_LAYER_ND_GZIP),
])
def test_a_rebuilt_manifest_keeps_the_foreign_descriptor_and_its_urls(
        registry: str, tmp_path: Path, docker: bool, compression: str, kind: str,
        foreign_type: str) -> None:
    """The top layer is a plain tar, so compressing it rebuilds the manifest: the foreign
    layer stays a foreign layer (in the new manifest's family of types), URLs included."""
    image = Windowsish(docker=docker, compressed=False)
    name = f"{compression}-{'docker' if docker else 'oci'}"
    source = image.push(registry, f"win/plain-{name}", "1")
    freight.copy(source, f"{registry}/win/rebuilt-{name}:1", compression=compression)
    raw = _manifest(registry, f"win/rebuilt-{name}", "1")
    manifest = Manifest.parse(raw, kind, "rebuilt")
    foreign, top = manifest.layers
    assert (foreign.media_type, str(foreign.digest), foreign.size) == (
        foreign_type, image.foreign_digest, len(image.foreign))
    assert foreign.urls == (URL + image.foreign_digest,)
    assert foreign.annotations == FOREIGN_ANNOTATIONS
    assert mt.layer_compression(top.media_type) == compression
    assert top.digest != _digest(image.top)  # compressed now


def test_a_docker_archive_is_refused_before_anything_is_written(
        registry: str, tmp_path: Path) -> None:
    source = Windowsish(docker=True, compressed=True).push(registry, "win/to-tar", "1")
    out = tmp_path / "win.tar"
    with pytest.raises(UsageError, match=r"non-distributable.*oci:DIR"):
        freight.pull(source, str(out))
    assert not out.exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert list(tmp_path.glob(".win.tar*")) == []
    (written,) = freight.pull(source, f"oci-archive:{tmp_path / 'win-oci.tar'}")
    assert (tmp_path / "win-oci.tar").exists() and written.digest is not None


def test_a_dry_run_counts_the_foreign_layer_apart(registry: str) -> None:
    image = Windowsish(docker=True, compressed=True)
    source = image.push(registry, "win/dry", "1")
    (result,) = freight.copy(source, f"{registry}/win/dry-copy:1", dry_run=True)
    actions = {str(b.digest): b.action for b in result.blobs}
    assert actions[image.foreign_digest] is Action.EXTERNAL
    assert _blob_status(registry, "win/dry-copy", _digest(image.config)) == 404


def test_urls_that_are_not_a_list_of_strings_are_a_source_error() -> None:
    from freight.manifest import Descriptor

    good = {"mediaType": mt.OCI_LAYER_ND_GZIP, "digest": "sha256:" + "a" * 64, "size": 1}
    assert Descriptor.from_json({**good, "urls": ["https://x/y"]}, "layer").urls == (
        "https://x/y",)
    assert Descriptor.from_json(good, "layer").urls == ()
    for bad in ("https://x/y", [1], {"u": "https://x"}):
        with pytest.raises(SourceError, match="urls must be a list of strings"):
            Descriptor.from_json({**good, "urls": bad}, "layer")


def test_the_summary_line_names_them() -> None:
    from freight.cli.progress_view import summary_text
    from freight.progress import Summary

    line = summary_text(Summary("copy", 1, 2, 0, 0, 350, 0.1, external=1))
    assert "1 non-distributable left at its URLs" in line
    line = summary_text(Summary("copy", 1, 2, 0, 0, 350, 0.1, external=2))
    assert "2 non-distributable left at their URLs" in line
    assert "non-distributable" not in summary_text(Summary("copy", 1, 2, 0, 0, 350, 0.1))
