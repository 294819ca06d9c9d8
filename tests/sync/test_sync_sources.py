"""Sync sources beyond registries and OCI layouts: legacy `docker save` archives (dockerd
20.10's `<id>/layer.tar` + manifest.json, no index.json), and a subset of the platforms
of a multi-platform index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from freight.sync import run as sync_run
from freight.sync.config import parse
from freight.sync.gap import write_bundle
from freight.testing import ImageSpec, layer_tar, write_images
from support.docker import DockerEngine
from support.images import TestImages
from support.kinds import both_kinds
from support.proxy import RegistryProxy
from support.synthreg import OCI_INDEX, push_image, push_manifest, state

pytestmark = pytest.mark.integration
ACCEPT = "application/vnd.oci.image.manifest.v1+json, " + OCI_INDEX
ARCHES = ("amd64", "arm64", "s390x")


def _blob_requests(proxy: RegistryProxy) -> int:
    return sum(n for (_, kind), n in proxy.counts().items()
               if kind in ("blob", "upload", "mount"))


def _three_platforms(client, repo: str, tag: str) -> dict[str, str]:
    """An index of amd64, arm64 and s390x images; returns arch -> child digest."""
    children = {arch: push_image(client, repo, None, ["base", f"{tag}-{arch}"], arch=arch)
                for arch in ARCHES}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": c.media_type, "digest": c.digest, "size": c.size,
         "platform": {"os": "linux", "architecture": arch}}
        for arch, c in children.items()]}).encode()
    push_manifest(client, repo, tag, index, OCI_INDEX)
    return {arch: c.digest for arch, c in children.items()}


@both_kinds
def test_several_platforms_copy_that_subset(make_registry, http) -> None:
    a, b = make_registry(), make_registry()
    children = _three_platforms(http(a), "multi", "v1")
    config = parse({"destination": b, "sync": [
        {"source": f"{a}/multi", "platforms": ["linux/amd64", "linux/arm64"]},
        {"source": f"{a}/multi", "destination": "one", "platform": "linux/s390x"}]})
    report = sync_run.sync(config)
    assert report.failed == 0, report.to_json()
    dst = http(b)
    got = dst.get("/v2/multi/manifests/v1", headers={"Accept": ACCEPT}).json()
    assert [m["digest"] for m in got["manifests"]] == [children["amd64"], children["arm64"]]
    assert [m["platform"]["architecture"] for m in got["manifests"]] == ["amd64", "arm64"]
    assert dst.head(f"/v2/multi/manifests/{children['s390x']}",
                    headers={"Accept": ACCEPT}).status_code == 404
    assert state(dst, "one") == {"v1": children["s390x"]}  # one platform: the image itself

    proxy = RegistryProxy(b).start()
    try:
        again = sync_run.sync(parse({"destination": proxy.host, "sync": [
            {"source": f"{a}/multi", "platforms": ["linux/amd64", "linux/arm64"]}]}))
        assert again.count("unchanged") == 1, again.to_json()  # the subset is built the same
        assert _blob_requests(proxy) == 0
        assert not [e for e in proxy.exchanges if e.method in ("PUT", "POST", "PATCH")]
    finally:
        proxy.stop()


def test_no_matching_platform_is_a_failed_image(registry_factory, http) -> None:
    a, b = registry_factory(name="a").host, registry_factory(name="b").host
    _three_platforms(http(a), "multi", "v1")
    report = sync_run.sync(parse({"destination": b, "sync": [
        {"source": f"{a}/multi", "platforms": ["linux/riscv64", "windows/amd64"]}]}))
    assert report.failed == 1
    assert "has no image for linux/riscv64, windows/amd64" in str(report.outcomes[0].error)


def _legacy(tmp_path: Path) -> tuple[Path, list[object]]:
    base = layer_tar({"base.txt": b"base" * 500})
    specs = [ImageSpec([base, layer_tar({"one.txt": b"one"})], ["team/one:1", "team/one:latest"]),
             ImageSpec([base, layer_tar({"two.txt": b"two"})], ["team/two:1"])]
    written = write_images(tmp_path / "save.tar", specs, format="docker")
    return written.path, list(written.images)


def test_a_legacy_docker_save_is_a_sync_source(registry_factory, http, tmp_path: Path) -> None:
    archive, images = _legacy(tmp_path)
    b = registry_factory(name="b").host
    proxy = RegistryProxy(b).start()
    try:
        config = parse({"destination": {"registry": proxy.host, "prefix": "mirror/"},
                        "sync": [{"layout": str(archive), "repositories": ["^team/"]}]})
        report = sync_run.sync(config)
        assert report.failed == 0 and report.count("copied") == 3, report.to_json()
        dst = http(b)
        for repo, tags, image in (("mirror/team/one", ["1", "latest"], images[0]),
                                  ("mirror/team/two", ["1"], images[1])):
            assert sorted(state(dst, repo)) == tags
            manifest = dst.get(f"/v2/{repo}/manifests/1", headers={"Accept": ACCEPT}).json()
            assert manifest["config"]["digest"] == image.config_digest  # the image ID
            assert [d["digest"] for d in manifest["layers"]] == list(image.diff_ids)
        uploads = [e for e in proxy.exchanges if e.kind == "upload" and e.method == "PUT"]
        assert len(uploads) == 5  # two configs, two top layers, the base once
        mounts = [e for e in proxy.exchanges if e.kind == "mount" and e.status == 201]
        assert len(mounts) == 1  # the base, from the repository that got it first

        proxy.reset()
        again = sync_run.sync(config)
        assert again.count("unchanged") == 3, again.to_json()
        assert _blob_requests(proxy) == 0
    finally:
        proxy.stop()

    bundle = tmp_path / "bundle.tar"
    done = write_bundle(parse({"sync": [{"layout": str(archive)}]}), str(bundle))
    assert done.failed == 0, done.to_json()


def test_dockerd_save_synced_then_pulled_and_run(registry, http, docker: DockerEngine,
                                                 docker_puller: DockerEngine,
                                                 images: TestImages, tmp_path: Path) -> None:
    archive = tmp_path / "save.tar"
    docker.run("save", "-o", str(archive), images.one.reference, images.two.reference)
    report = sync_run.sync(parse({"destination": {"registry": registry.host,
                                                  "prefix": "air/"},
                                  "sync": [{"layout": str(archive)}]}))
    assert report.failed == 0 and report.count("copied") == 2, report.to_json()
    for image in (images.one, images.two):
        ref = f"{registry.host}/air/{image.repository}:{image.tag}"  # freight-test/one
        docker_puller.run("pull", ref)
        assert docker_puller.image_id(ref) == image.image_id
        assert docker_puller.run_image(ref).strip() == image.output.strip()
        docker_puller.remove_images(ref)
