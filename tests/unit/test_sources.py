"""Reading archives: formats, symlinked layers, wrapped archives, and bad input."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from freight import mediatypes as mt
from freight.errors import SourceError
from freight.sources import open_archive
from freight.sources.model import ImageNode
from freight.testing import ImageSpec, config_for, layer_tar, write_images
from freight.testing import sha256 as sha
from support.samples import sample_layers


def _app_archive(path: Path) -> Path:
    return write_images(path, [ImageSpec(sample_layers(), ["app:1"])]).path


def _read_all(blob_open) -> bytes:  # type: ignore[no-untyped-def]
    with blob_open() as f:
        return f.read()


def test_legacy_archive_with_symlinked_duplicate(tmp_path: Path) -> None:
    a, b = sample_layers()
    path = write_images(tmp_path / "a.tar", [ImageSpec([a, b, a], ["app:1"])]).path
    with open_archive(str(path)) as src:
        (image,) = src.images
        assert image.names == ("app:1",)
        assert isinstance(image.root, ImageNode)
        layers = image.root.layers
        assert [str(layer.digest) for layer in layers] == [sha(a), sha(b), sha(a)]
        assert [layer.digest for layer in layers] == [layer.diff_id for layer in layers]
        assert _read_all(layers[2].open) == a  # read through docker's symlink
        assert all(layer.media_type == mt.OCI_LAYER for layer in layers)


def test_multi_image_and_untagged(tmp_path: Path) -> None:
    a, b = sample_layers()
    path = write_images(tmp_path / "m.tar", [ImageSpec([a], ["one:1", "one:2"]),
                                             ImageSpec([a, b])]).path
    with open_archive(str(path)) as src:
        assert [i.names for i in src.images] == [("one:1", "one:2"), ()]
        assert src.images[1].label.startswith("image ")


@pytest.mark.parametrize("wrap", ["gzip", "zstd"])
def test_wrapped_archives_detected_by_magic(tmp_path: Path, wrap: str) -> None:
    plain = _app_archive(tmp_path / "p.tar").read_bytes()
    data = gzip.compress(plain) if wrap == "gzip" else zstandard.ZstdCompressor().compress(plain)
    path = tmp_path / "archive.bin"  # the name says nothing: magic bytes decide
    path.write_bytes(data)
    with open_archive(str(path)) as src:
        assert src.images[0].names == ("app:1",)


def test_compressed_layer_is_sniffed(tmp_path: Path) -> None:
    path = write_images(tmp_path / "g.tar", [ImageSpec(sample_layers(), ["app:1"])],
                        compression="gzip").path
    with open_archive(str(path)) as src:
        root = src.images[0].root
        assert isinstance(root, ImageNode)
        assert root.layers[0].media_type == mt.OCI_LAYER_GZIP
        assert root.layers[0].digest is None  # unknown until hashed


def _rewrite(src: Path, dst: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for info in tin:
            data = tin.extractfile(info).read() if info.isfile() else None  # type: ignore[union-attr]
            name, data = edit(info.name, data)
            if name is None:
                continue
            if data is None:
                tout.addfile(info)
            else:
                info.name, info.size = name, len(data)
                tout.addfile(info, io.BytesIO(data))
    return dst


def _manifest_edit(change):  # type: ignore[no-untyped-def]
    def edit(name: str, data: bytes | None):  # type: ignore[no-untyped-def]
        if name == "manifest.json":
            return name, change(data)
        return name, data
    return edit


BAD = {
    "missing layer": lambda m: json.dumps(
        [{**json.loads(m)[0], "Layers": ["nope/layer.tar", "x/layer.tar"]}]).encode(),
    "escaping path": lambda m: json.dumps([{**json.loads(m)[0],
                                             "Config": "../../etc/passwd"}]).encode(),
    "malformed": lambda m: b"[{not json",
    "wrong shape": lambda m: b'{"Config": 1}',
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_manifest_json(tmp_path: Path, case: str) -> None:
    good = _app_archive(tmp_path / "g.tar")
    bad = _rewrite(good, tmp_path / "bad.tar", _manifest_edit(BAD[case]))
    with pytest.raises(SourceError):
        open_archive(str(bad))


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, bytes(range(256)) * 50, b"PK\x03\x04zip"])
def test_not_an_archive(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.tar"
    path.write_bytes(content)
    with pytest.raises(SourceError):
        open_archive(str(path))


def test_truncated_archive(tmp_path: Path) -> None:
    good = _app_archive(tmp_path / "g.tar").read_bytes()
    path = tmp_path / "t.tar"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(SourceError):
        open_archive(str(path))


def test_truncated_gzip_wrapper(tmp_path: Path) -> None:
    plain = _app_archive(tmp_path / "g.tar").read_bytes()
    path = tmp_path / "t.tar.gz"
    path.write_bytes(gzip.compress(plain)[:-100])
    with pytest.raises(SourceError):
        open_archive(str(path))


def test_missing_file() -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_archive("/nonexistent/archive.tar")


def test_oci_layout_directory(tmp_path: Path) -> None:
    a, b = sample_layers()
    blobs = tmp_path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, object]:
        (blobs / sha(data).split(":")[1]).write_bytes(data)
        return {"digest": sha(data), "size": len(data)}

    config = config_for(ImageSpec([a, b]))
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, **put(config)},
                           "layers": [{"mediaType": mt.OCI_LAYER, **put(x)} for x in (b, a)]})
    desc = {"mediaType": mt.OCI_MANIFEST, **put(manifest.encode()),
            "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    with open_archive(str(tmp_path)) as src:
        (image,) = src.images
        assert image.bare_tags == ("v1",)
        assert isinstance(image.root, ImageNode)
        # Docker 25.0.0 shuffled layers: they come back in rootfs (diff_ids) order
        assert [str(layer.digest) for layer in image.root.layers] == [sha(a), sha(b)]


def test_partial_multi_platform_index_narrows_to_a_complete_platform(tmp_path: Path) -> None:
    """docker's containerd store saves an index whose other platforms' blobs are absent."""
    blobs = tmp_path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, store: bool = True) -> dict[str, object]:
        if store:
            (blobs / sha(data).split(":")[1]).write_bytes(data)
        return {"digest": sha(data), "size": len(data)}

    children = []
    for arch, present in (("amd64", True), ("arm64", False)):
        layer = layer_tar({arch: arch.encode()})
        config = config_for(ImageSpec([layer]))
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, **put(config, present)},
            "layers": [{"mediaType": mt.OCI_LAYER, **put(layer, present)}]}).encode()
        children.append({"mediaType": mt.OCI_MANIFEST, **put(manifest, present),
                         "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                        "manifests": children}).encode()
    entry = {"mediaType": mt.OCI_INDEX, **put(index),
             "annotations": {"io.containerd.image.name": "docker.io/library/app:1"}}
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    with open_archive(str(tmp_path)) as src:
        (image,) = src.images
        assert isinstance(image.root, ImageNode)  # narrowed to the complete platform
        assert image.root.platform is not None and image.root.platform.architecture == "amd64"
        assert any("linux/arm64" in note for note in image.notes)
    from freight.manifest import Platform
    with pytest.raises(SourceError, match="no complete image for linux/arm64"):
        open_archive(str(tmp_path), platform=Platform.parse("linux/arm64"))


def _escaping_archive(tmp_path: Path, config_path: str) -> Path:
    """A docker archive whose manifest.json names its config by `config_path`, a path that
    leaves the archive, and which holds a tar member of exactly that name (a crafted tar)."""
    good = _app_archive(tmp_path / "good.tar")
    with tarfile.open(good) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
    entry["Config"] = config_path

    def edit(name: str, data: bytes | None):  # type: ignore[no-untyped-def]
        return name, json.dumps([entry]).encode() if name == "manifest.json" else data

    bad = _rewrite(good, tmp_path / "bad.tar", edit)
    with tarfile.open(bad, "a") as tar:
        info = tarfile.TarInfo(config_path)
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
    return bad


@pytest.mark.parametrize("config_path", ["../config.json", "a/../../config.json"])
def test_a_path_leaving_the_archive_is_refused_even_if_a_member_has_it(
        tmp_path: Path, config_path: str) -> None:
    with pytest.raises(SourceError, match="outside the archive"):
        open_archive(_escaping_archive(tmp_path, config_path))


@pytest.mark.parametrize("escape", ["../outside.json", "..", "ABSOLUTE"])
def test_an_unpacked_archive_never_reads_beside_its_directory(tmp_path: Path,
                                                             escape: str) -> None:
    """`docker save | tar -x` gives a directory; its manifest.json cannot point out of it."""
    unpacked = tmp_path / "unpacked"
    with tarfile.open(_app_archive(tmp_path / "good.tar")) as tar:
        tar.extractall(unpacked, filter="data")
    entry = json.loads((unpacked / "manifest.json").read_text())[0]
    outside = tmp_path / "outside.json"
    outside.write_bytes((unpacked / entry["Config"]).read_bytes())  # a valid config, outside
    entry["Config"] = str(outside) if escape == "ABSOLUTE" else escape
    (unpacked / "manifest.json").write_text(json.dumps([entry]))
    with pytest.raises(SourceError, match="outside the archive"):
        open_archive(unpacked)
