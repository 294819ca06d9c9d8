"""The planner (src/freight/engine/plan.py), with no I/O: its walk of an image tree (every
image of a nested index, in index order) and `--manifest-format oci`. The rest of the
planner is tested in test_engine_mutants.py. Written against mutation testing of the
module."""

from __future__ import annotations

import io
import json

from freight import mediatypes as mt
from freight.digest import Digest
from freight.engine import plan
from freight.manifest import Descriptor, Index, Manifest
from freight.sources.model import Blob, ImageNode, IndexNode


def _image(name: bytes) -> ImageNode:
    return ImageNode(Blob(mt.OCI_CONFIG, len(name), lambda: io.BytesIO(name),
                          Digest.of(name)), ())


def test_images_in_walks_nested_indexes_in_order() -> None:
    a, b, c = _image(b"a"), _image(b"b"), _image(b"c")
    desc = Descriptor(mt.OCI_MANIFEST, Digest.of(b"m"), 1)
    inner = IndexNode(Index.build(mt.OCI_INDEX, []), ((desc, b), (desc, c)))
    outer = IndexNode(Index.build(mt.OCI_INDEX, []), ((desc, a), (desc, inner)))
    assert list(plan.images_in(outer)) == [a, b, c]
    assert list(plan.images_in(a)) == [a]


def _manifest(kind: str, layers: list[Blob], config: str = mt.DOCKER_CONFIG) -> Manifest:
    raw = json.dumps({"schemaVersion": 2, "mediaType": kind, "config": {
        "mediaType": config, "digest": str(Digest.of(b"c")), "size": 1}, "layers": [
        {"mediaType": b.media_type, "digest": str(b.digest), "size": b.size}
        for b in layers]}).encode()
    return Manifest.parse(raw, kind, "test")


def test_oci_rebuilds_docker_and_legacy_manifests_and_keeps_oci_ones_and_artifacts() -> None:
    """`--manifest-format oci`, decided with no I/O: a Docker manifest (or none, a legacy
    archive) becomes OCI with OCI media types; an OCI manifest and an artifact stay."""
    layer = Blob(mt.DOCKER_LAYER_GZIP, 1, lambda: io.BytesIO(b"l"), Digest.of(b"l"))
    config = Blob(mt.DOCKER_CONFIG, 1, lambda: io.BytesIO(b"c"), Digest.of(b"c"))
    docker = ImageNode(config, (layer,), _manifest(mt.DOCKER_MANIFEST, [layer]))
    for node in (docker, ImageNode(config, (layer,))):
        step = plan.plan_image(node, "keep", oci=True)
        assert (step.kind, step.config_type) == (mt.OCI_MANIFEST, mt.OCI_CONFIG)
        assert [(s.target, s.media_type) for s in step.layers] == [(None, mt.OCI_LAYER_GZIP)]
    assert plan.plan_image(docker, "keep").kind is None
    oci_layer = Blob(mt.OCI_LAYER_GZIP, 1, lambda: io.BytesIO(b"l"), Digest.of(b"l"))
    oci_config = Blob(mt.OCI_CONFIG, 1, lambda: io.BytesIO(b"c"), Digest.of(b"c"))
    oci = ImageNode(oci_config, (oci_layer,), _manifest(mt.OCI_MANIFEST, [oci_layer]))
    assert plan.plan_image(oci, "keep", oci=True).kind is None
    chart = Blob("application/vnd.cncf.helm.config.v1+json", 1, lambda: io.BytesIO(b"c"),
                 Digest.of(b"c"))
    artifact = ImageNode(chart, (layer,), _manifest(mt.DOCKER_MANIFEST, [layer], chart.media_type))
    assert plan.plan_image(artifact, "gzip", oci=True).kind is None
