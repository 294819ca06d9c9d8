"""docker push and docker pull against the embedded registry (the engine's own client:
streamed PATCH, cross-repository mounts, schema2 manifests)."""

from __future__ import annotations

import pytest

from support.docker import DockerEngine
from support.images import TestImages

from .conftest import DOCKER_MANIFEST, Live

pytestmark = pytest.mark.integration


@pytest.fixture
def registry(live: Live) -> Live:
    """The live registry on each storage backend."""
    return live


def test_docker_push_then_pull_and_run(registry: Live, docker: DockerEngine,
                                       docker_puller: DockerEngine, images: TestImages) -> None:
    host = registry.url.removeprefix("http://")  # loopback registries are plain HTTP to docker
    first, second = f"{host}/team/app:1", f"{host}/other/dup:2"
    docker.run("tag", images.app.reference, first)
    docker.run("tag", images.dup.reference, second)
    docker.run("push", first)
    docker.run("push", second)  # shares the base layer: docker tries a mount from team/app
    manifest = registry.client.get("/v2/team/app/manifests/1")
    assert manifest.headers["content-type"] == DOCKER_MANIFEST
    for ref, image in ((first, images.app), (second, images.dup)):
        docker_puller.run("pull", ref)
        assert docker_puller.run_image(ref).strip() == image.output.strip()
        docker_puller.remove_images(ref)
