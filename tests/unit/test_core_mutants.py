"""The engine's own decisions (src/freight/engine/core.py), seen in what a copy writes: an
index rebuilt child by child (platforms, annotations and its type kept, attestations left
out when the image they describe was rewritten), layers left at their URLs, blobs without
a digest hashed, a dry run's manifest, and a registry blank for wrong bytes. OCI layouts
built blob by blob (test_oci_layout_mutants.Layout) and the embedded registry in a
thread. Written against mutation testing of the module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import freight
from freight import mediatypes as mt
from freight.progress import Phase, Plan, Silent
from freight.results import Action, ImageResult
from freight.testing import serve_in_thread
from support.fixtures import module_registry, own_cache

from .test_oci_layout_mutants import A, B, C, Layout

pytestmark = pytest.mark.timeout(20)

Json = dict[str, Any]
AMD = {"os": "linux", "architecture": "amd64"}
ARM = {"os": "linux", "architecture": "arm64"}
UNKNOWN = {"os": "unknown", "architecture": "unknown"}
IN_TOTO = "application/vnd.in-toto+json"


_own_cache = own_cache()
registry = module_registry("core")  # HOST:PORT of the module's embedded registry


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "layout")


class Noted(Silent):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


def _blob(root: Path, digest: str) -> bytes:
    algorithm, encoded = digest.split(":")
    return (root / "blobs" / algorithm / encoded).read_bytes()


def _json(root: Path, digest: str) -> Json:
    loaded: Json = json.loads(_blob(root, digest))
    return loaded


def _attestation(layout: Layout, subject: Json) -> Json:
    """BuildKit's provenance of `subject`: in-toto statements, never converted."""
    return layout.image(C, arch="unknown", platform=UNKNOWN, layer_type=IN_TOTO, annotations={
        "vnd.docker.reference.type": "attestation-manifest",
        "vnd.docker.reference.digest": subject["digest"]})


def _copy(source: Path, out: Path, **options: Any) -> ImageResult:
    (result,) = freight.copy(f"oci:{source}", f"oci:{out}:v1", **options)
    return result


def _index(layout: Layout, *children: Json, media_type: str = mt.OCI_INDEX,
           **fields: Any) -> Json:
    raw = json.dumps({"schemaVersion": 2, "mediaType": media_type,
                      "manifests": list(children), **fields}).encode()
    return layout.put(raw, media_type)


def _short(digest: str) -> str:
    return digest.split(":")[1][:12]


def _written(out: Path, result: ImageResult) -> Json:
    return _json(out, str(result.digest))


# --- indexes ---------------------------------------------------------------------------


def test_an_attestation_of_a_rewritten_image_is_left_out_with_a_note(layout: Layout,
                                                                     tmp_path: Path) -> None:
    amd = layout.image(A, platform=AMD)
    attestation = _attestation(layout, amd)
    layout.write(_index(layout, amd, attestation))
    noted, out = Noted(), tmp_path / "out"
    result = _copy(layout.root, out, compression="gzip", progress=noted)
    (child,) = _written(out, result)["manifests"]
    assert child["platform"] == AMD and child["digest"] != amd["digest"]
    assert noted.notes == [
        f"attestation manifest {_short(attestation['digest'])} left out: it describes "
        f"{_short(amd['digest'])}, which was written as {_short(child['digest'])} (layers "
        "changed on the way); use --compression keep to keep both"]
    assert [b.media_type for b in result.blobs] == [mt.OCI_CONFIG, mt.OCI_LAYER_GZIP]
    assert [b.action for b in result.blobs] == [Action.WRITTEN] * 2
    assert not (out / "blobs" / "sha256" / attestation["digest"].split(":")[1]).exists()


def test_an_index_nothing_changes_in_is_kept_byte_for_byte(layout: Layout,
                                                           tmp_path: Path) -> None:
    amd = layout.image(A, platform=AMD)
    attestation = _attestation(layout, amd)
    index = _index(layout, attestation, amd, annotations={"team": "web"})
    layout.write(index)
    noted, out = Noted(), tmp_path / "out"
    result = _copy(layout.root, out, progress=noted)
    assert str(result.digest) == index["digest"] and result.media_type == mt.OCI_INDEX
    assert _blob(out, index["digest"]) == _blob(layout.root, index["digest"])
    assert _blob(out, attestation["digest"]) == _blob(layout.root, attestation["digest"])
    assert noted.notes == []
    assert len(result.blobs) == 4  # both images' config and layer


def test_a_rebuilt_index_keeps_order_platforms_annotations_and_the_kept_attestations(
        layout: Layout, tmp_path: Path) -> None:
    """The arm64 image is gzip already: kept as it is, with its attestation (listed before
    it); the amd64 one is compressed, and its attestation left out."""
    import gzip

    arm = layout.image(B, platform=ARM, layer_type=mt.OCI_LAYER_GZIP,
                       stored_layers=gzip.compress(B, mtime=0),
                       annotations={"org.example.note": "arm"})
    amd = layout.image(A, platform=AMD, annotations={"org.example.note": "amd"})
    arm_attestation, amd_attestation = _attestation(layout, arm), _attestation(layout, amd)
    layout.write(_index(layout, arm_attestation, amd, amd_attestation, arm,
                        annotations={"team": "web"}))
    noted, out = Noted(), tmp_path / "out"
    written = _written(out, _copy(layout.root, out, compression="gzip", progress=noted))
    assert written["mediaType"] == mt.OCI_INDEX
    assert written["annotations"] == {"team": "web"}
    first, second, third = written["manifests"]
    assert first == arm_attestation
    assert {k: v for k, v in second.items() if k != "digest" and k != "size"} == {
        "mediaType": mt.OCI_MANIFEST, "platform": AMD,
        "annotations": {"org.example.note": "amd"}}
    assert third == arm
    assert len(noted.notes) == 1 and _short(amd_attestation["digest"]) in noted.notes[0]


def _docker_image(layout: Layout, layer: bytes, *, gzipped: bool = False, **extra: Any) -> Json:
    import gzip

    from freight.testing import ImageSpec, config_for

    config = config_for(ImageSpec([layer]))
    stored = layout.put(gzip.compress(layer, mtime=0), mt.DOCKER_LAYER_GZIP) if gzipped \
        else layout.put(layer, mt.DOCKER_LAYER)
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST,
                      "config": layout.put(config, mt.DOCKER_CONFIG),
                      "layers": [stored]}).encode()
    return layout.put(raw, mt.DOCKER_MANIFEST, **extra)


@pytest.mark.parametrize(("compression", "index_type", "child_type"), [
    ("gzip", mt.DOCKER_MANIFEST_LIST, mt.DOCKER_MANIFEST),
    ("zstd", mt.OCI_INDEX, mt.OCI_MANIFEST),
])
def test_a_rebuilt_docker_list_stays_one_while_its_images_are_docker(
        layout: Layout, tmp_path: Path, compression: str, index_type: str,
        child_type: str) -> None:
    layout.write(_index(layout, _docker_image(layout, A, platform=AMD),
                        media_type=mt.DOCKER_MANIFEST_LIST))
    out = tmp_path / "out"
    result = _copy(layout.root, out, compression=compression)
    written = _written(out, result)
    assert result.media_type == written["mediaType"] == index_type
    assert [c["mediaType"] for c in written["manifests"]] == [child_type]
    assert "annotations" not in written  # none in the source: none invented


def test_one_oci_image_in_a_rebuilt_docker_list_makes_it_an_oci_index(layout: Layout,
                                                                     tmp_path: Path) -> None:
    """A kept attestation (an OCI manifest) beside docker images: a docker list cannot
    hold it."""
    arm = _docker_image(layout, B, gzipped=True, platform=ARM)
    layout.write(_index(layout, arm, _attestation(layout, arm),
                        _docker_image(layout, A, platform=AMD),
                        media_type=mt.DOCKER_MANIFEST_LIST))
    out = tmp_path / "out"
    written = _written(out, _copy(layout.root, out, compression="gzip"))
    assert written["mediaType"] == mt.OCI_INDEX
    assert [c["mediaType"] for c in written["manifests"]] == [
        mt.DOCKER_MANIFEST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST]


# --- corrupt bytes -----------------------------------------------------------------------


def _corrupt(path: Path, at: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 1  # the size stays: only a hash tells
    path.write_bytes(bytes(data))


def test_a_corrupt_local_layer_is_the_archive_s_fault(layout: Layout, tmp_path: Path) -> None:
    image = layout.image(A)
    layout.write(image)
    (layer,) = _json(layout.root, image["digest"])["layers"]
    _corrupt(layout.root / "blobs" / "sha256" / layer["digest"].split(":")[1])
    with pytest.raises(freight.SourceError) as caught:
        _copy(layout.root, tmp_path / "out")
    assert "(against its diff_id)" in str(caught.value)  # the uncompressed layer's digest
    assert layer["digest"] in str(caught.value) and "sent bytes" not in str(caught.value)


def test_a_corrupt_compressed_layer_is_not_said_to_be_checked_against_its_diff_id(
        layout: Layout, tmp_path: Path) -> None:
    import gzip

    image = layout.image(A, layer_type=mt.OCI_LAYER_GZIP, stored_layers=gzip.compress(A))
    layout.write(image)
    (layer,) = _json(layout.root, image["digest"])["layers"]
    _corrupt(layout.root / "blobs" / "sha256" / layer["digest"].split(":")[1], at=-1)
    with pytest.raises(freight.SourceError) as caught:
        _copy(layout.root, tmp_path / "out")
    assert layer["digest"] in str(caught.value) and "diff_id" not in str(caught.value)


@pytest.mark.parametrize(("to", "compression"), [("layout", None), ("registry", None),
                                                ("layout", "zstd")])
def test_a_registry_sending_wrong_bytes_is_blamed(layout: Layout, tmp_path: Path,
                                                  registry: str, to: str,
                                                  compression: str | None) -> None:
    """Sent as they are (read ahead between registries) or converted on the way."""
    import gzip

    if compression is None:
        layout.write(layout.image(A, layer_type=mt.OCI_LAYER_GZIP,
                                  stored_layers=gzip.compress(A, mtime=0)))
    else:  # a plain tar, so the conversion reads on to the digest check
        layout.write(layout.image(A))
    with serve_in_thread(tmp_path / "corrupt") as source:
        (pushed,) = freight.copy(f"oci:{layout.root}", source.reference("app", "v1"),
                                 compression="keep")
        layer = pushed.blobs[1].digest
        (stored,) = (p for p in source.root.rglob(layer.encoded) if "blobs" in p.parts)
        _corrupt(stored, at=-1 if compression is None else 512)  # a tar's file bytes
        target = f"oci:{tmp_path / 'out'}:v1" if to == "layout" else \
            f"{registry}/blamed:v1"
        with pytest.raises(freight.RegistryError) as caught:
            freight.copy(source.reference("app", "v1"), target, compression=compression)
    assert str(caught.value).startswith(
        f"{source.host} sent bytes that do not match their digest (expected {layer}, got ")
    assert caught.value.code == "DIGEST_INVALID"


def test_a_registry_sending_gzip_that_does_not_decompress_is_blamed(
        layout: Layout, tmp_path: Path) -> None:
    """Converted on the way (gzip to zstd), a corrupt gzip stops the decompressor before
    the digest is checked: still the registry's error (exit 4), not bad input."""
    import gzip

    layout.write(layout.image(A, layer_type=mt.OCI_LAYER_GZIP,
                              stored_layers=gzip.compress(A, mtime=0)))
    with serve_in_thread(tmp_path / "corrupt-gzip") as source:
        (pushed,) = freight.copy(f"oci:{layout.root}", source.reference("app", "v1"),
                                 compression="keep")
        layer = pushed.blobs[1].digest
        (stored,) = (p for p in source.root.rglob(layer.encoded) if "blobs" in p.parts)
        _corrupt(stored, at=0)  # the gzip magic: not a gzip stream any more
        with pytest.raises(freight.RegistryError) as caught:
            freight.copy(source.reference("app", "v1"), f"oci:{tmp_path / 'out'}:v1",
                         compression="zstd")
    assert str(caught.value).startswith(f"{source.host} sent layer 1 of ")
    assert "cannot be read as its media type says" in str(caught.value)
    assert not (tmp_path / "out").exists()


# --- layers left at their URLs -----------------------------------------------------------


def _with_foreign(layout: Layout) -> tuple[Json, Json]:
    """An image of a foreign layer (not in the layout: at its URL) and an ordinary one."""
    from freight.testing import ImageSpec, config_for

    foreign = layout.put(A, mt.OCI_LAYER_ND_GZIP, store=False,
                         urls=["https://example.com/a.tar.gz"])
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                      "config": layout.put(config_for(ImageSpec([A, B])), mt.OCI_CONFIG),
                      "layers": [foreign, layout.put(B, mt.OCI_LAYER)]}).encode()
    image = layout.put(raw, mt.OCI_MANIFEST)
    layout.write(image)
    return image, foreign


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_a_foreign_layer_stays_at_its_url(layout: Layout, tmp_path: Path,
                                          compression: str | None) -> None:
    image, foreign = _with_foreign(layout)
    out = tmp_path / "out"
    result = _copy(layout.root, out, compression=compression)
    assert result.blobs[1].action == Action.EXTERNAL
    assert (str(result.blobs[1].digest), result.blobs[1].size) == (foreign["digest"],
                                                                   foreign["size"])
    assert _written(out, result)["layers"][0] == foreign  # its URLs too
    assert not (out / "blobs" / "sha256" / foreign["digest"].split(":")[1]).exists()
    assert (str(result.digest) == image["digest"]) is (compression is None)


def test_a_dry_run_plans_a_foreign_layer_as_external(layout: Layout, tmp_path: Path) -> None:
    image, _ = _with_foreign(layout)
    result = _copy(layout.root, tmp_path / "out", dry_run=True)
    assert [b.action for b in result.blobs] == [Action.PLANNED, Action.EXTERNAL,
                                                Action.PLANNED]
    assert str(result.digest) == image["digest"]
    assert not (tmp_path / "out").exists()
    _copy(layout.root, tmp_path / "out")
    again = _copy(layout.root, tmp_path / "out", dry_run=True)  # the layer after it is found
    assert [b.action for b in again.blobs] == [Action.SKIPPED, Action.EXTERNAL, Action.SKIPPED]


# --- dry runs ----------------------------------------------------------------------------


def test_a_dry_run_of_an_index_names_the_index_and_every_blob(layout: Layout,
                                                              tmp_path: Path) -> None:
    amd, arm = layout.image(A, platform=AMD), layout.image(B, platform=ARM)
    index = _index(layout, amd, arm)
    layout.write(index)
    result = _copy(layout.root, tmp_path / "out", dry_run=True, compression="gzip")
    assert (str(result.digest), result.media_type) == (index["digest"], mt.OCI_INDEX)
    assert result.size == index["size"]
    assert [b.action for b in result.blobs] == [Action.PLANNED] * 4
    configs = [_json(layout.root, d["digest"])["config"] for d in (amd, arm)]
    assert [str(result.blobs[i].digest) for i in (0, 2)] == [c["digest"] for c in configs]
    assert [result.blobs[i].media_type for i in (1, 3)] == [mt.OCI_LAYER_GZIP] * 2
    assert not (tmp_path / "out").exists()


def test_a_dry_run_of_a_conversion_not_yet_done_names_the_source_manifest(
        layout: Layout, tmp_path: Path) -> None:
    image = layout.image(A)
    layout.write(image)
    result = _copy(layout.root, tmp_path / "out", dry_run=True, compression="gzip")
    assert (str(result.digest), result.size) == (image["digest"], image["size"])
    (layer,) = _json(layout.root, image["digest"])["layers"]
    assert result.blobs[1].size == layer["size"]  # the size it has now
    real = _copy(layout.root, tmp_path / "out", compression="gzip")
    again = _copy(layout.root, tmp_path / "again", dry_run=True, compression="gzip")
    assert (again.digest, again.size, again.media_type) == (real.digest, real.size,
                                                            real.media_type)
    assert [(b.digest, b.size) for b in again.blobs] == [(b.digest, b.size) for b in real.blobs]
    # the cache knows the conversion, the new layout has nothing yet: converted and written
    fresh = _copy(layout.root, tmp_path / "fresh", compression="gzip")
    assert fresh.digest == real.digest
    assert [b.action for b in fresh.blobs] == [Action.WRITTEN] * 2
    assert _blob(tmp_path / "fresh", str(fresh.blobs[1].digest)) == \
        _blob(tmp_path / "out", str(real.blobs[1].digest))


def test_a_dry_run_of_a_legacy_archive_names_what_it_can(tmp_path: Path) -> None:
    """Layers sent as they are are hashed for their digest: the manifest is known. Layers
    to convert are not: a legacy archive has no manifest of its own to name instead."""
    from freight.testing import random_image

    made = random_image(tmp_path / "legacy.tar", layers=[3_000], seed=11)
    source, out = f"docker-archive:{made.path}", f"oci:{tmp_path / 'out'}:v1"
    (unknown,) = freight.copy(source, out, dry_run=True, compression="gzip")
    assert str(unknown.digest) == "sha256:" + "0" * 64
    assert (unknown.size, unknown.media_type) == (0, mt.OCI_MANIFEST)
    assert [b.action for b in unknown.blobs] == [Action.PLANNED] * 2
    assert str(unknown.blobs[0].digest) == made.image.config_digest
    (known,) = freight.copy(source, out, dry_run=True)
    assert str(known.blobs[1].digest) == made.image.diff_ids[0]  # hashed: sent as it is
    (real,) = freight.copy(source, out)
    assert (known.digest, known.size) == (real.digest, real.size)


# --- more shapes -------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_a_nested_index_is_rebuilt_inside_out(layout: Layout, tmp_path: Path,
                                              compression: str | None) -> None:
    image = layout.image(A, platform=AMD)
    inner = _index(layout, image)
    outer = _index(layout, {**inner, "annotations": {"kind": "inner"}})
    layout.write(outer)
    out, told = tmp_path / "out", Tallied()
    result = _copy(layout.root, out, compression=compression, progress=told)
    assert told.done == told.plans[0].total == _source_sizes(
        layout.root, _json(layout.root, image["digest"]))
    (child,) = _written(out, result)["manifests"]
    assert child["annotations"] == {"kind": "inner"}
    (image,) = _json(out, child["digest"])["manifests"]  # the inner index is stored
    assert _json(out, image["digest"])["layers"][0]["mediaType"] == (
        mt.OCI_LAYER_GZIP if compression else mt.OCI_LAYER)
    assert (str(result.digest) == outer["digest"]) is (compression is None)


def test_a_docker_archive_refuses_a_foreign_layer_before_writing(layout: Layout,
                                                                 tmp_path: Path) -> None:
    _with_foreign(layout)
    with pytest.raises(freight.UsageError, match="is non-distributable"):
        freight.copy(f"oci:{layout.root}", f"docker-archive:{tmp_path / 'out.tar'}:app:1")
    assert not (tmp_path / "out.tar").exists()


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_each_image_of_a_run_finds_its_own_blobs(tmp_path: Path, registry: str,
                                                 compression: str) -> None:
    """Two images share a layer; the first is in the registry already: its blobs are
    skipped, the second image's copy of the shared layer is mounted into its repository."""
    from freight.testing import ImageSpec, write_images

    shared, own = b"s" * 3000, b"o" * 2000
    first = ImageSpec([shared], (f"{compression}/first:1",))
    second = ImageSpec([shared, own], (f"{compression}/second:1",))
    freight.push(write_images(tmp_path / "one.tar", [first]).path, registry,
                 compression=compression)
    both = write_images(tmp_path / "both.tar", [first, second]).path
    results = freight.push(both, registry, compression=compression)
    assert [[b.action for b in r.blobs] for r in results] == [
        [Action.SKIPPED, Action.SKIPPED],
        [Action.UPLOADED, Action.MOUNTED, Action.UPLOADED]]


# --- the overall progress --------------------------------------------------------------


class Tallied(Silent):
    """The plan announced and the overall bytes reported."""

    def __init__(self) -> None:
        self.plans: list[Plan] = []
        self.steps: list[int] = []
        self.phases: list[Phase] = []

    @property
    def done(self) -> int:
        return sum(self.steps)

    def begin(self, plan: Plan) -> None:
        self.plans.append(plan)

    def overall(self, n: int) -> None:
        self.steps.append(n)

    def blob_start(self, key: str, label: str, total: int, phase: Phase) -> None:
        self.phases.append(phase)


def _source_sizes(root: Path, manifest: Json) -> int:
    return manifest["config"]["size"] + sum(x["size"] for x in manifest["layers"])


def test_the_overall_bar_counts_every_source_byte_once(layout: Layout, tmp_path: Path) -> None:
    image = layout.image(A, B)
    layout.write(image)
    size = _source_sizes(layout.root, _json(layout.root, image["digest"]))
    for attempt in ("first", "again"):  # written, then skipped: the bar ends full both times
        told = Tallied()
        _copy(layout.root, tmp_path / "out", compression="gzip", progress=told)
        assert told.plans == [Plan("copy", 1, 3, size)], attempt
        assert told.done == size, attempt


def test_an_attestation_left_out_still_fills_the_bar(layout: Layout, tmp_path: Path) -> None:
    amd = layout.image(A, platform=AMD)
    attestation = _attestation(layout, amd)
    layout.write(_index(layout, amd, attestation))
    size = sum(_source_sizes(layout.root, _json(layout.root, d["digest"]))
               for d in (amd, attestation))
    told = Tallied()
    _copy(layout.root, tmp_path / "out", compression="gzip", progress=told)
    assert told.plans == [Plan("copy", 1, 4, size)]
    assert told.done == size


def test_a_foreign_layer_is_not_in_the_plan(layout: Layout, tmp_path: Path) -> None:
    image, foreign = _with_foreign(layout)
    size = _source_sizes(layout.root, _json(layout.root, image["digest"])) - foreign["size"]
    told = Tallied()
    _copy(layout.root, tmp_path / "out", progress=told)
    assert (told.plans[0].blobs, told.plans[0].total, told.done) == (2, size, size)


def test_two_images_are_planned_together(tmp_path: Path, registry: str) -> None:
    from freight.testing import random_image

    made = random_image(tmp_path / "two.tar", layers=[3_000, 1_000], images=2, seed=12)
    told = Tallied()
    freight.push(made.path, registry, progress=told, compression="none")
    sizes = sum(len(b.data) for i in made.images for b in i.layers) + sum(
        len(i.config) for i in made.images)
    assert told.plans == [Plan("push", 2, 6, sizes)] and told.done == sizes


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_the_bar_moves_while_a_big_layer_is_read(tmp_path: Path,
                                                 compression: str | None) -> None:
    """Sent as it is or compressed first: the overall bar advances as the layer is read,
    not in one jump at its end (the reads are of 1 MiB)."""
    from freight.testing import random_image

    made = random_image(tmp_path / "big.tar", layers=[3_000_000], seed=13)
    told = Tallied()
    freight.copy(f"docker-archive:{made.path}", f"oci:{tmp_path / 'out'}:v1",
                 compression=compression, progress=told)
    config = len(made.image.config)
    assert sorted(told.steps) == sorted([config, 1 << 20, 1 << 20,
                                         told.plans[0].total - config - (2 << 20)])


def test_a_dry_run_reads_and_converts_nothing(tmp_path: Path) -> None:
    from freight.testing import random_image

    made = random_image(tmp_path / "big.tar", layers=[50_000], seed=14)
    told = Tallied()
    freight.copy(f"docker-archive:{made.path}", f"oci:{tmp_path / 'out'}:v1",
                 compression="zstd", progress=told, dry_run=True)
    assert (told.phases, told.steps) == ([], [])


def test_an_attestation_of_an_image_not_in_the_index_is_kept(layout: Layout,
                                                             tmp_path: Path) -> None:
    """Nothing it names was rewritten here (the image it describes is elsewhere)."""
    amd = layout.image(A, platform=AMD, artifactType="application/vnd.example")
    elsewhere = layout.image(B, store=False)
    attestation = _attestation(layout, elsewhere)
    layout.write(_index(layout, amd, attestation))
    noted, out = Noted(), tmp_path / "out"
    written = _written(out, _copy(layout.root, out, compression="gzip", progress=noted))
    first, second = written["manifests"]
    assert first["artifactType"] == "application/vnd.example"  # fields of the entry kept
    assert second == attestation and noted.notes == []


def test_each_image_of_a_run_moves_the_bar_while_it_is_compressed(tmp_path: Path,
                                                                  registry: str) -> None:
    """The second image's layer is compressed for it, not for the first: its reads move
    the bar (counted for the image that needs the conversion)."""
    from freight.testing import ImageSpec, layer_tar, random_layer, write_images

    small = ImageSpec([layer_tar({"a": b"a"})], ("bar/small:1",))
    big = ImageSpec([random_layer(3_000_000, seed=15)], ("bar/big:1",))
    both = write_images(tmp_path / "both.tar", [small, big]).path
    told = Tallied()
    freight.push(both, registry, compression="gzip", progress=told)
    assert told.steps.count(1 << 20) == 2  # read in 1 MiB steps, as compressed
    assert told.done == told.plans[0].total


def test_a_push_not_streamed_uploads_each_layer_whole(tmp_path: Path) -> None:
    from freight.testing import random_image

    made = random_image(tmp_path / "a.tar", layers=[300_000], seed=16)
    with serve_in_thread() as other:
        freight.push(made.path, other.reference("whole/app", "v1"), compression="zstd",
                     stream=False)
        sent = [r["method"] for r in other.requests() if "/blobs/uploads/" in r["path"]]
    assert sent == ["POST", "POST", "PUT", "PUT"]  # no PATCH: nothing went up as converted


# --- blobs that name no digest -----------------------------------------------------------


def test_a_compressed_legacy_layer_is_hashed_for_its_digest(tmp_path: Path) -> None:
    """A `docker save` of old names gzip layers by directory, not digest: sent as they
    are, their digest is the hash of their bytes, known before anything is written."""
    from freight.testing import random_image

    made = random_image(tmp_path / "legacy.tar", layers=[2_500_000, 2_000], seed=17,
                        compression="gzip")
    source, out = f"docker-archive:{made.path}", tmp_path / "out"
    (planned,) = freight.copy(source, f"oci:{out}:v1", dry_run=True)
    (real,) = freight.copy(source, f"oci:{out}:v1")
    digests = [layer.digest for layer in made.image.layers]
    assert [str(b.digest) for b in real.blobs[1:]] == digests
    assert [b.digest for b in planned.blobs] == [b.digest for b in real.blobs]
    assert (planned.digest, planned.size) == (real.digest, real.size)
    for layer in made.image.layers:
        assert _blob(out, layer.digest) == layer.data
    (again,) = freight.copy(source, f"oci:{out}:v1")
    assert [b.action for b in again.blobs] == [Action.SKIPPED] * 3


def test_a_conversion_two_images_share_fills_the_bar_of_both(tmp_path: Path,
                                                             registry: str) -> None:
    """Compressed once, for the first image: the second image's share of the bar is
    filled when it takes the result."""
    from freight.testing import ImageSpec, write_images

    shared = b"s" * 5000
    images = [ImageSpec([shared], ("shared/one:1",)),
              ImageSpec([shared, b"t" * 3000], ("shared/two:1",))]
    told = Tallied()
    freight.push(write_images(tmp_path / "both.tar", images).path, registry,
                 compression="gzip", progress=told)
    assert told.phases.count(Phase.COMPRESS) == 2  # the shared layer once, the other once
    assert told.done == told.plans[0].total


def test_a_kept_attestation_fills_the_bar_too(layout: Layout, tmp_path: Path) -> None:
    amd = layout.image(A, platform=AMD)
    attestation = _attestation(layout, amd)
    layout.write(_index(layout, attestation, amd))
    told = Tallied()
    _copy(layout.root, tmp_path / "out", progress=told)
    assert told.done == told.plans[0].total == sum(
        _source_sizes(layout.root, _json(layout.root, d["digest"])) for d in (amd, attestation))


def test_a_recompression_is_remembered_by_the_layer_s_diff_id(layout: Layout,
                                                              tmp_path: Path) -> None:
    """gzip to zstd: the cache knows the result by what the layer is (its diff_id), so a
    dry run into a fresh layout names the digest the real copy wrote."""
    import gzip

    layout.write(layout.image(A, layer_type=mt.OCI_LAYER_GZIP,
                              stored_layers=gzip.compress(A, mtime=0)))
    real = _copy(layout.root, tmp_path / "out", compression="zstd")
    again = _copy(layout.root, tmp_path / "again", compression="zstd", dry_run=True)
    assert (again.digest, [b.digest for b in again.blobs]) == (
        real.digest, [b.digest for b in real.blobs])


def test_a_conversion_leaves_nothing_in_tmpdir(layout: Layout, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Converted layers are spooled in the run's own directory, removed with it."""
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)
    layout.write(layout.image(A, B))
    _copy(layout.root, tmp_path / "out", compression="zstd")
    assert list((tmp_path / "tmp").iterdir()) == []
