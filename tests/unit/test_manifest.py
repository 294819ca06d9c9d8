"""Manifests, indexes and configs as registries and layouts hold them: what is kept on a
round trip, and what a malformed document gives (a SourceError naming where, never a crash)."""

from __future__ import annotations

import json

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError
from freight.manifest import Descriptor, ImageConfig, Index, Manifest, Platform

D1, D2 = Digest.of(b"one"), Digest.of(b"two")


def _desc(digest: Digest = D1, size: int = 3, **extra: object) -> dict[str, object]:
    return {"mediaType": mt.OCI_LAYER_GZIP, "digest": str(digest), "size": size, **extra}


def test_a_descriptor_keeps_everything_on_a_round_trip() -> None:
    data = _desc(platform={"os": "linux", "architecture": "arm64", "variant": "v8"},
                 annotations={"org.opencontainers.image.ref.name": "v1"},
                 urls=["https://example.invalid/layer"], artifactType="application/x")
    desc = Descriptor.from_json(data, "entry")
    assert (desc.media_type, desc.digest, desc.size) == (mt.OCI_LAYER_GZIP, D1, 3)
    assert desc.platform == Platform("linux", "arm64", "v8")
    assert desc.annotations == {"org.opencontainers.image.ref.name": "v1"}
    assert desc.extra == {"urls": ["https://example.invalid/layer"],
                          "artifactType": "application/x"}
    assert desc.to_json() == data


def test_a_descriptor_without_platform_or_variant_writes_none() -> None:
    plain = Descriptor.from_json(_desc(), "entry").to_json()
    assert plain == _desc()
    amd = Descriptor.from_json(_desc(platform={"os": "linux", "architecture": "amd64"}), "e")
    assert amd.to_json()["platform"] == {"architecture": "amd64", "os": "linux"}


@pytest.mark.parametrize(("data", "says"), [
    ([], "must be a JSON object"),
    ({"size": 3}, "malformed descriptor"),
    ({"digest": str(D1)}, "malformed descriptor"),
    ({"digest": str(D1), "size": "many"}, "malformed descriptor"),
    ({"digest": "sha256:abc", "size": 3}, "malformed sha256 digest"),
    ({"digest": str(D1), "size": -1}, "negative size"),
])
def test_a_malformed_descriptor_names_where_it_is(data: object, says: str) -> None:
    with pytest.raises(SourceError, match=f"index entry 2: .*{says}|index entry 2: {says}"):
        Descriptor.from_json(data, "index entry 2")


def test_a_manifest_parses_config_layers_and_subject() -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                      "config": _desc(D2, 9), "layers": [_desc(), _desc(D2, 5)],
                      "subject": _desc(D2, 7)}).encode()
    manifest = Manifest.parse(raw, mt.OCI_MANIFEST)
    assert manifest.media_type == mt.DOCKER_MANIFEST  # the document's own type wins
    assert (manifest.config.digest, manifest.config.size) == (D2, 9)
    assert [d.size for d in manifest.layers] == [3, 5]
    assert manifest.subject is not None and manifest.subject.size == 7
    assert manifest.digest == Digest.of(raw)
    assert manifest.descriptor().to_json() == {"mediaType": mt.DOCKER_MANIFEST,
                                               "digest": str(Digest.of(raw)), "size": len(raw)}


def test_a_manifest_without_a_media_type_takes_the_one_it_was_served_with() -> None:
    raw = json.dumps({"schemaVersion": 2, "config": _desc(), "layers": []}).encode()
    assert Manifest.parse(raw, mt.DOCKER_MANIFEST).media_type == mt.DOCKER_MANIFEST
    assert Manifest.parse(raw).media_type == mt.OCI_MANIFEST
    assert Manifest.parse(raw).subject is None


@pytest.mark.parametrize(("raw", "says"), [
    (b"{not json", "not valid JSON"), (b"[1]", "must be a JSON object"),
    (b'{"layers": []}', "not an image manifest"), (b'{"config": {}}', "not an image manifest"),
    (b'{"config": {}, "layers": {}}', "not an image manifest"),
    (json.dumps({"config": _desc(), "layers": [_desc(size=-2)]}).encode(), "layer 0"),
])
def test_a_malformed_manifest_is_a_source_error(raw: bytes, says: str) -> None:
    with pytest.raises(SourceError, match=says):
        Manifest.parse(raw, what="manifest of app:1")


def test_built_manifests_are_deterministic_and_parse_back() -> None:
    config = Descriptor(mt.OCI_CONFIG, D1, 3)
    layers = [Descriptor(mt.OCI_LAYER_ZSTD, D2, 5)]
    one = Manifest.build(mt.OCI_MANIFEST, config, layers, {"a": "b"})
    two = Manifest.build(mt.OCI_MANIFEST, config, layers, {"a": "b"})
    assert one.raw == two.raw and one.digest == two.digest
    again = Manifest.parse(one.raw)
    assert (again.media_type, again.config, again.layers) == (mt.OCI_MANIFEST, config,
                                                             tuple(layers))
    assert json.loads(one.raw)["annotations"] == {"a": "b"}
    assert "annotations" not in json.loads(Manifest.build(mt.OCI_MANIFEST, config, []).raw)


def test_an_index_round_trips_with_platforms_and_annotations() -> None:
    children = [Descriptor(mt.OCI_MANIFEST, D1, 3, Platform("linux", "amd64")),
                Descriptor(mt.OCI_MANIFEST, D2, 4, Platform("linux", "arm64", "v8"))]
    built = Index.build(mt.OCI_INDEX, children, {"org.example": "x"})
    parsed = Index.parse(built.raw)
    assert parsed.manifests == tuple(children) and parsed.annotations == {"org.example": "x"}
    assert [d.platform for d in parsed.manifests] == [c.platform for c in children]
    assert parsed.digest == built.digest == Digest.of(built.raw)
    assert built.descriptor().size == len(built.raw)
    assert Index.build(mt.OCI_INDEX, children).annotations == {}
    plain = Index.parse(json.dumps({"manifests": []}).encode(), mt.DOCKER_MANIFEST_LIST)
    assert plain.media_type == mt.DOCKER_MANIFEST_LIST and plain.annotations == {}


@pytest.mark.parametrize("raw", [b'{"manifests": {}}', b"{}", b'{"manifests": [1]}'])
def test_a_malformed_index_is_a_source_error(raw: bytes) -> None:
    with pytest.raises(SourceError, match="index of app"):
        Index.parse(raw, what="index of app")


def test_an_image_config_gives_its_diff_ids_and_platform() -> None:
    raw = json.dumps({"architecture": "arm64", "os": "linux", "variant": "v8",
                      "rootfs": {"type": "layers", "diff_ids": [str(D1), str(D2)]}}).encode()
    config = ImageConfig.parse(raw)
    assert config.diff_ids == (D1, D2) and config.digest == Digest.of(raw)
    assert config.platform == Platform("linux", "arm64", "v8")


@pytest.mark.parametrize(("raw", "says"), [
    (b'{"rootfs": {"diff_ids": ["sha256:xyz"]}}', "bad diff_id"),
    (b'{"rootfs": {"diff_ids": "sha256:1"}}', "no rootfs.diff_ids"),
    (b'{"rootfs": []}', "no rootfs.diff_ids"), (b"{}", "no rootfs.diff_ids"),
])
def test_a_malformed_config_is_a_source_error(raw: bytes, says: str) -> None:
    with pytest.raises(SourceError, match=f"config of app: {says}|config of app has {says}"):
        ImageConfig.parse(raw, "config of app")


@pytest.mark.parametrize(("text", "platform"), [
    ("linux/amd64", Platform("linux", "amd64")),
    ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
])
def test_platforms_parse_and_print(text: str, platform: Platform) -> None:
    assert Platform.parse(text) == platform and str(platform) == text


@pytest.mark.parametrize("text", ["linux", "linux/", "/amd64", "a/b/c/d", "linux//v8", ""])
def test_a_malformed_platform_says_how_to_write_one(text: str) -> None:
    with pytest.raises(SourceError, match="OS/ARCH"):
        Platform.parse(text)


@pytest.mark.parametrize(("want", "have", "match"), [
    ("linux/arm64", "linux/arm64/v8", True), ("linux/arm64/v8", "linux/arm64", True),
    ("linux/arm64/v8", "linux/arm64/v8", True), ("linux/arm64/v7", "linux/arm64/v8", False),
    ("linux/amd64", "linux/arm64", False), ("windows/amd64", "linux/amd64", False),
])
def test_platform_matching(want: str, have: str, match: bool) -> None:
    assert Platform.parse(want).matches(Platform.parse(have)) is match


def test_what_freight_builds_is_what_it_says_and_the_bytes_stay_the_same() -> None:
    """Built documents keep their exact bytes across versions: a re-push of the same image
    finds the same digest at the registry and moves nothing."""
    config = Descriptor(mt.OCI_CONFIG, D1, 3)
    layers = [Descriptor(mt.OCI_LAYER_ZSTD, D2, 5)]
    built = Manifest.build(mt.DOCKER_MANIFEST, config, layers)
    assert (built.media_type, built.config, built.layers) == (mt.DOCKER_MANIFEST, config,
                                                             tuple(layers))
    doc = json.loads(built.raw)
    assert (doc["schemaVersion"], doc["mediaType"]) == (2, mt.DOCKER_MANIFEST)
    assert built.raw.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": ')
    assert built.raw.endswith(b"}\n")
    index = Index.build(mt.OCI_INDEX, [built.descriptor(platform=Platform("linux", "amd64"))])
    assert index.media_type == mt.OCI_INDEX and index.manifests[0].platform is not None
    idoc = json.loads(index.raw)
    assert (idoc["schemaVersion"], idoc["mediaType"]) == (2, mt.OCI_INDEX)
    assert index.raw.startswith(b'{\n   "schemaVersion": 2,\n   "mediaType": ')
    assert index.descriptor(annotations={"a": "b"}).annotations == {"a": "b"}
    assert built.descriptor(platform=Platform("linux", "arm64")).platform == Platform(
        "linux", "arm64")


def test_an_index_says_its_own_type() -> None:
    raw = json.dumps({"mediaType": mt.DOCKER_MANIFEST_LIST, "manifests": []}).encode()
    assert Index.parse(raw, mt.OCI_INDEX).media_type == mt.DOCKER_MANIFEST_LIST
    assert Index.parse(b'{"manifests": []}').media_type == mt.OCI_INDEX


def test_missing_fields_read_as_empty_and_an_empty_blob_is_fine() -> None:
    desc = Descriptor.from_json({"digest": str(D1), "size": 0, "platform": {}}, "entry")
    assert (desc.media_type, desc.size) == ("", 0)
    assert desc.platform == Platform("", "", None)


@pytest.mark.parametrize(("parse", "says"), [
    (lambda: Manifest.parse(b"[1]"), "manifest must be a JSON object"),
    (lambda: Index.parse(b"[1]"), "index must be a JSON object"),
    (lambda: Manifest.parse(b'{"config": 1, "layers": []}', what="manifest of app"),
     "manifest of app config: a descriptor"),
    (lambda: Manifest.parse(json.dumps({"config": _desc(), "layers": [], "subject": [1]}).encode(),
                            what="manifest of app"), "manifest of app subject: a descriptor"),
])
def test_errors_name_the_document_and_the_part(parse, says: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SourceError, match=f"^{says}"):
        parse()


def test_an_index_keeps_its_annotations_and_describes_itself() -> None:
    child = Descriptor(mt.OCI_MANIFEST, D1, 3)
    built = Index.build(mt.DOCKER_MANIFEST_LIST, [child], {"org.example": "x"})
    assert built.annotations == {"org.example": "x"}
    desc = built.descriptor()
    assert (desc.media_type, desc.digest, desc.size) == (mt.DOCKER_MANIFEST_LIST, built.digest,
                                                         len(built.raw))


def test_a_config_error_says_image_config_by_default() -> None:
    with pytest.raises(SourceError, match=r"^image config has no rootfs\.diff_ids"):
        ImageConfig.parse(b"{}")
    with pytest.raises(SourceError, match=r"^image config must be a JSON object"):
        ImageConfig.parse(b"[]")
