"""Sync's view of local sources without a registry: a legacy `docker save` seen as an OCI
layout of its own bytes, and layout entries that are referrers, not images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from freight.digest import Digest
from freight.sources import open_archive
from freight.sync.bundle import BundleReader
from freight.sync.local import LocalStore
from freight.testing import ImageSpec, layer_tar, write_images


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_legacy_save_reads_as_a_layout_of_its_own_bytes(tmp_path: Path) -> None:
    base, top = layer_tar({"a": b"a" * 300}), layer_tar({"b": b"b"})
    written = write_images(tmp_path / "save.tar",
                           [ImageSpec([base, top], ["app:1", "reg.lan:5000/team/app:2"])],
                           format="docker", compression=["none", "gzip"])
    image = written.image
    reader = BundleReader(str(written.path), legacy=True)
    try:
        names = [(reader.repository(e), reader.tag(e)) for e in reader.entries]
        assert names == [("library/app", "1"), ("team/app", "2")]
        store = LocalStore(reader, "library/app")
        found = store.head_manifest("1")
        assert found is not None
        raw, _ = store.get_manifest(str(found.digest))
        manifest = json.loads(raw)
        assert manifest["config"]["digest"] == image.config_digest
        plain, packed = manifest["layers"]
        assert plain["digest"] == _sha(base) == image.diff_ids[0]  # uncompressed: its diff_id
        assert packed["mediaType"].endswith("+gzip")
        with store.open_blob(Digest.parse(packed["digest"])) as f:
            assert _sha(f.read()) == packed["digest"]  # a compressed one: hashed once
    finally:
        reader.close()
    again = BundleReader(str(written.path), legacy=True)
    try:  # the same manifest every time: a re-sync finds it unchanged
        assert again.entries[0].digest == found.digest
    finally:
        again.close()


def test_referrer_entries_of_a_layout_are_not_images(tmp_path: Path) -> None:
    written = write_images(tmp_path / "layout", [ImageSpec([layer_tar({"x": b"x"})],
                                                           ["app:1"])], format="oci")
    image = written.image
    blobs = tmp_path / "layout" / "blobs" / "sha256"
    subject = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
               "digest": image.manifest_digest, "size": len(image.manifest)}
    empty = b"{}"
    (blobs / hashlib.sha256(empty).hexdigest()).write_bytes(empty)
    referrer = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "artifactType": "application/spdx+json",
                           "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                                      "digest": _sha(empty), "size": 2},
                           "layers": [], "subject": subject}).encode()
    (blobs / hashlib.sha256(referrer).hexdigest()).write_bytes(referrer)
    index_path = tmp_path / "layout" / "index.json"
    index = json.loads(index_path.read_text())
    tag = image.manifest_digest.replace(":", "-") + ".sig"
    entry = {"mediaType": subject["mediaType"], "digest": _sha(referrer), "size": len(referrer)}
    index["manifests"] += [entry, {**entry, "annotations": {  # untagged, and a cosign tag
        "org.opencontainers.image.ref.name": tag}}]
    index_path.write_text(json.dumps(index))
    opened = open_archive(tmp_path / "layout")
    try:
        assert [i.label for i in opened.images] == ["app:1"]
    finally:
        opened.close()
