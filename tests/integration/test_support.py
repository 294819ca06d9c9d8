"""The test infrastructure itself, checked with real clients (docker, httpx), no freight.

If these fail, push test failures mean nothing: fix the fixtures first.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from support import archives, badarchives
from support.docker import DockerEngine
from support.faults import BodyLimit, CutAfter, FailTimes
from support.images import TestImages
from support.proxy import RegistryProxy
from support.registry import Registry
from support.registry_api import tags
from support.verify import sha256, sniff, verify_image

pytestmark = pytest.mark.integration


def test_symlink_archive_has_a_symlinked_layer_tar(symlink_archive: Path) -> None:
    links = archives.symlinked_members(symlink_archive)
    entry = archives.docker_manifest(symlink_archive)[0]
    assert len(entry["Layers"]) == 4
    linked = [name for name in entry["Layers"] if name in links]
    assert len(linked) == 1
    assert links[linked[0]].startswith("../") and links[linked[0]].endswith("/layer.tar")


def test_multi_archive_has_three_images_four_tags(multi_archive: Path) -> None:
    entries = archives.docker_manifest(multi_archive)
    tag_sets = sorted(sorted(entry["RepoTags"]) for entry in entries)
    assert tag_sets == [
        ["freight-test/app:1"],
        ["freight-test/one:1", "freight-test/one:latest"],
        ["freight-test/two:1"],
    ]
    bases = {entry["Layers"][0] for entry in entries}
    assert len(bases) == 1, "the base layer is shared, stored once"


def test_untagged_archive_has_no_repotags(untagged_archive: Path) -> None:
    assert not archives.docker_manifest(untagged_archive)[0].get("RepoTags")


@pytest.mark.parametrize(("fixture", "layer_kind"), [
    ("oci_archive_from_ctr", "tar"),
    ("ctr_gzip_archive", "gzip"),
])  # fmt: skip
def test_ctr_export_is_an_oci_layout_with_manifest_json(
    request: pytest.FixtureRequest, fixture: str, layer_kind: str
) -> None:
    archive: Path = request.getfixturevalue(fixture)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"oci-layout", "index.json", "manifest.json"} <= names
    index = json.loads(archives.read_member(archive, "index.json"))
    manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(archives.read_member(archive, manifest_name))
    for layer in manifest["layers"]:
        data = archives.read_member(archive, "blobs/sha256/" + layer["digest"].split(":")[1])
        assert sniff(data) == layer_kind


@pytest.mark.parametrize("fixture", ["docker25_archive", "docker25_shuffled_archive"])
def test_docker25_layout_is_consistent(request: pytest.FixtureRequest, fixture: str) -> None:
    """Every blob hashes to its name; manifest.json and the config agree on layer order."""
    archive: Path = request.getfixturevalue(fixture)
    with tarfile.open(archive) as tar:
        blob_names = [n for n in tar.getnames() if n.startswith("blobs/sha256/") and n[13:]]
    for name in blob_names:
        assert sha256(archives.read_member(archive, name)) == "sha256:" + name[13:]
    entry = archives.docker_manifest(archive)[0]
    config = json.loads(archives.read_member(archive, entry["Config"]))
    in_order = ["sha256:" + name.rsplit("/", 1)[1] for name in entry["Layers"]]
    assert in_order == config["rootfs"]["diff_ids"]
    index = json.loads(archives.read_member(archive, "index.json"))
    oci = json.loads(archives.read_member(archive, "blobs/sha256/"
                                          + index["manifests"][0]["digest"][7:]))  # fmt: skip
    oci_order = [layer["digest"] for layer in oci["layers"]]
    assert (oci_order == in_order) == (fixture == "docker25_archive")


@pytest.mark.parametrize("kind", badarchives.BAD_KINDS)
def test_bad_archives_differ_from_the_good_one(
    bad_archive: Callable[[str], Path], legacy_archive: Path, kind: str
) -> None:
    assert bad_archive(kind).read_bytes() != legacy_archive.read_bytes()


def test_docker_push_and_pull_round_trip(
    docker: DockerEngine, docker_puller: DockerEngine, images: TestImages, registry: Registry
) -> None:
    """The verification path used by push tests works for an image docker itself pushed."""
    target = f"{registry.host}/support/app:docker"
    docker.run("tag", images.app.reference, target)
    docker.run("push", target)
    verify_image(registry, "support/app", "docker", image_id=images.app.image_id,
                 compression="gzip")  # fmt: skip
    docker_puller.run("pull", target)
    try:
        assert docker_puller.image_id(target) == images.app.image_id
        assert docker_puller.run_image(target).strip() == images.app.output
    finally:
        docker_puller.remove_images(target)


def test_proxy_sees_no_blob_upload_on_second_docker_push(
    docker: DockerEngine,
    images: TestImages,
    fresh_registry: Registry,
    proxy_for: Callable[[Registry], RegistryProxy],
) -> None:
    proxy = proxy_for(fresh_registry)
    target = f"{proxy.host}/support/dup:1"
    docker.run("tag", images.dup.reference, target)
    docker.run("push", target)
    assert proxy.blob_writes(), "the first push must upload through the proxy"
    assert tags(fresh_registry, "support/dup") == ["1"]
    proxy.reset()
    docker.run("push", target)
    assert proxy.blob_writes() == []
    assert proxy.counts()[("PUT", "manifest")] == 1


def test_proxy_rewrites_location_and_limits_bodies(
    fresh_registry: Registry, proxy_for: Callable[[Registry], RegistryProxy]
) -> None:
    proxy = proxy_for(fresh_registry)
    limit = BodyLimit(1024)
    proxy.faults.append(limit)
    with httpx.Client(base_url=f"http://{proxy.host}") as client:
        started = client.post("/v2/support/limit/blobs/uploads/")
        assert started.status_code == 202
        location = started.headers["Location"]
        assert location.startswith(f"http://{proxy.host}/v2/support/limit/blobs/uploads/")
        too_big = client.patch(location, content=b"x" * 4096)
        assert too_big.status_code == 413
        streamed = client.patch(location, content=iter([b"x" * 600, b"x" * 600]))
        assert streamed.status_code == 413
        # the streamed 413 left a half-fed session upstream: start a new one
        location = client.post("/v2/support/limit/blobs/uploads/").headers["Location"]
        small = client.patch(location, content=b"x" * 100)
        assert small.status_code == 202, small.text
    assert limit.rejected == 2
    assert proxy.counts()[("PATCH", "upload")] == 3


def test_proxy_fails_requests_on_demand_then_recovers(
    registry: Registry, proxy_for: Callable[[Registry], RegistryProxy]
) -> None:
    proxy = proxy_for(registry)
    proxy.faults.append(FailTimes(429, times=2, match=lambda r: r.kind == "base", retry_after=1))
    with httpx.Client(base_url=f"http://{proxy.host}") as client:
        statuses = [client.get("/v2/") for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["Retry-After"] == "1"


def test_proxy_cuts_a_body_mid_stream(
    fresh_registry: Registry, proxy_for: Callable[[Registry], RegistryProxy]
) -> None:
    proxy = proxy_for(fresh_registry)
    proxy.faults.append(CutAfter(100_000, times=1, match=lambda r: r.method == "PATCH"))
    with httpx.Client(base_url=f"http://{proxy.host}") as client:
        location = client.post("/v2/support/cut/blobs/uploads/").headers["Location"]
        with pytest.raises(httpx.TransportError):
            client.patch(location, content=b"x" * 300_000)
        location = client.post("/v2/support/cut/blobs/uploads/").headers["Location"]
        assert client.patch(location, content=b"x" * 300_000).status_code == 202
    cut = [e for e in proxy.exchanges if e.method == "PATCH" and e.status == 0]
    assert len(cut) == 1 and cut[0].request_bytes <= 100_000


def test_htpasswd_registry_requires_credentials(
    registry_factory: Callable[..., Registry],
) -> None:
    secured = registry_factory(users={"alice": "s3cret"}, name="htpasswd")
    assert httpx.get(f"{secured.url}/v2/").status_code == 401
    with secured.client() as client:
        assert client.get("/v2/").status_code == 200
    assert httpx.get(f"{secured.url}/v2/", auth=("alice", "wrong")).status_code == 401
