"""freight pull and copy end to end against embedded registries (real HTTP on loopback)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import freight
from freight import mediatypes as mt
from freight.cli import main
from freight.errors import EXIT_REGISTRY
from freight.testing import ImageSpec, config_for, layer_tar, write_images
from freight.testing import sha256 as sha
from support.samples import sample_layers


@pytest.fixture
def pushed(served: str, tmp_path: Path) -> str:
    a, b = sample_layers()
    archive = write_images(tmp_path / "app.tar", [ImageSpec([a, b], ["x:1"])]).path
    freight.push(str(archive), f"{served}/team/app:1")
    return f"{served}/team/app:1"


def test_pull_tar_is_docker_loadable_layout_and_round_trips(
        served: str, pushed: str, tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    (pulled,) = freight.pull(pushed, str(out))
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= names
    assert manifest[0]["RepoTags"] == [pushed]
    assert all(p in names for p in [manifest[0]["Config"], *manifest[0]["Layers"]])
    (again,) = freight.push(str(out), f"{served}/elsewhere/app:1")
    assert again.digest == pulled.digest  # push → pull → push keeps every digest


def test_pull_into_existing_layout_fetches_only_missing(pushed: str, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    first = freight.pull(pushed, str(layout), format="oci")
    second = freight.pull(pushed, str(layout), format="oci")
    assert {b.action for b in first[0].blobs} == {"downloaded"}
    assert {b.action for b in second[0].blobs} == {"skipped"}
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 1  # pulling again does not duplicate the entry


def test_bundle_round_trip(served: str, serve_registry: Callable[[], str],
                           tmp_path: Path) -> None:
    a, b = sample_layers()
    archive = write_images(tmp_path / "m.tar", [
        ImageSpec([a], ["one:1"]), ImageSpec([a, b], ["two:1"]), ImageSpec([b], ["team/three:x"])
    ]).path
    pushed = freight.push(str(archive), served)
    bundle = tmp_path / "bundle.tar"
    freight.pull([str(r.reference) for r in pushed], str(bundle))
    other = serve_registry()
    restored = freight.push(str(bundle), other)
    assert sorted((str(r.reference).split("/", 1)[1], r.digest) for r in restored) == sorted(
        (str(r.reference).split("/", 1)[1], r.digest) for r in pushed)


def test_copy_between_registries_and_mount_within_one(
        pushed: str, served: str, serve_registry: Callable[[], str]) -> None:
    other = serve_registry()
    (copied,) = freight.copy(pushed, f"{other}/mirror/app:1")
    assert copied.digest == freight.Digest.of(httpx.get(
        f"http://{other}/v2/mirror/app/manifests/1",
        headers={"Accept": ", ".join(mt.ACCEPT_MANIFESTS)}).content)
    (local,) = freight.copy(pushed, f"{served}/copied/app:2")
    assert {b.action for b in local.blobs} == {"mounted"}
    assert local.digest == copied.digest


def _push_index(host: str) -> str:
    """A two-platform OCI index pushed with raw HTTP; returns its digest."""
    client = httpx.Client(base_url=f"http://{host}")
    children = []
    for arch in ("amd64", "arm64"):
        layer = layer_tar({f"arch-{arch}": arch.encode()})
        raw_config = config_for(ImageSpec([layer], architecture=arch, cmd=["/bin/hello"]))
        for blob in (layer, raw_config):
            loc = client.post("/v2/multi/app/blobs/uploads/").headers["location"]
            assert client.put(loc, params={"digest": sha(blob)}, content=blob).status_code == 201
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(raw_config),
                       "size": len(raw_config)},
            "layers": [{"mediaType": mt.OCI_LAYER, "digest": sha(layer), "size": len(layer)}],
        }).encode()
        client.put(f"/v2/multi/app/manifests/{sha(manifest)}", content=manifest,
                   headers={"Content-Type": mt.OCI_MANIFEST})
        children.append({"mediaType": mt.OCI_MANIFEST, "digest": sha(manifest),
                         "size": len(manifest), "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                        "manifests": children}).encode()
    reply = client.put("/v2/multi/app/manifests/v1", content=index,
                       headers={"Content-Type": mt.OCI_INDEX})
    assert reply.status_code == 201, reply.text
    return sha(index)


def test_index_one_platform_all_platforms_and_whole_copy(
        served: str, serve_registry: Callable[[], str], tmp_path: Path) -> None:
    index_digest = _push_index(served)
    (one,) = freight.pull(f"{served}/multi/app:v1", str(tmp_path / "arm.tar"),
                          platform="linux/arm64")
    assert one.media_type == mt.OCI_MANIFEST
    (whole,) = freight.pull(f"{served}/multi/app:v1", str(tmp_path / "all"), format="oci",
                            all_platforms=True)
    assert str(whole.digest) == index_digest
    other = serve_registry()
    (copied,) = freight.copy(f"{served}/multi/app:v1", f"{other}/multi/app:v1")
    assert str(copied.digest) == index_digest
    with pytest.raises(freight.UsageError):
        freight.pull(f"{served}/multi/app:v1", str(tmp_path / "x.tar"), all_platforms=True)


def test_corrupt_blob_is_rejected_and_nothing_written(
        served: str, pushed: str, tmp_path: Path) -> None:
    root = next(p for p in tmp_path.iterdir() if p.name.startswith("registry-"))
    biggest = max((p for p in (root / "blobs").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size)
    biggest.write_bytes(b"\0" * biggest.stat().st_size)
    out = tmp_path / "out.tar"
    run = CliRunner().invoke(main, ["pull", pushed, str(out)])
    assert run.exit_code == EXIT_REGISTRY, run.output  # the registry's fault, not the input's
    assert "do not match" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tar")] == []


def test_layouts_and_oci_archives_push_whole_or_one_platform(
        served: str, serve_registry: Callable[[], str], tmp_path: Path) -> None:
    index_digest = _push_index(served)
    layout = tmp_path / "layout"
    freight.pull(f"{served}/multi/app:v1", str(layout), format="oci", all_platforms=True)
    other = serve_registry()
    (whole,) = freight.push(layout, f"{other}/copy/app:v1", compression="keep")
    assert str(whole.digest) == index_digest  # an index pushed whole, bytes unchanged
    (gzipped,) = freight.push(layout, f"{other}/copy/app:gz")  # children rebuilt, gzip layers
    index = httpx.get(f"http://{other}/v2/copy/app/manifests/gz",
                      headers={"Accept": mt.OCI_INDEX}).json()
    assert gzipped.media_type == mt.OCI_INDEX and len(index["manifests"]) == 2
    assert {b.media_type for b in gzipped.blobs if "layer" in b.media_type} == {
        mt.OCI_LAYER_GZIP}
    oci_archive = tmp_path / "layout.tar"
    with tarfile.open(oci_archive, "w") as tar:  # an OCI archive: a tar of a layout
        for item in sorted(layout.rglob("*")):
            tar.add(item, arcname=str(item.relative_to(layout)), recursive=False)
    (arm,) = freight.push(oci_archive, f"{other}/copy/app:arm", platform="linux/arm64")
    assert arm.media_type == mt.OCI_MANIFEST
    config = httpx.get(f"http://{other}/v2/copy/app/blobs/{arm.blobs[0].digest}").json()
    assert config["architecture"] == "arm64"
