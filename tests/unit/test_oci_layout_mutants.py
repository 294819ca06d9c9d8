"""Reading OCI image layouts (src/freight/sources/oci_layout.py) built by hand, blob by
blob: the names and labels each root gets, the layers' order, diff_ids and true media
types, the referrers left out, the narrowing of a partial multi-platform index, and the
one line a broken layout gives. Written against mutation testing of the module."""

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
from freight.sources.files import DirFiles
from freight.sources.model import ImageNode, IndexNode, SourceImage
from freight.sources.oci_layout import LayoutReader, is_layout, read_layout
from freight.testing import ImageSpec, config_for, layer_tar
from freight.testing import sha256 as sha

Json = dict[str, Any]
HOST = "amd64"  # the tests run on x86_64: the host platform docker would pick


class Layout:
    """An OCI layout under construction in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def put(self, data: bytes, media_type: str, *, store: bool = True, **extra: Any) -> Json:
        if store:
            (self.root / "blobs" / "sha256" / sha(data).split(":")[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": sha(data), "size": len(data), **extra}

    def image(self, *layers: bytes, layer_type: str = mt.OCI_LAYER, arch: str = "amd64",
              order: list[int] | None = None, config_type: str = mt.OCI_CONFIG,
              store: bool = True, stored_layers: bytes | None = None, **extra: Any) -> Json:
        """A manifest descriptor of an image of uncompressed `layers` (stored as
        `stored_layers` when given), written in `order`."""
        config = config_for(ImageSpec(list(layers), architecture=arch))
        kept = [self.put(stored_layers or x, layer_type, store=store) for x in layers]
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": self.put(config, config_type, store=store),
            "layers": [kept[i] for i in (order or range(len(kept)))]}).encode()
        return self.put(manifest, mt.OCI_MANIFEST, store=store, **extra)

    def index(self, *children: Json, **extra: Any) -> Json:
        raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                          "manifests": list(children)}).encode()
        return self.put(raw, mt.OCI_INDEX, **extra)

    def write(self, *entries: Json) -> None:
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                          "manifests": list(entries)}))

    def read(self, platform: Platform | None = None) -> list[SourceImage]:
        return read_layout(DirFiles(str(self.root)), platform=platform)


def _named(name: str | None = None, ref: str | None = None) -> Json:
    annotations = {}
    if name is not None:
        annotations["io.containerd.image.name"] = name
    if ref is not None:
        annotations["org.opencontainers.image.ref.name"] = ref
    return {"annotations": annotations}


A, B, C = layer_tar({"a": b"a"}), layer_tar({"b": b"bb"}), layer_tar({"c": b"ccc"})


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "layout")


def _image(images: list[SourceImage], i: int = 0) -> ImageNode:
    node = images[i].root
    assert isinstance(node, ImageNode)
    return node


# -- names and labels -------------------------------------------------------------------


def test_names_come_from_the_image_name_then_a_reference_like_ref_name(
        layout: Layout) -> None:
    one = layout.image(A, **_named("docker.io/library/app:1", "1"))
    two = layout.image(B, **_named(ref="quay.io/org/tool:2"))
    three = layout.image(C, **_named(ref="team/web"))
    layout.write(one, two, three)
    assert [(i.names, i.bare_tags, i.label) for i in layout.read()] == [
        (("docker.io/library/app:1",), ("1",), "docker.io/library/app:1"),
        (("quay.io/org/tool:2",), (), "quay.io/org/tool:2"),
        (("team/web",), (), "team/web")]


def test_a_plain_ref_name_is_a_bare_tag_and_labels_the_image(layout: Layout) -> None:
    layout.write(layout.image(A, **_named(ref="v1")))
    (image,) = layout.read()
    assert (image.names, image.bare_tags, image.label) == ((), ("v1",), "v1")


def test_an_unnamed_image_is_labelled_by_its_digest(layout: Layout) -> None:
    entry = layout.image(A)
    layout.write(entry)
    (image,) = layout.read()
    assert (image.names, image.bare_tags) == ((), ())
    assert image.label == f"image {Digest.parse(entry['digest']).short}"


def test_entries_of_one_digest_are_one_image_with_every_name_once(layout: Layout) -> None:
    entry = layout.image(A)
    layout.write({**entry, **_named("docker.io/library/app:1", "1")},
                 {**entry, **_named("docker.io/library/app:2", "2")},
                 {**entry, **_named("docker.io/library/app:1", "1")},
                 {**entry, **_named(ref="v3")}, {**entry, **_named(ref="v3")})
    (image,) = layout.read()
    assert image.names == ("docker.io/library/app:1", "docker.io/library/app:2")
    assert image.bare_tags == ("1", "2", "v3")  # a plain ref.name finds it, as skopeo does


def test_a_layout_without_images_or_a_version_is_refused(layout: Layout) -> None:
    layout.write()
    with pytest.raises(SourceError, match=r"layout: index\.json lists no images$"):
        layout.read()
    (layout.root / "oci-layout").write_text("{}")
    with pytest.raises(SourceError, match=r"layout: oci-layout has no imageLayoutVersion$"):
        layout.read()


def test_is_layout_needs_both_files(layout: Layout) -> None:
    assert not is_layout(DirFiles(str(layout.root)))
    layout.write()
    assert is_layout(DirFiles(str(layout.root)))
    (layout.root / "oci-layout").unlink()
    assert not is_layout(DirFiles(str(layout.root)))


# -- referrers --------------------------------------------------------------------------

SIG_TAG = "sha256-" + "ab" * 32


def _referrer(layout: Layout, subject: Json, **extra: Any) -> Json:
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                      "artifactType": "application/example",
                      "config": layout.put(b"{}", mt.OCI_EMPTY), "layers": [],
                      "subject": subject}).encode()
    return layout.put(raw, mt.OCI_MANIFEST, **extra)


def test_referrers_travel_with_their_subject_not_as_images(layout: Layout) -> None:
    subject = layout.image(A, **_named("docker.io/library/app:1"))
    by_tag = layout.image(B, **_named(ref=SIG_TAG))
    by_name = layout.image(C, **_named(f"docker.io/library/app:{SIG_TAG}.sig"))
    untagged = _referrer(layout, {k: subject[k] for k in ("mediaType", "digest", "size")})
    layout.write(subject, by_tag, by_name, untagged)
    assert [i.label for i in layout.read()] == ["docker.io/library/app:1"]


def test_an_image_with_one_ordinary_tag_is_no_referrer(layout: Layout) -> None:
    both = layout.image(A)
    layout.write({**both, **_named(ref=SIG_TAG)}, {**both, **_named(ref="v1")},
                 layout.image(B, **_named(ref="sha256-short")))
    assert [i.bare_tags for i in layout.read()] == [(SIG_TAG, "v1"), ("sha256-short",)]


def test_a_name_with_a_digest_is_no_tag(layout: Layout) -> None:
    pinned = f"docker.io/library/app@sha256:{'ab' * 32}"
    layout.write(layout.image(A, **_named(pinned)), layout.image(B, **_named(ref=SIG_TAG)))
    assert [i.names for i in layout.read()] == [(pinned,)]


def test_a_layout_of_referrers_alone_keeps_them(layout: Layout) -> None:
    layout.write(layout.image(A, **_named(ref=SIG_TAG)))
    assert [i.bare_tags for i in layout.read()] == [(SIG_TAG,)]


def test_an_untagged_manifest_without_a_subject_is_an_image(layout: Layout) -> None:
    layout.write(layout.image(A), layout.image(B, **_named(ref="v1")))
    assert len(layout.read()) == 2


def test_an_untagged_index_or_a_missing_manifest_is_no_referrer(layout: Layout) -> None:
    index = layout.index(layout.image(A, platform={"os": "linux", "architecture": "amd64"}))
    layout.write(index, layout.image(B, **_named(ref="v1")))
    assert len(layout.read()) == 2
    layout.write(layout.image(C, store=False), layout.image(B, **_named(ref="v1")))
    with pytest.raises(SourceError, match=r": manifest sha256:\w+ is not in the archive$"):
        layout.read()


def test_an_unreadable_untagged_manifest_is_no_referrer(layout: Layout) -> None:
    broken = layout.put(b"not json", mt.OCI_MANIFEST)
    layout.write(broken, layout.image(B, **_named(ref="v1")))
    with pytest.raises(SourceError, match="manifest"):
        layout.read()  # refused as the image it claims to be, not left out


# -- layers -----------------------------------------------------------------------------


def test_layers_carry_their_diff_ids_and_names_for_messages(layout: Layout) -> None:
    entry = layout.image(A, B, layer_type=mt.OCI_LAYER, **_named(ref="v1"))
    layout.write(entry)
    (image,) = layout.read()
    node = _image([image])
    assert [(b.digest, b.diff_id, b.media_type, b.size) for b in node.layers] == [
        (Digest.parse(sha(A)), Digest.parse(sha(A)), mt.OCI_LAYER, len(A)),
        (Digest.parse(sha(B)), Digest.parse(sha(B)), mt.OCI_LAYER, len(B))]
    assert [b.what for b in node.layers] == [
        f"layer 1 of v1 ({Digest.parse(sha(A)).short})",
        f"layer 2 of v1 ({Digest.parse(sha(B)).short})"]
    with node.layers[1].open() as f:
        assert f.read() == B
    assert node.config.what == "config of v1" and node.config.media_type == mt.OCI_CONFIG
    assert node.platform == Platform("linux", "amd64")
    assert node.manifest is not None and str(node.manifest.digest) == entry["digest"]


def test_layers_docker_25_0_shuffled_come_back_in_rootfs_order(layout: Layout) -> None:
    layout.write(layout.image(A, B, C, order=[2, 0, 1]))
    assert [str(b.digest) for b in _image(layout.read()).layers] == [sha(A), sha(B), sha(C)]


def test_compressed_layers_keep_the_manifests_order(layout: Layout) -> None:
    gz = gzip.compress(A, mtime=0)
    layout.write(layout.image(A, order=[0], layer_type=mt.OCI_LAYER_GZIP, stored_layers=gz))
    node = _image(layout.read())
    assert [(str(b.digest), b.media_type) for b in node.layers] == [
        (sha(gz), mt.OCI_LAYER_GZIP)]
    assert node.layers[0].diff_id == Digest.parse(sha(A))


def test_a_plain_tar_labelled_gzip_is_taken_for_what_it_is(layout: Layout) -> None:
    layout.write(layout.image(A, layer_type=mt.OCI_LAYER_GZIP, **_named(ref="v1")))
    (image,) = layout.read()
    assert [b.media_type for b in _image([image]).layers] == [mt.OCI_LAYER]
    short = Digest.parse(sha(A)).short
    assert image.notes == (f"layer 1 of v1 ({short}) is labelled gzip but its bytes are "
                           "tar: taken as they are, in a corrected manifest",)


def test_a_docker_layer_mislabelled_stays_a_docker_layer(layout: Layout) -> None:
    layout.write(layout.image(A, layer_type=mt.DOCKER_LAYER_GZIP))
    assert [b.media_type for b in _image(layout.read()).layers] == [mt.DOCKER_LAYER]


def test_a_gzip_layer_labelled_plain_is_corrected_too(layout: Layout) -> None:
    gz = gzip.compress(A, mtime=0)
    layout.write(layout.image(A, layer_type=mt.OCI_LAYER, stored_layers=gz))
    (image,) = layout.read()
    assert [b.media_type for b in _image([image]).layers] == [mt.OCI_LAYER_GZIP]
    assert len(image.notes) == 1


@pytest.mark.parametrize("media_type", [mt.OCI_LAYER_ND_GZIP, mt.DOCKER_FOREIGN_LAYER_GZIP,
                                        "application/vnd.example.data"])
def test_foreign_layers_and_other_blobs_keep_their_type(layout: Layout,
                                                        media_type: str) -> None:
    layout.write(layout.image(A, layer_type=media_type))
    (image,) = layout.read()
    assert [b.media_type for b in _image([image]).layers] == [media_type]
    assert image.notes == ()


def test_an_artifact_config_gives_no_diff_ids_or_platform(layout: Layout) -> None:
    layout.write(layout.image(A, B, config_type="application/vnd.example.config+json",
                              order=[1, 0]))
    node = _image(layout.read())
    assert [str(b.digest) for b in node.layers] == [sha(B), sha(A)]  # as listed
    assert [b.diff_id for b in node.layers] == [None, None]
    assert node.platform is None


def test_more_layers_than_diff_ids_leave_the_rest_without_one(layout: Layout) -> None:
    config = json.dumps({"os": "linux", "architecture": "arm64",
                         "rootfs": {"type": "layers", "diff_ids": [sha(A)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": layout.put(config, mt.OCI_CONFIG),
                           "layers": [layout.put(x, mt.OCI_LAYER) for x in (A, B)]}).encode()
    layout.write(layout.put(manifest, mt.OCI_MANIFEST))
    node = _image(layout.read())
    assert [b.diff_id for b in node.layers] == [Digest.parse(sha(A)), None]
    assert node.platform == Platform("linux", "arm64")


def test_a_missing_layer_is_named(layout: Layout) -> None:
    entry = layout.image(A, B, **_named("docker.io/library/app:1"))
    (layout.root / "blobs" / "sha256" / sha(B).split(":")[1]).unlink()
    layout.write(entry)
    with pytest.raises(SourceError, match=rf"^{layout.root}: docker\.io/library/app:1: "
                                          rf"layer {sha(B)} is not in the archive$"):
        layout.read()


def test_a_blob_that_does_not_match_its_descriptor_is_refused(layout: Layout) -> None:
    entry = layout.image(A, **_named(ref="v1"))
    layout.write({**entry, "size": entry["size"] + 1})
    path = f"blobs/sha256/{entry['digest'].split(':')[1]}"
    with pytest.raises(SourceError, match=rf"^{layout.root}: manifest {path} does not match "
                                          "its descriptor$"):
        layout.read()
    layout.write(entry)
    blob = layout.root / path
    blob.write_bytes(blob.read_bytes().replace(b"schemaVersion", b"schemaVersioN"))
    with pytest.raises(SourceError, match="does not match its descriptor"):
        layout.read()


@pytest.mark.parametrize(("media_type", "said"), [
    ("application/vnd.example", "application/vnd.example"), ("", "without media type")])
def test_an_entry_of_another_kind_is_refused(layout: Layout, media_type: str,
                                             said: str) -> None:
    entry = layout.image(A, **_named(ref="v1"))
    layout.write({**entry, "mediaType": media_type})
    with pytest.raises(SourceError, match=rf"^{layout.root}: v1: unsupported entry {said} "
                                          rf"{entry['digest']} is not in the archive$"):
        layout.read()


def test_take_notes_hands_each_note_over_once(layout: Layout) -> None:
    entry = layout.image(A, layer_type=mt.OCI_LAYER_GZIP)
    layout.write(entry, layout.image(B))
    first, second = layout.read()
    assert len(first.notes) == 1 and second.notes == ()
    reader = LayoutReader(DirFiles(str(layout.root)))
    assert reader.take_notes() == ()


# -- multi-platform indexes -------------------------------------------------------------

AMD = {"os": "linux", "architecture": "amd64"}
ARM = {"os": "linux", "architecture": "arm64"}
UNKNOWN = {"os": "unknown", "architecture": "unknown"}


def _multi(layout: Layout, *children: tuple[dict[str, str] | None, bool]) -> None:
    entries = []
    for n, (platform, present) in enumerate(children):
        arch = platform["architecture"] if platform and platform["os"] != "unknown" else "x"
        extra: Json = {"platform": platform} if platform else {}
        entries.append(layout.image(layer_tar({f"{n}": arch.encode()}), arch=arch,
                                    store=present, **extra))
    layout.write(layout.index(*entries, **_named("docker.io/library/app:1")))


def _arch(image: SourceImage) -> str | None:
    node = image.root
    assert isinstance(node, ImageNode) and node.platform is not None
    return node.platform.architecture


def test_a_complete_index_is_kept_whole_unless_a_platform_is_asked(layout: Layout) -> None:
    _multi(layout, (ARM, True), (AMD, True))
    (whole,) = layout.read()
    assert isinstance(whole.root, IndexNode) and len(whole.root.children) == 2
    assert whole.notes == ()
    (one,) = layout.read(Platform("linux", "arm64"))
    assert _arch(one) == "arm64" and one.notes == ()


def test_a_partial_index_narrows_to_the_host_platform_with_a_note(layout: Layout) -> None:
    _multi(layout, (ARM, True), (AMD, True), ({"os": "linux", "architecture": "s390x"}, False))
    (image,) = layout.read()
    assert _arch(image) == HOST
    assert len(image.notes) == 1
    assert image.notes[0].startswith("docker.io/library/app:1: pushing linux/amd64 only; "
                                     "the archive lacks linux/s390x (manifest sha256:")
    assert image.notes[0].endswith(" absent)")
    (asked,) = layout.read(Platform("linux", "arm64"))
    assert _arch(asked) == "arm64" and asked.notes == ()  # the one asked for: no note


def test_a_partial_index_without_the_host_takes_the_first_complete_image(
        layout: Layout) -> None:
    _multi(layout, (UNKNOWN, True), (ARM, True), (None, False),
           ({"os": "linux", "architecture": "ppc64le"}, True))
    (image,) = layout.read()
    assert _arch(image) == "arm64"  # not the attestation manifest (unknown/unknown)
    assert "the archive lacks no platform (manifest sha256:" in image.notes[0]


def test_a_platform_asked_for_that_is_incomplete_is_refused(layout: Layout) -> None:
    _multi(layout, (ARM, False), (AMD, True))
    with pytest.raises(SourceError, match=rf"^{layout.root}: docker\.io/library/app:1: no "
                                          r"complete image for linux/arm64 in the archive "
                                          r"\(missing: linux/arm64 \(manifest sha256:\w+ "
                                          r"absent\)\)$"):
        layout.read(Platform("linux", "arm64"))


def test_a_platform_that_is_not_there_is_refused_saying_nothing_is_missing(
        layout: Layout) -> None:
    _multi(layout, (AMD, True))
    with pytest.raises(SourceError, match=r"no complete image for linux/riscv64 in the "
                                          r"archive \(missing: none\)$"):
        layout.read(Platform("linux", "riscv64"))


def test_an_index_with_nothing_complete_is_refused(layout: Layout) -> None:
    _multi(layout, (ARM, False), (UNKNOWN, True))
    with pytest.raises(SourceError, match=r"no complete image for any platform in the "
                                          r"archive \(missing: linux/arm64"):
        layout.read()


def test_a_nested_index_is_walked(layout: Layout) -> None:
    inner = layout.index(layout.image(A, platform=AMD), platform=AMD)
    layout.write(layout.index(inner, **_named(ref="v1")))
    (image,) = layout.read()
    assert isinstance(image.root, IndexNode)
    (_, child), = image.root.children
    assert isinstance(child, IndexNode)
    assert isinstance(child.children[0][1], ImageNode)


# -- what a broken layout says ----------------------------------------------------------


def _junk(layout: Layout, media_type: str, data: bytes = b"not json", **extra: Any) -> Json:
    return layout.put(data, media_type, **extra)


def test_broken_layout_files_are_named(layout: Layout) -> None:
    (layout.root / "oci-layout").write_text("not json")
    layout.write(layout.image(A))
    with pytest.raises(SourceError, match=r"^oci-layout is not valid JSON"):
        layout.read()
    (layout.root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout.root / "index.json").write_text("not json")
    with pytest.raises(SourceError, match=r"^index\.json is not valid JSON"):
        layout.read()


def _too_large(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate((64 << 20) + 1)  # sparse: nothing is written, nothing read


@pytest.mark.parametrize(("name", "what"), [("oci-layout", "layout header"),
                                            ("index.json", "index")])
def test_oversized_layout_files_are_named(layout: Layout, name: str, what: str) -> None:
    layout.write(layout.image(A))
    _too_large(layout.root / name)
    with pytest.raises(SourceError, match=rf"^{layout.root}: {what} '{name}' is too large"):
        layout.read()


def test_an_oversized_manifest_is_named(layout: Layout) -> None:
    entry = layout.image(A)
    layout.write(entry)
    path = f"blobs/sha256/{entry['digest'].split(':')[1]}"
    _too_large(layout.root / path)
    with pytest.raises(SourceError, match=rf"^{layout.root}: manifest '{path}' is too large"):
        layout.read()


def test_a_root_index_that_is_not_json_is_named(layout: Layout) -> None:
    layout.write(_junk(layout, mt.OCI_INDEX, **_named(ref="v1")))
    with pytest.raises(SourceError, match=r"^index of v1 is not valid JSON"):
        layout.read()


def test_a_root_index_that_does_not_match_is_named(layout: Layout) -> None:
    root = layout.index(layout.image(A, platform=AMD), **_named(ref="v1"))
    layout.write({**root, "size": root["size"] - 1})
    path = f"blobs/sha256/{root['digest'].split(':')[1]}"
    with pytest.raises(SourceError, match=rf"^{layout.root}: index {path} does not match "):
        layout.read()


def test_a_nested_index_that_is_broken_is_named(layout: Layout) -> None:
    layout.write(layout.index(_junk(layout, mt.OCI_INDEX), **_named(ref="v1")))
    with pytest.raises(SourceError, match=r"^index of v1 is not valid JSON"):
        layout.read()
    deeper = layout.index(_junk(layout, mt.OCI_MANIFEST, platform=AMD))
    layout.write(layout.index(deeper, **_named(ref="v1")))
    with pytest.raises(SourceError, match=r"^manifest of v1 is not valid JSON"):
        layout.read()
    nested = _junk(layout, mt.OCI_INDEX)
    layout.write(layout.index({**nested, "size": 3}, **_named(ref="v1")))
    path = f"blobs/sha256/{nested['digest'].split(':')[1]}"
    with pytest.raises(SourceError, match=rf"^{layout.root}: index {path} does not match "):
        layout.read()


def test_a_manifest_in_an_index_that_is_broken_is_named(layout: Layout) -> None:
    layout.write(layout.index(_junk(layout, mt.OCI_MANIFEST, platform=AMD),
                              **_named(ref="v1")))
    with pytest.raises(SourceError, match=r"^manifest of v1 is not valid JSON"):
        layout.read()


def test_a_manifest_or_config_that_is_broken_is_named(layout: Layout) -> None:
    layout.write(_junk(layout, mt.OCI_MANIFEST, **_named(ref="v1")))
    with pytest.raises(SourceError, match=r"^manifest of v1 is not valid JSON"):
        layout.read()
    config = layout.put(b'{"os": "linux"}', mt.OCI_CONFIG)
    manifest = json.dumps({"schemaVersion": 2, "config": config, "layers": []}).encode()
    layout.write(layout.put(manifest, mt.OCI_MANIFEST, **_named(ref="v1")))
    with pytest.raises(SourceError, match=r"^config of v1 has no rootfs\.diff_ids$"):
        layout.read()
    wrong = json.dumps({"schemaVersion": 2, "layers": [],
                        "config": {**config, "size": 3}}).encode()
    layout.write(layout.put(wrong, mt.OCI_MANIFEST, **_named(ref="v1")))
    path = f"blobs/sha256/{config['digest'].split(':')[1]}"
    with pytest.raises(SourceError, match=rf"^{layout.root}: config {path} does not match "):
        layout.read()


def test_documents_without_a_media_type_take_their_descriptors(layout: Layout) -> None:
    config = config_for(ImageSpec([A]))
    manifest = json.dumps({"schemaVersion": 2, "config": layout.put(config, mt.DOCKER_CONFIG),
                           "layers": [layout.put(A, mt.DOCKER_LAYER)]}).encode()
    child = layout.put(manifest, mt.DOCKER_MANIFEST, platform=AMD)
    inner = json.dumps({"schemaVersion": 2, "manifests": [child]}).encode()
    nested = layout.put(inner, mt.DOCKER_MANIFEST_LIST)
    layout.write(layout.put(inner, mt.DOCKER_MANIFEST_LIST, **_named(ref="v1")),
                 layout.put(json.dumps({"schemaVersion": 2, "manifests": [nested]}).encode(),
                            mt.DOCKER_MANIFEST_LIST, **_named(ref="v2")))
    flat, deep = layout.read()
    assert isinstance(flat.root, IndexNode)
    assert flat.root.index.media_type == mt.DOCKER_MANIFEST_LIST
    (_, image), = flat.root.children
    assert isinstance(image, ImageNode) and image.manifest is not None
    assert image.manifest.media_type == mt.DOCKER_MANIFEST
    assert isinstance(deep.root, IndexNode)
    (_, inner_node), = deep.root.children
    assert isinstance(inner_node, IndexNode)
    assert inner_node.index.media_type == mt.DOCKER_MANIFEST_LIST
    assert inner_node.index.manifests[0].digest == Digest.parse(child["digest"])


def test_a_ref_name_with_a_tag_is_a_name(layout: Layout) -> None:
    layout.write(layout.image(A, **_named(ref="app:1")))
    (image,) = layout.read()
    assert (image.names, image.bare_tags) == (("app:1",), ())


def test_a_referrer_named_with_a_registry_port_is_left_out(layout: Layout) -> None:
    layout.write(layout.image(A, **_named("localhost:5000/app:1")),
                 layout.image(B, **_named(f"localhost:5000/app:{SIG_TAG}")))
    assert [i.label for i in layout.read()] == ["localhost:5000/app:1"]


def test_a_referrer_named_only_by_digest_is_left_out(layout: Layout) -> None:
    subject = layout.image(A, **_named("docker.io/library/app:1"))
    pinned = f"docker.io/library/app@sha256:{'cd' * 32}"
    referrer = _referrer(layout, {k: subject[k] for k in ("mediaType", "digest", "size")},
                         **_named(pinned))
    layout.write(subject, referrer)
    assert [i.label for i in layout.read()] == ["docker.io/library/app:1"]


def test_an_untagged_index_with_a_subject_is_an_image(layout: Layout) -> None:
    subject = layout.image(A, **_named("docker.io/library/app:1"))
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                      "manifests": [layout.image(B, platform=AMD)],
                      "subject": {k: subject[k] for k in ("mediaType", "digest", "size")}})
    layout.write(subject, layout.put(raw.encode(), mt.OCI_INDEX))
    assert len(layout.read()) == 2


def test_every_missing_platform_is_listed(layout: Layout) -> None:
    _multi(layout, (ARM, False), ({"os": "linux", "architecture": "s390x"}, False),
           (AMD, True))
    (image,) = layout.read()
    assert "lacks linux/arm64 (manifest sha256:" in image.notes[0]
    assert " absent); linux/s390x (manifest sha256:" in image.notes[0]
    with pytest.raises(SourceError, match=r" absent\); linux/s390x \(manifest sha256:"):
        layout.read(Platform("linux", "arm64"))
