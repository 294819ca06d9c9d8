"""`docker save` archives through their manifest.json (sources/docker_archive.py), unpacked
in a directory so each case is a few files: what each entry becomes, and each refusal in
the words the user reads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError
from freight.manifest import Platform
from freight.sources import open_archive
from freight.sources.model import ImageNode
from freight.testing.layers import random_layer

TAR = random_layer(1500, seed=3)
DIFF_ID = Digest.of(TAR)


def _config(diff_ids: list[Digest], arch: str = "arm64") -> bytes:
    return json.dumps({"architecture": arch, "os": "linux", "variant": "v8",
                       "rootfs": {"type": "layers",
                                  "diff_ids": [str(d) for d in diff_ids]}}).encode()


def _archive(tmp_path: Path, entries: Any, files: dict[str, bytes] | None = None) -> Path:
    root = tmp_path / "unpacked"
    root.mkdir(exist_ok=True)
    for name, data in (files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    raw = entries if isinstance(entries, bytes) else json.dumps(entries).encode()
    (root / "manifest.json").write_bytes(raw)
    return root


def _simple(tmp_path: Path, *, tags: Any = ("app:1",), layer_path: str = "abc/layer.tar",
            layer: bytes = TAR) -> Path:
    config = _config([DIFF_ID])
    entry: dict[str, Any] = {"Config": "cfg.json", "Layers": [layer_path]}
    if tags is not None:
        entry["RepoTags"] = list(tags)
    return _archive(tmp_path, [entry], {"cfg.json": config, layer_path: layer})


def _error(root: Path) -> str:
    with pytest.raises(SourceError) as caught:
        open_archive(root)
    return str(caught.value)


def test_an_entry_becomes_one_named_image(tmp_path: Path) -> None:
    root = _simple(tmp_path)
    with open_archive(root) as source:
        [image] = source.images
        assert image.names == ("app:1",) and image.label == "app:1"
        node = image.root
        assert isinstance(node, ImageNode) and node.manifest is None
        assert node.platform == Platform("linux", "arm64", "v8")
        config = _config([DIFF_ID])
        assert node.config.media_type == mt.DOCKER_CONFIG
        assert node.config.digest == Digest.of(config) and node.config.size == len(config)
        assert node.config.what == "config of app:1"
        [layer] = node.layers
        assert layer.what == "layer 1 of app:1 (abc/layer.tar)"
        assert layer.media_type == mt.OCI_LAYER and layer.size == len(TAR)
        assert layer.digest == DIFF_ID == layer.diff_id  # a plain tar is its own diff_id
        with layer.open() as f:
            assert f.read() == TAR


@pytest.mark.parametrize("tags", [None, [], [7, None]])
def test_an_untagged_image_is_named_by_its_config(tmp_path: Path, tags: Any) -> None:
    root = _simple(tmp_path, tags=tags)
    with open_archive(root) as source:
        [image] = source.images
        assert image.names == ()
        assert image.label == f"image {Digest.of(_config([DIFF_ID])).short}"
        assert isinstance(image.root, ImageNode)
        assert image.root.layers[0].what.startswith(f"layer 1 of {image.label} (")


def test_only_string_tags_are_kept(tmp_path: Path) -> None:
    root = _simple(tmp_path, tags=[1, "app:2", None, "app:3"])
    with open_archive(root) as source:
        assert source.images[0].names == ("app:2", "app:3")


def test_a_compressed_layer_under_blobs_is_named_by_its_digest(tmp_path: Path) -> None:
    data = gzip.compress(TAR, mtime=0)
    path = f"blobs/sha256/{Digest.of(data).encoded}"
    with open_archive(_simple(tmp_path, layer_path=path, layer=data)) as source:
        node = source.images[0].root
        assert isinstance(node, ImageNode)
        [layer] = node.layers
        assert layer.media_type == mt.OCI_LAYER_GZIP
        assert layer.digest == Digest.of(data) and layer.diff_id == DIFF_ID


@pytest.mark.parametrize("path", ["abc/layer.tar", "blobs/sha256/not-hex", "blobs/md5/abc"])
def test_a_compressed_layer_named_otherwise_has_no_digest_yet(tmp_path: Path,
                                                              path: str) -> None:
    data = gzip.compress(TAR, mtime=0)
    with open_archive(_simple(tmp_path, layer_path=path, layer=data)) as source:
        node = source.images[0].root
        assert isinstance(node, ImageNode)
        assert node.layers[0].digest is None and node.layers[0].diff_id == DIFF_ID


def test_images_come_in_archive_order(tmp_path: Path) -> None:
    other = random_layer(500, seed=9)
    files = {"a.json": _config([DIFF_ID]), "b.json": _config([Digest.of(other)], "amd64"),
             "1/layer.tar": TAR, "2/layer.tar": other}
    root = _archive(tmp_path, [
        {"Config": "b.json", "Layers": ["2/layer.tar"], "RepoTags": ["b:1"]},
        {"Config": "a.json", "Layers": ["1/layer.tar"], "RepoTags": ["a:1"]},
    ], files)
    with open_archive(root) as source:
        assert [i.names for i in source.images] == [("b:1",), ("a:1",)]


@pytest.mark.parametrize(("manifest", "message"), [
    (b"[{not json", "manifest.json is not valid JSON ("),
    (b"\xff\xfe", "manifest.json is not valid JSON ("),
    (b"[]", "manifest.json must be a non-empty list of images"),
    (b'{"Config": "cfg.json", "Layers": []}', "manifest.json must be a non-empty list of images"),
    (b'[{"Config": "cfg.json", "Layers": []}, "x"]',
     "manifest.json entry 1 has no Config or Layers"),
    (b'[{"Config": 1, "Layers": []}]', "manifest.json entry 0 has no Config or Layers"),
    (b'[{"Layers": []}]', "manifest.json entry 0 has no Config or Layers"),
    (b'[{"Config": "cfg.json", "Layers": "abc/layer.tar"}]',
     "manifest.json entry 0 has no Config or Layers"),
    (b'[{"Config": "cfg.json"}]', "manifest.json entry 0 has no Config or Layers"),
    (b'[{"Config": "cfg.json", "Layers": ["abc/layer.tar", 5]}]',
     "manifest.json entry 0 has a bad Layers list"),
])
def test_a_manifest_json_of_the_wrong_shape_is_refused(tmp_path: Path, manifest: bytes,
                                                       message: str) -> None:
    root = _archive(tmp_path, manifest, {"cfg.json": _config([DIFF_ID]), "abc/layer.tar": TAR})
    assert _error(root).startswith(f"{root}: {message}")


def test_layers_and_diff_ids_must_agree_in_number(tmp_path: Path) -> None:
    root = _archive(tmp_path, [{"Config": "cfg.json", "Layers": ["abc/layer.tar"] * 2}],
                    {"cfg.json": _config([DIFF_ID]), "abc/layer.tar": TAR})
    assert _error(root) == (f"{root}: image 0: manifest.json lists 2 layers but the config "
                            "has 1 diff_ids")


def test_a_layer_the_archive_lacks_is_named(tmp_path: Path) -> None:
    root = _archive(tmp_path, [{"Config": "cfg.json", "Layers": ["gone/layer.tar"]}],
                    {"cfg.json": _config([DIFF_ID])})
    assert _error(root) == \
        f"{root}: manifest.json names 'gone/layer.tar', which is not in the archive"


def test_a_config_without_diff_ids_is_refused_with_where_it_is(tmp_path: Path) -> None:
    root = _archive(tmp_path, [{"Config": "cfg.json", "Layers": []}],
                    {"cfg.json": b'{"os": "linux"}'})
    assert _error(root) == f"{root}: image 0 config cfg.json has no rootfs.diff_ids"


@pytest.mark.parametrize("field", ["Config", "Layers"])
def test_a_path_leaving_the_archive_is_refused(tmp_path: Path, field: str) -> None:
    entry: dict[str, Any] = {"Config": "cfg.json", "Layers": ["abc/layer.tar"]}
    entry[field] = "../outside" if field == "Config" else ["../outside"]
    root = _archive(tmp_path, [entry], {"cfg.json": _config([DIFF_ID]), "abc/layer.tar": TAR})
    message = _error(root)
    assert message.startswith(f"{root}: image 0") and "../outside" in message


def test_a_config_the_archive_lacks_is_named(tmp_path: Path) -> None:
    root = _archive(tmp_path, [{"Config": "gone.json", "Layers": []}])
    assert _error(root) == f"{root}: image config 'gone.json' is missing from the archive"
