"""skopeo's `dir:` directories (sources/skopeo_dir.py), written here as skopeo writes them:
a version file, the image's own manifest as manifest.json, blobs named by hex digest."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError
from freight.manifest import Platform
from freight.sources import open_archive
from freight.sources.model import ImageNode, IndexNode
from freight.testing.layers import random_layer

VERSION = b"Directory Transport Version: 1.1\n"


def _image(root: Path, arch: str = "amd64", *, layer_name: str = "{hex}",
           gzip_label_on_plain: bool = False) -> tuple[bytes, Digest]:
    """Write one image's config and layer into `root`; its manifest bytes and diff_id."""
    tar = random_layer(2000, seed=len(arch))
    data = tar if gzip_label_on_plain else gzip.compress(tar, mtime=0)
    diff_id = Digest.of(tar)
    config = json.dumps({"architecture": arch, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [str(diff_id)]}}).encode()
    for blob in (config, data):
        name = layer_name if blob is data else "{hex}"
        (root / name.format(hex=Digest.of(blob).encoded)).write_bytes(blob)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(Digest.of(config)),
                   "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": str(Digest.of(data)),
                    "size": len(data)}],
    }).encode()
    return manifest, diff_id


def _dir(tmp_path: Path, manifest: bytes | None = None, **options: object) -> Path:
    root = tmp_path / "dir"
    root.mkdir(exist_ok=True)
    (root / "version").write_bytes(VERSION)
    if manifest is None:
        manifest, _ = _image(root, **options)  # type: ignore[arg-type]
    (root / "manifest.json").write_bytes(manifest)
    return root


def test_a_dir_image_is_read_unnamed_with_its_own_manifest(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    manifest, diff_id = _image(root)
    _dir(tmp_path, manifest)
    with open_archive(root) as source:
        [image] = source.images
        digest = Digest.of(manifest)
        assert image.names == () and image.bare_tags == () and image.notes == ()
        assert image.label == f"image {digest.short}"
        node = image.root
        assert isinstance(node, ImageNode)
        assert node.manifest is not None and node.manifest.raw == manifest
        [layer] = node.layers
        assert layer.diff_id == diff_id and layer.media_type == mt.OCI_LAYER_GZIP
        with layer.open() as f:
            assert Digest.of(f.read()) == layer.digest
        with node.config.open() as f:
            assert Digest.of(f.read()) == node.config.digest


def test_version_1_0_layers_named_hex_tar_are_found(tmp_path: Path) -> None:
    root = _dir(tmp_path, layer_name="{hex}.tar")
    with open_archive(root) as source:
        node = source.images[0].root
        assert isinstance(node, ImageNode)
        with node.layers[0].open() as f:
            assert Digest.of(f.read()) == node.layers[0].digest


def test_a_plain_tar_labelled_gzip_is_taken_for_what_it_is(tmp_path: Path) -> None:
    root = _dir(tmp_path, gzip_label_on_plain=True)
    with open_archive(root) as source:
        [image] = source.images
        assert isinstance(image.root, ImageNode)
        assert image.root.layers[0].media_type == mt.OCI_LAYER
        assert len(image.notes) == 1 and "labelled gzip but its bytes are tar" in image.notes[0]


def _index(tmp_path: Path, arches: list[str], *, drop: str | None = None) -> Path:
    root = tmp_path / "dir"
    root.mkdir()
    entries = []
    for arch in arches:
        manifest, _ = _image(root, arch)
        digest = Digest.of(manifest)
        if arch != drop:
            (root / f"{digest.encoded}.manifest.json").write_bytes(manifest)
        entries.append({"mediaType": mt.OCI_MANIFEST, "digest": str(digest),
                        "size": len(manifest),
                        "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                        "manifests": entries}).encode()
    return _dir(tmp_path, index)


def test_an_index_copied_with_all_is_read_whole(tmp_path: Path) -> None:
    root = _index(tmp_path, ["amd64", "arm64"])
    with open_archive(root) as source:
        [image] = source.images
        assert isinstance(image.root, IndexNode)
        assert [d.platform.architecture for d, _ in image.root.children  # type: ignore[union-attr]
                ] == ["amd64", "arm64"]
        assert image.label.startswith("image ") and image.notes == ()


def test_an_index_is_narrowed_to_the_platform_asked_for(tmp_path: Path) -> None:
    root = _index(tmp_path, ["amd64", "arm64"])
    with open_archive(root, platform=Platform("linux", "arm64")) as source:
        node = source.images[0].root
        assert isinstance(node, ImageNode)
        assert node.platform == Platform("linux", "arm64")


def test_an_index_with_an_instance_missing_keeps_the_complete_one(tmp_path: Path) -> None:
    root = _index(tmp_path, ["amd64", "arm64"], drop="amd64")
    with open_archive(root) as source:
        [image] = source.images
        assert isinstance(image.root, ImageNode)
        assert image.root.platform == Platform("linux", "arm64")
        label = f"image {Digest.of((root / 'manifest.json').read_bytes()).short}"
        [note] = image.notes
        assert note.startswith(f"{label}: pushing linux/arm64 only; the archive lacks "
                               "linux/amd64 (manifest sha256:")


def test_a_missing_layer_is_named(tmp_path: Path) -> None:
    root = _dir(tmp_path)
    manifest = json.loads((root / "manifest.json").read_bytes())
    (root / manifest["layers"][0]["digest"].split(":")[1]).unlink()
    with pytest.raises(SourceError) as caught:
        open_archive(root)
    assert str(caught.value) == \
        f"{root}: layer {manifest['layers'][0]['digest']} is not in the directory"


@pytest.mark.parametrize(("doc", "message"), [
    ({"schemaVersion": 1, "name": "x", "fsLayers": []},
     "manifest.json is neither an image manifest nor an index (schema 1: only schema 2 "
     "and OCI are read)"),
])
def test_a_manifest_freight_cannot_read_is_refused(tmp_path: Path, doc: object,
                                                   message: str) -> None:
    root = _dir(tmp_path, json.dumps(doc).encode())
    with pytest.raises(SourceError) as caught:
        open_archive(root)
    assert str(caught.value) == f"{root}: {message}"


def test_a_manifest_without_media_type_is_taken_as_oci(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    manifest, _ = _image(root)
    doc = json.loads(manifest)
    del doc["mediaType"]
    raw = json.dumps(doc).encode()
    _dir(tmp_path, raw)
    with open_archive(root) as source:
        node = source.images[0].root
        assert isinstance(node, ImageNode) and node.manifest is not None
        assert node.manifest.media_type == mt.OCI_MANIFEST and node.manifest.raw == raw


def test_an_index_without_media_type_is_taken_as_an_oci_index(tmp_path: Path) -> None:
    root = _index(tmp_path, ["amd64"])
    doc = json.loads((root / "manifest.json").read_bytes())
    del doc["mediaType"]
    (root / "manifest.json").write_bytes(json.dumps(doc).encode())
    with open_archive(root) as source:
        node = source.images[0].root
        assert isinstance(node, IndexNode) and node.index.media_type == mt.OCI_INDEX


@pytest.mark.parametrize("version", [b"Directory Transport Version: 1.0\n",
                                     b"Directory Transport Version:" + b"x" * 228])
def test_a_version_file_starting_right_and_small_enough_is_a_dir(tmp_path: Path,
                                                                  version: bytes) -> None:
    root = _dir(tmp_path)
    (root / "version").write_bytes(version)
    with open_archive(root) as source:
        assert source.images[0].names == ()


@pytest.mark.parametrize("version", [b"not skopeo\n",
                                     b"Directory Transport Version:" + b"x" * 229])
def test_anything_else_is_not_taken_for_a_dir(tmp_path: Path, version: bytes) -> None:
    """A manifest.json beside another `version` file is then read as a docker archive's."""
    root = _dir(tmp_path)
    (root / "version").write_bytes(version)
    with pytest.raises(SourceError, match=r"manifest\.json"):
        open_archive(root)


def test_a_manifest_that_is_no_json_object_is_refused(tmp_path: Path) -> None:
    root = _dir(tmp_path, b"[]")
    with pytest.raises(SourceError) as caught:
        open_archive(root)
    assert str(caught.value) == f"{root}/manifest.json must be a JSON object"


def test_a_version_file_without_a_manifest_is_not_an_image(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    (root / "version").write_bytes(VERSION)
    with pytest.raises(SourceError, match="not an image archive"):
        open_archive(root)


def test_a_docker_manifest_keeps_its_declared_type(tmp_path: Path) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    manifest, _ = _image(root)
    doc = json.loads(manifest)
    doc["mediaType"] = mt.DOCKER_MANIFEST
    doc["config"]["mediaType"] = mt.DOCKER_CONFIG
    doc["layers"][0]["mediaType"] = mt.DOCKER_LAYER_GZIP
    raw = json.dumps(doc).encode()
    _dir(tmp_path, raw)
    with open_archive(root) as source:
        node = source.images[0].root
        assert isinstance(node, ImageNode) and node.manifest is not None
        assert node.manifest.media_type == mt.DOCKER_MANIFEST


@pytest.mark.parametrize("declared", ["application/vnd.example+json", 7])
def test_a_type_that_is_no_manifest_type_is_judged_by_the_fields(tmp_path: Path,
                                                                 declared: object) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    manifest, _ = _image(root)
    doc = json.loads(manifest)
    doc["mediaType"] = declared
    _dir(tmp_path, json.dumps(doc).encode())
    with open_archive(root) as source:
        node = source.images[0].root
        assert isinstance(node, ImageNode)  # read as the image manifest it is


@pytest.mark.parametrize("field", ["config", "layers"])
def test_a_manifest_needs_both_config_and_layers(tmp_path: Path, field: str) -> None:
    root = tmp_path / "dir"
    root.mkdir()
    manifest, _ = _image(root)
    doc = json.loads(manifest)
    del doc["mediaType"]
    del doc[field]
    _dir(tmp_path, json.dumps(doc).encode())
    with pytest.raises(SourceError, match="is neither an image manifest nor an index"):
        open_archive(root)


def test_an_index_is_unnamed_too(tmp_path: Path) -> None:
    root = _index(tmp_path, ["amd64", "arm64"])
    with open_archive(root) as source:
        [image] = source.images
        assert image.names == () and image.bare_tags == ()


def test_a_dir_without_its_manifest_blob_is_named(tmp_path: Path) -> None:
    root = _index(tmp_path, ["amd64"], drop="amd64")
    with pytest.raises(SourceError, match="no complete image for any platform"):
        open_archive(root)


def test_a_config_that_is_no_json_object_names_the_image(tmp_path: Path) -> None:
    root = _dir(tmp_path)
    doc = json.loads((root / "manifest.json").read_bytes())
    (root / Digest.of(b"[1]").encoded).write_bytes(b"[1]")
    doc["config"].update(digest=str(Digest.of(b"[1]")), size=3)
    raw = json.dumps(doc).encode()
    (root / "manifest.json").write_bytes(raw)
    with pytest.raises(SourceError) as caught:
        open_archive(root)
    assert str(caught.value) == f"config of image {Digest.of(raw).short} must be a JSON object"


def test_a_manifest_too_large_to_be_one_is_refused_by_name(tmp_path: Path) -> None:
    from freight.sources.files import MAX_METADATA_SIZE

    root = _dir(tmp_path)
    with (root / "manifest.json").open("r+b") as f:
        f.truncate(MAX_METADATA_SIZE + 1)  # sparse: nothing is written
    with pytest.raises(SourceError) as caught:
        open_archive(root)
    assert str(caught.value) == \
        f"{root}: manifest 'manifest.json' is too large ({MAX_METADATA_SIZE + 1} bytes)"
