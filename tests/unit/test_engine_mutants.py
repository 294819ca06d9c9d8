"""The engine end to end, in process and fast: pushes and copies of small random images to
the embedded registry in a thread, checking what the registry holds (manifest and config
types, layer types, digests, blobs that decompress to the diff_ids) and what each blob
took. With the planner's rules tested with no I/O. Written against mutation testing of
src/freight/engine/ (plan, converter, mover, streaming, core)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard

import freight
from freight import mediatypes as mt
from freight.digest import Digest
from freight.engine import plan
from freight.manifest import Descriptor, Manifest
from freight.progress import Phase, Silent
from freight.results import Action, ImageResult
from freight.sources.model import Blob, ImageNode
from freight.testing import Registry, random_image, serve_in_thread

pytestmark = pytest.mark.timeout(20)  # a hang fails here (each test takes well under 1 s)


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    with serve_in_thread() as live:
        yield live


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))


def _get(registry: Registry, path: str, accept: str = "") -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    reply = httpx.get(f"{registry.url}/v2/{path}", headers=headers, timeout=10)
    reply.raise_for_status()
    return reply


def _manifest(registry: Registry, repository: str, tag: str) -> tuple[str, dict[str, Any]]:
    reply = _get(registry, f"{repository}/manifests/{tag}", ",".join(mt.ACCEPT_MANIFESTS))
    return reply.headers["Content-Type"], json.loads(reply.content)


def _diff_id(registry: Registry, repository: str, layer: dict[str, Any]) -> str:
    data = _get(registry, f"{repository}/blobs/{layer['digest']}").content
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
    assert len(data) == layer["size"]
    if layer["mediaType"].endswith("gzip"):
        data = gzip.decompress(data)
    elif layer["mediaType"].endswith("zstd"):
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _actions(result: ImageResult) -> list[Action]:
    return [blob.action for blob in result.blobs]


# --- what lands in the registry ------------------------------------------------------------


@pytest.mark.parametrize(("compression", "manifest_type", "config_type", "layer_type"), [
    ("auto", mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG, mt.DOCKER_LAYER_GZIP),
    ("gzip", mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG, mt.DOCKER_LAYER_GZIP),
    ("zstd", mt.OCI_MANIFEST, mt.OCI_CONFIG, mt.OCI_LAYER_ZSTD),
    ("none", mt.OCI_MANIFEST, mt.OCI_CONFIG, mt.OCI_LAYER),
])
def test_a_docker_archive_is_pushed_as_asked(registry: Registry, tmp_path: Path,
                                             compression: str, manifest_type: str,
                                             config_type: str, layer_type: str) -> None:
    made = random_image(tmp_path / "image.tar", layers=[12_000, 3_000, 6_000], seed=1)
    repository = f"engine/docker-{compression}"
    (result,) = freight.push(made.path, registry.reference(repository, "v1"),
                             compression=compression)
    kind, manifest = _manifest(registry, repository, "v1")
    assert kind == manifest_type == result.media_type
    assert manifest["config"]["mediaType"] == config_type
    assert manifest["config"]["digest"] == made.image.config_digest
    assert [layer["mediaType"] for layer in manifest["layers"]] == [layer_type] * 3
    assert [_diff_id(registry, repository, layer) for layer in manifest["layers"]] == \
        list(made.image.diff_ids)
    assert _actions(result) == [Action.UPLOADED] * 4  # config and three layers
    assert [str(b.digest) for b in result.blobs[1:]] == [x["digest"] for x in manifest["layers"]]
    assert [b.size for b in result.blobs[1:]] == [x["size"] for x in manifest["layers"]]
    assert str(result.digest) == _get(registry, f"{repository}/manifests/v1",
                                      manifest_type).headers["Docker-Content-Digest"]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_layers_keep_their_digests_by_default(registry: Registry, tmp_path: Path,
                                                         compression: str) -> None:
    made = random_image(tmp_path / "layout", layers=[20_000, 5_000], format="oci",
                        compression=compression, seed=2)  # type: ignore[arg-type]
    repository = f"engine/kept-{compression}"
    (result,) = freight.push(made.path, registry.reference(repository, "v1"))
    assert str(result.digest) == made.image.manifest_digest  # the manifest, byte for byte
    _, manifest = _manifest(registry, repository, "v1")
    assert [x["digest"] for x in manifest["layers"]] == [b.digest for b in made.image.layers]


def test_mixed_layers_convert_only_the_uncompressed_one(registry: Registry,
                                                        tmp_path: Path) -> None:
    made = random_image(tmp_path / "layout", layers=[20_000, 5_000], format="oci",
                        compression=["zstd", "none"], seed=3)
    (result,) = freight.push(made.path, registry.reference("engine/mixed", "v1"))
    kind, manifest = _manifest(registry, "engine/mixed", "v1")
    assert kind == mt.OCI_MANIFEST  # a zstd layer: Docker schema2 has no type for it
    assert [x["mediaType"] for x in manifest["layers"]] == [mt.OCI_LAYER_ZSTD,
                                                            mt.OCI_LAYER_GZIP]
    assert manifest["layers"][0]["digest"] == made.image.layers[0].digest
    assert [_diff_id(registry, "engine/mixed", x) for x in manifest["layers"]] == \
        list(made.image.diff_ids)
    assert result.media_type == mt.OCI_MANIFEST


def test_a_second_push_skips_and_another_repository_mounts(registry: Registry,
                                                           tmp_path: Path) -> None:
    made = random_image(tmp_path / "image.tar", layers=[8_000, 4_000], seed=4)
    (first,) = freight.push(made.path, registry.reference("engine/first", "v1"))
    (again,) = freight.push(made.path, registry.reference("engine/first", "v2"))
    assert _actions(again) == [Action.SKIPPED] * 3
    assert again.digest == first.digest
    (other,) = freight.push(made.path, registry.reference("engine/second", "v1"))
    assert _actions(other) == [Action.MOUNTED] * 3
    mounts = [r for r in registry.requests() if r["method"] == "POST"
              and "/v2/engine/second/" in r["path"]]
    assert len(mounts) == 3  # one mount each, no upload session
    assert not [r for r in registry.requests() if r["method"] in ("PATCH", "PUT")
                and "/v2/engine/second/blobs/" in r["path"]]


@pytest.mark.parametrize("jobs", [1, 4])
@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_duplicated_layer_is_converted_and_sent_once(registry: Registry, tmp_path: Path,
                                                       jobs: int, compression: str) -> None:
    """The hang of issue 10: a duplicate, then a smaller layer to compress."""
    made = random_image(tmp_path / "dup.tar", layers=[12_000, 8_000, 12_000, 2_000],
                        duplicates={2: 0}, seed=5)
    repository = f"engine/dup-{jobs}-{compression}"
    (result,) = freight.push(made.path, registry.reference(repository, "v1"),
                             compression=compression, jobs=jobs)
    _, manifest = _manifest(registry, repository, "v1")
    digests = [x["digest"] for x in manifest["layers"]]
    assert len(digests) == 4 and digests[0] == digests[2] and len(set(digests)) == 3
    assert [_diff_id(registry, repository, x) for x in manifest["layers"]] == \
        list(made.image.diff_ids)
    uploads = [r for r in registry.requests() if r["method"] == "POST"
               and f"/v2/{repository}/blobs/uploads" in r["path"]]
    assert len(uploads) == 4  # config and three distinct layers
    assert [str(b.digest) for b in result.blobs[1:]] == digests


def test_a_streamed_push_lands_the_same_blobs(registry: Registry, tmp_path: Path) -> None:
    made = random_image(tmp_path / "image.tar", layers=[12_000, 3_000], seed=6)
    (plain,) = freight.push(made.path, registry.reference("engine/plain", "v1"),
                            compression="zstd", stream=False)
    with serve_in_thread() as other:
        (streamed,) = freight.push(made.path, other.reference("engine/streamed", "v1"),
                                   compression="zstd", stream=True)
        assert streamed.digest == plain.digest  # the same conversion, bytes and manifest
        assert _actions(streamed) == [Action.UPLOADED] * 3
        _, manifest = _manifest(other, "engine/streamed", "v1")
        assert [_diff_id(other, "engine/streamed", x) for x in manifest["layers"]] == \
            list(made.image.diff_ids)
        patches = [r for r in other.requests() if r["method"] == "PATCH"]
        assert len(patches) == 2  # each converted layer went up as it was compressed


class Recorded(Silent):
    """What the engine reported: rows started (key, phase) and bytes advanced per row."""

    def __init__(self) -> None:
        self.started: list[tuple[str, Phase]] = []
        self.advanced: dict[str, int] = {}

    def blob_start(self, key: str, label: str, total: int, phase: Phase) -> None:
        self.started.append((key, phase))

    def blob_advance(self, key: str, n: int) -> None:
        self.advanced[key] = self.advanced.get(key, 0) + n


def test_a_second_push_remembers_the_conversion_and_converts_nothing(
        registry: Registry, tmp_path: Path) -> None:
    made = random_image(tmp_path / "image.tar", layers=[9_000, 4_000], seed=9)
    first, second = Recorded(), Recorded()
    freight.push(made.path, registry.reference("engine/remembered", "v1"), progress=first)
    assert [p for _, p in first.started].count(Phase.COMPRESS) == 2
    (again,) = freight.push(made.path, registry.reference("engine/remembered", "v2"),
                            progress=second)
    assert Phase.COMPRESS not in [p for _, p in second.started]  # the cache knew the result
    assert _actions(again) == [Action.SKIPPED] * 3


def test_streamed_bytes_are_sent_and_reported_once(tmp_path: Path) -> None:
    made = random_image(tmp_path / "image.tar", layers=[12_000, 3_000], seed=10)
    told = Recorded()
    with serve_in_thread() as other:
        (result,) = freight.push(made.path, other.reference("engine/once", "v1"),
                                 compression="gzip", stream=True, progress=told)
        layers = result.blobs[1:]
        sent = [r for r in other.requests() if r["method"] in ("PATCH", "PUT")
                and "/blobs/uploads/" in r["path"]]
        assert not [r for r in other.requests() if r["method"] == "DELETE"]  # no stream lost
    config_size = result.blobs[0].size
    assert sum(r["bytes_in"] for r in sent) == config_size + sum(b.size for b in layers)
    uploads = [key for key, phase in told.started if phase == Phase.UPLOAD]
    assert sorted(told.advanced[key] for key in uploads) == sorted(
        b.size for b in result.blobs)


def test_a_copy_to_a_layout_keeps_every_digest(registry: Registry, tmp_path: Path) -> None:
    made = random_image(tmp_path / "layout", layers=[9_000, 3_000], format="oci",
                        compression="gzip", seed=7)
    freight.push(made.path, registry.reference("engine/copied", "v1"))
    (result,) = freight.copy(registry.reference("engine/copied", "v1"),
                             f"oci:{tmp_path / 'out'}:v1")
    assert str(result.digest) == made.image.manifest_digest
    assert _actions(result) == [Action.DOWNLOADED] * 3
    for layer in made.image.layers:
        algorithm, encoded = layer.digest.split(":")
        stored = tmp_path / "out" / "blobs" / algorithm / encoded
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == encoded
    (again,) = freight.copy(f"oci:{tmp_path / 'layout'}", f"oci:{tmp_path / 'out'}:v2")
    assert _actions(again) == [Action.SKIPPED] * 3


def test_a_dry_run_plans_and_sends_nothing(registry: Registry, tmp_path: Path) -> None:
    made = random_image(tmp_path / "image.tar", layers=[5_000], seed=8)
    before = len(registry.requests())
    (result,) = freight.push(made.path, registry.reference("engine/dry", "v1"), dry_run=True)
    assert _actions(result) == [Action.PLANNED] * 2
    assert not [r for r in registry.requests()[before:] if r["method"] in ("POST", "PUT",
                                                                           "PATCH")]
    freight.push(made.path, registry.reference("engine/dry-first", "v1"))
    before = len(registry.requests())
    (again,) = freight.push(made.path, registry.reference("engine/dry-other", "v1"),
                            dry_run=True)
    assert _actions(again) == [Action.MOUNTED] * 2  # as the real push will: from dry-first
    assert not [r for r in registry.requests()[before:] if r["method"] in ("POST", "PUT",
                                                                           "PATCH")]
    (real,) = freight.push(made.path, registry.reference("engine/dry-other", "v1"))
    assert _actions(real) == [Action.MOUNTED] * 2


# --- the planner, no I/O --------------------------------------------------------------------


def _blob(media_type: str, size: int, seed: str) -> Blob:
    layer = mt.layer_compression(media_type) is not None
    return Blob(media_type, size, lambda: io.BytesIO(b""), digest=Digest.of(seed.encode()),
                diff_id=Digest.of(b"diff " + seed.encode()) if layer else None)


CONFIG = _blob(mt.DOCKER_CONFIG, 100, "config")


def _node(*layers: Blob, manifest_type: str | None = None, config: Blob = CONFIG) -> ImageNode:
    manifest = None
    if manifest_type is not None:
        assert config.digest is not None
        manifest = Manifest(b"{}", manifest_type,
                            Descriptor(config.media_type, config.digest, config.size),
                            tuple(Descriptor(b.media_type, b.digest, b.size)
                                  for b in layers if b.digest is not None))
    return ImageNode(config, layers, manifest)


def test_the_plan_keeps_a_manifest_when_nothing_changes() -> None:
    layers = (_blob(mt.OCI_LAYER_GZIP, 10, "a"), _blob(mt.OCI_LAYER_ZSTD, 20, "b"))
    step = plan.plan_image(_node(*layers, manifest_type=mt.OCI_MANIFEST), "auto")
    assert step.kind is None and step.config_type == mt.DOCKER_CONFIG
    assert [(s.target, s.media_type) for s in step.layers] == [
        (None, mt.OCI_LAYER_GZIP), (None, mt.OCI_LAYER_ZSTD)]


def test_the_plan_rebuilds_a_manifest_whose_layers_are_out_of_order() -> None:
    a, b = _blob(mt.DOCKER_LAYER_GZIP, 10, "a"), _blob(mt.DOCKER_LAYER_GZIP, 20, "b")
    node = _node(a, b, manifest_type=mt.DOCKER_MANIFEST)
    shuffled = ImageNode(node.config, (b, a), node.manifest)
    assert plan.manifest_kind(shuffled, [None, None]) == mt.DOCKER_MANIFEST
    assert plan.manifest_kind(node, [None, None]) is None


@pytest.mark.parametrize(("setting", "kind", "config_type", "layer_type"), [
    ("auto", mt.DOCKER_MANIFEST, mt.DOCKER_CONFIG, mt.DOCKER_LAYER_GZIP),
    ("zstd", mt.OCI_MANIFEST, mt.OCI_CONFIG, mt.OCI_LAYER_ZSTD),
    ("none", mt.OCI_MANIFEST, mt.OCI_CONFIG, mt.OCI_LAYER),
])
def test_the_plan_for_an_uncompressed_docker_image(setting: str, kind: str, config_type: str,
                                                   layer_type: str) -> None:
    layer = _blob(mt.DOCKER_LAYER, 10, "a")
    step = plan.plan_image(_node(layer), setting)
    assert (step.kind, step.config_type) == (kind, config_type)
    assert [s.media_type for s in step.layers] == [layer_type]
    assert step.layers[0].target == (None if setting == "none" else
                                     {"auto": mt.GZIP, "zstd": mt.ZSTD}[setting])


def test_an_oci_source_pushed_gzip_stays_oci() -> None:
    layer = _blob(mt.OCI_LAYER, 10, "a")
    oci_config = _blob(mt.OCI_CONFIG, 10, "oci config")
    step = plan.plan_image(_node(layer, manifest_type=mt.OCI_MANIFEST, config=oci_config),
                           "gzip")
    assert (step.kind, step.config_type) == (mt.OCI_MANIFEST, mt.OCI_CONFIG)
    assert [s.media_type for s in step.layers] == [mt.OCI_LAYER_GZIP]


def test_a_config_of_another_type_is_left_alone() -> None:
    odd = _blob("application/vnd.example.config+json", 10, "odd")
    step = plan.plan_image(_node(_blob(mt.OCI_LAYER, 10, "a"), config=odd), "gzip")
    assert step.config_type == odd.media_type


def test_a_non_layer_blob_keeps_its_type_and_makes_the_manifest_oci() -> None:
    odd = _blob("application/vnd.example.data", 10, "data")
    step = plan.plan_image(_node(odd, _blob(mt.DOCKER_LAYER, 5, "b")), "gzip")
    assert step.kind == mt.OCI_MANIFEST  # schema2 has no place for it
    assert [(s.target, s.media_type) for s in step.layers] == [
        (None, "application/vnd.example.data"), (mt.GZIP, mt.OCI_LAYER_GZIP)]


def test_conversions_run_once_each_biggest_first_image_by_image() -> None:
    small, big, mid = (_blob(mt.DOCKER_LAYER, n, s) for n, s in
                       [(10, "small"), (30, "big"), (20, "mid")])
    kept = _blob(mt.DOCKER_LAYER_GZIP, 99, "kept")
    one = plan.plan_image(_node(small, big, kept, small), "gzip")
    other = plan.plan_image(_node(mid, big), "gzip")
    order = plan.conversion_order([one, other])
    assert [s.blob.size for s in order] == [30, 10, 20]  # big once; kept is not converted
    assert all(s.memo is not None for s in order)
    assert plan.memo_key(small, mt.GZIP) == (small.diff_id, mt.GZIP)


def test_memo_falls_back_to_digest_then_the_blob_itself() -> None:
    no_diff = Blob(mt.DOCKER_LAYER, 1, lambda: io.BytesIO(b""), digest=Digest.of(b"x"))
    bare = Blob(mt.DOCKER_LAYER, 1, lambda: io.BytesIO(b""))
    assert plan.memo_key(no_diff, mt.ZSTD) == (no_diff.digest, mt.ZSTD)
    assert plan.memo_key(bare, mt.ZSTD) == (bare, mt.ZSTD)
    assert plan.LayerStep(bare, None, bare.media_type).memo is None


def test_distinct_blobs_in_first_seen_order() -> None:
    a, b = _blob(mt.DOCKER_LAYER, 1, "a"), _blob(mt.DOCKER_LAYER, 2, "b")
    steps = [plan.plan_image(_node(a, b, a), "keep"), plan.plan_image(_node(b), "keep")]
    assert plan.distinct_blobs(steps) == [CONFIG, a, b]
    bare = Blob(mt.DOCKER_LAYER, 1, lambda: io.BytesIO(b""))
    assert plan.blob_key(bare) is bare and plan.blob_key(a) == a.digest


def test_two_images_never_get_one_name(registry: Registry, tmp_path: Path) -> None:
    """Two images whose tags meet in one repository (`a/app:1` and `b/app:1` pushed into
    REGISTRY/repo) would leave only the second: refused before anything is sent. The same
    image twice, or images keeping their own names, are fine."""
    two = random_image(tmp_path / "two.tar", layers=1, seed=31, images=2)
    with pytest.raises(freight.UsageError, match="would both be written as"):
        freight.push(two.path, f"{registry.host}/clash/repo")
    reply = httpx.get(f"{registry.url}/v2/clash/repo/tags/list", timeout=10)
    assert reply.status_code == 404  # nothing was sent, not even a blob under that name
    # another archive with a different image under one of the same names
    other = random_image(tmp_path / "other.tar", layers=1, seed=32, tags=["random/image-1:1"])
    with pytest.raises(freight.UsageError, match="random/image-1:1 would both be written"):
        freight.transfer([str(two.path), str(other.path)], registry.host)
    assert len(freight.push(two.path, registry.host)) == 2  # each its own repository
    again = freight.transfer([str(other.path), str(other.path)], f"{registry.host}/same/one")
    assert {r.digest for r in again} == {again[0].digest}  # one image twice: one name, fine
