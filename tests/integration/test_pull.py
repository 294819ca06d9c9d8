"""Acceptance tests for ``freight pull`` and ``freight copy`` against real components.

Images pushed by a real docker engine and by freight are pulled with freight, loaded into a
clean docker engine and run; bundles restore on another registry tag for tag; copies keep
every digest and mount within a registry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import freight
from support.docker import DockerEngine
from support.images import TestImage, TestImages
from support.registry import Registry
from support.registry_api import manifest

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "freight-cache"))


def docker_push(docker: DockerEngine, image: TestImage, registry: Registry, repo: str) -> str:
    target = f"{registry.host}/{repo}:{image.tag}"
    docker.run("tag", image.reference, target)
    docker.run("push", target)
    return target


def load_and_check(puller: DockerEngine, tar: Path, expected: dict[str, TestImage]) -> None:
    """`docker load` the tar into a clean engine; each reference has the right ID and output."""
    puller.run("load", "-i", str(tar))
    try:
        for reference, image in expected.items():
            assert puller.image_id(reference) == image.image_id
            assert puller.run_image(reference).strip() == image.output
    finally:
        puller.remove_images(*expected)


def test_pull_what_docker_pushed(docker: DockerEngine, docker_puller: DockerEngine,
                                 images: TestImages, registry: Registry, tmp_path: Path) -> None:
    ref = docker_push(docker, images.app, registry, "pulltest/docker-app")
    out = tmp_path / "app.tar"
    (result,) = freight.pull(ref, str(out))
    assert str(result.digest) == manifest(registry, "pulltest/docker-app", images.app.tag).digest
    load_and_check(docker_puller, out, {ref: images.app})


def test_pull_what_freight_pushed(docker_puller: DockerEngine, images: TestImages,
                                  registry: Registry, legacy_archive: Path,
                                  tmp_path: Path) -> None:
    (pushed,) = freight.push(legacy_archive, f"{registry.host}/pulltest/freight-app:1")
    out = tmp_path / "app.tar"
    (pulled,) = freight.pull(str(pushed.reference), str(out))
    assert pulled.digest == pushed.digest
    load_and_check(docker_puller, out, {str(pushed.reference): images.app})


def test_bundle_of_three_round_trips(docker: DockerEngine, docker_puller: DockerEngine,
                                     images: TestImages, registry: Registry,
                                     fresh_registry: Registry, tmp_path: Path) -> None:
    trio = [images.one, images.two, images.three]
    refs = [docker_push(docker, image, registry, f"bundle/{image.repository.split('/')[-1]}")
            for image in trio]
    bundle = tmp_path / "bundle.tar"
    pulled = freight.pull(refs, str(bundle))
    load_and_check(docker_puller, bundle, dict(zip(refs, trio, strict=True)))
    restored = freight.push(bundle, fresh_registry.host)
    assert sorted((str(r.reference).split("/", 1)[1], r.digest) for r in restored) == sorted(
        (str(r.reference).split("/", 1)[1], r.digest) for r in pulled)


def test_copy_between_registries_and_within_one(docker: DockerEngine, images: TestImages,
                                                registry: Registry, fresh_registry: Registry,
                                                serve_registry: Callable[[], str]) -> None:
    ref = docker_push(docker, images.app, registry, "copytest/app")
    (across,) = freight.copy(ref, f"{fresh_registry.host}/mirror/app:1")
    original = manifest(registry, "copytest/app", images.app.tag).digest
    assert str(across.digest) == original
    assert {b.action for b in across.blobs} == {"uploaded"}
    (within,) = freight.copy(ref, f"{registry.host}/copytest/other:1")
    assert {b.action for b in within.blobs} == {"mounted"}
    embedded = serve_registry()
    (to_serve,) = freight.copy(ref, f"{embedded}/mirror/app:1")
    assert str(to_serve.digest) == original


@pytest.mark.parametrize("via", ["oci", "oci-archive", "registry"])
def test_copy_through_every_kind_into_a_docker_archive_loads_and_runs(
        docker_puller: DockerEngine, images: TestImages, registry: Registry,
        symlink_archive: Path, tmp_path: Path, via: str) -> None:
    """docker save (a duplicated middle layer) → another kind → docker-archive: every hop
    keeps the digest, and what lands in the tar `docker load`s and runs."""
    first = {"oci": f"oci:{tmp_path / 'layout'}", "oci-archive": f"oci-archive:{tmp_path}/o.tar",
             "registry": f"{registry.host}/copytest/{via}:1"}[via]
    (a,) = freight.copy(str(symlink_archive), first)
    out = tmp_path / "loaded.tar"
    (b,) = freight.copy(first, f"docker-archive:{out}:copytest/{via}:1")
    assert b.digest == a.digest
    load_and_check(docker_puller, out, {f"copytest/{via}:1": images.dup})


def test_pull_to_standard_output_pipes_into_docker_load(
        docker_puller: DockerEngine, images: TestImages, registry: Registry,
        legacy_archive: Path, tmp_path: Path) -> None:
    """`freight pull REF - | docker load`: the tar goes to stdout (the pulled references
    to stderr), complete, and nothing is left in TMPDIR."""
    import os
    import subprocess

    from support.freightcli import UserDirs, freight_argv

    (pushed,) = freight.push(legacy_archive, f"{registry.host}/pulltest/stdout:1")
    dirs = UserDirs.under(tmp_path)
    env = {**os.environ, **dirs.env()}
    pull = subprocess.Popen([*freight_argv(), "pull", str(pushed.reference), "-"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    load = subprocess.run([docker_puller.cli, "load"], env=docker_puller.env, stdin=pull.stdout,
                          capture_output=True, text=True, timeout=300)
    assert pull.stdout is not None
    pull.stdout.close()
    _, err = pull.communicate(timeout=300)
    assert pull.returncode == 0, err
    assert load.returncode == 0, load.stderr
    assert str(pushed.reference) in err.decode()  # the result line, not in the tar
    try:
        assert docker_puller.image_id(str(pushed.reference)) == images.app.image_id
        assert docker_puller.run_image(str(pushed.reference)).strip() == images.app.output
    finally:
        docker_puller.remove_images(str(pushed.reference))
    assert dirs.leftovers() == []
