"""What `open_archive` makes of each kind of input (sources/archives.py): the kind told
apart, Docker 25+ saves named from manifest.json when their index does not say, and the
refusal of anything else."""

from __future__ import annotations

import gzip
import json
import tarfile
import tempfile
from pathlib import Path

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError
from freight.sources import open_archive
from freight.sources.model import ImageNode, IndexNode
from freight.testing import ImageSpec, random_image, write_images
from freight.testing.layers import random_layer


def _unpacked_docker25(tmp_path: Path, tags: list[str] | tuple[str, ...] = ("app:1",)
                       ) -> Path:
    made = write_images(tmp_path / "save.tar", [ImageSpec([random_layer(300, seed=4)],
                                                          list(tags))], format="docker25")
    root = tmp_path / "unpacked"
    root.mkdir()
    with tarfile.open(made.path) as tar:
        tar.extractall(root, filter="data")
    return root


def _index(root: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((root / "index.json").read_text())


def _strip_names(root: Path) -> None:
    index = _index(root)
    for entry in index["manifests"]:
        entry.pop("annotations", None)
    (root / "index.json").write_text(json.dumps(index))


def test_a_docker_25_save_is_read_as_its_layout_with_its_names(tmp_path: Path) -> None:
    root = _unpacked_docker25(tmp_path)
    with open_archive(root) as source:
        [image] = source.images
        assert image.names == ("docker.io/library/app:1",)
        assert isinstance(image.root, ImageNode) and image.root.manifest is not None


def test_an_unnamed_layout_entry_takes_the_repo_tags_of_its_config(tmp_path: Path) -> None:
    root = _unpacked_docker25(tmp_path, tags=["app:1", "app:latest"])
    _strip_names(root)
    with open_archive(root) as source:
        [image] = source.images
        assert image.names == ("app:1", "app:latest") and image.label == "app:1"


def test_an_entry_untagged_in_manifest_json_stays_unnamed(tmp_path: Path) -> None:
    root = _unpacked_docker25(tmp_path)
    _strip_names(root)
    entries = json.loads((root / "manifest.json").read_text())
    entries[0]["RepoTags"] = None
    (root / "manifest.json").write_text(json.dumps(entries))
    with open_archive(root) as source:
        [image] = source.images
        assert image.names == () and image.label.startswith("image ")


def _nest(root: Path, entries: list[dict[str, object]]) -> None:
    """Make index.json point at one inner index (as a Docker 25 save by digest does)
    holding `entries`."""
    inner = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                        "manifests": entries}).encode()
    digest = Digest.of(inner)
    (root / "blobs" / "sha256" / digest.encoded).write_bytes(inner)
    (root / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [
            {"mediaType": mt.OCI_INDEX, "digest": str(digest), "size": len(inner)}]}))


def test_a_one_entry_index_is_looked_through_for_the_config(tmp_path: Path) -> None:
    """docker with the containerd store saves an index over the manifest."""
    root = _unpacked_docker25(tmp_path)
    _strip_names(root)
    manifest_desc = _index(root)["manifests"][0]
    _nest(root, [{**manifest_desc, "platform": {"os": "linux", "architecture": "amd64"}}])
    with open_archive(root) as source:
        [image] = source.images
        assert isinstance(image.root, IndexNode)
        assert image.names == ("app:1",)


def test_an_unnamed_index_of_several_images_stays_unnamed(tmp_path: Path) -> None:
    """Its config is not one image's: no RepoTags apply (and nothing breaks asking)."""
    root = _unpacked_docker25(tmp_path)
    _strip_names(root)
    manifest_desc = _index(root)["manifests"][0]
    entries = [{**manifest_desc, "platform": {"os": "linux", "architecture": arch}}
               for arch in ("amd64", "arm64")]
    _nest(root, entries)
    with open_archive(root) as source:
        [image] = source.images
        assert isinstance(image.root, IndexNode) and image.names == ()


def test_a_plain_oci_layout_needs_no_manifest_json(tmp_path: Path) -> None:
    made = random_image(tmp_path / "layout", layers=[200], format="oci", tags=["app:2"])
    with open_archive(made.path) as source:
        [image] = source.images
        assert isinstance(image.root, ImageNode)


def test_a_legacy_save_is_read_from_manifest_json(tmp_path: Path) -> None:
    made = random_image(tmp_path / "save.tar", layers=[200], tags=["app:3"])
    with open_archive(made.path) as source:
        [image] = source.images
        assert image.names == ("app:3",)
        assert isinstance(image.root, ImageNode) and image.root.manifest is None


def test_anything_else_is_refused_saying_what_was_expected(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    (root / "index.json").write_text("{}")  # an index without oci-layout is no layout
    with pytest.raises(SourceError) as caught:
        open_archive(root)
    assert str(caught.value) == (
        f"{root}: not an image archive (no manifest.json and no OCI index.json); expected "
        "the output of `docker save`, an OCI layout, or a skopeo dir: directory")


def test_a_failed_open_leaves_no_temporary_files(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrapped archive is unpacked to a temporary directory; a refusal removes it."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    (tmp_path / "tmp").mkdir()
    with tarfile.open(tmp_path / "inner.tar", "w") as tar:
        tar.add(__file__, arcname="readme.txt")
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(gzip.compress((tmp_path / "inner.tar").read_bytes()))
    with pytest.raises(SourceError, match="not an image archive"):
        open_archive(bad)
    assert list((tmp_path / "tmp").iterdir()) == []
