"""A live embedded registry per test (uvicorn in a thread on 127.0.0.1, free port) and
helpers to push content to it with plain HTTP requests.

`live` runs every test twice: on the filesystem backend and on the S3 backend (a fresh
prefix of one SeaweedFS bucket per test; integration). `live_fs` is the filesystem only,
for tests that look at the files themselves."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from freight.server import FilesystemStorage, Storage, make_app
from freight.server.auth import BasicAuth
from freight.server.runner import listen, uvicorn_config
from support.seaweed import Seaweed, start_seaweed

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Live:
    """A running registry: `url`, its storage `root` and an httpx `client` bound to it."""

    url: str
    root: Path
    client: httpx.Client

    def push_blob(self, repo: str, data: bytes) -> str:
        """Monolithic POST+PUT; returns the digest."""
        digest = digest_of(data)
        started = self.client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        done = self.client.put(started.headers["location"], params={"digest": digest},
                               content=data)
        assert done.status_code == 201, done.text
        return digest

    def push_manifest(self, repo: str, ref: str, body: bytes,
                      media_type: str = OCI_MANIFEST) -> httpx.Response:
        return self.client.put(f"/v2/{repo}/manifests/{ref}", content=body,
                               headers={"Content-Type": media_type})

    def push_image(self, repo: str, tag: str, layer: bytes = b"layer",
                   **extra: Any) -> tuple[str, bytes]:
        """Blobs and an OCI manifest (extra top-level fields allowed); (digest, bytes)."""
        config = b"{}"
        body = image_manifest(self.push_blob(repo, config), len(config),
                              [(self.push_blob(repo, layer), len(layer))], **extra)
        reply = self.push_manifest(repo, tag, body)
        assert reply.status_code == 201, reply.text
        return reply.headers["docker-content-digest"], body


def image_manifest(config: str, config_size: int, layers: list[tuple[str, int]],
                   media_type: str = OCI_MANIFEST, config_type: str = OCI_EMPTY,
                   **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": config_type, "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                    "size": s} for d, s in layers],
        **extra,
    }
    return json.dumps(doc).encode()


def index_manifest(children: list[tuple[str, int]], media_type: str = OCI_INDEX) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": s,
         "platform": {"os": "linux", "architecture": "amd64"}} for d, s in children]}).encode()


@contextmanager
def serving(root: Path, *, storage: Storage | None = None, header_timeout: float = 10.0,
            **options: Any) -> Iterator[Live]:
    """Run the registry (on `storage`, else files under `root`) on a free loopback port in
    a thread for the duration, configured as `freight serve` configures uvicorn (guarded
    protocol, header limits)."""
    app = make_app(storage or FilesystemStorage(root), **options)
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(app, header_timeout=header_timeout))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield Live(url, root, client)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """SeaweedFS with an S3 gateway on loopback; its AWS_* settings are in os.environ."""
    import os

    store = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    saved = {name: os.environ.get(name) for name in store.env}
    os.environ.update(store.env)
    yield store
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    store.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `direct` (malformed HTTP that HAProxy answers itself, one process's
    /metrics) do not run in the s3-haproxy variant."""
    dropped = [item for item in items
               if item.get_closest_marker("direct") and "[s3-haproxy" in item.nodeid]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


STORAGES = ["filesystem", pytest.param("s3", marks=pytest.mark.integration),
            pytest.param("s3-haproxy", marks=pytest.mark.integration)]


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """A fresh, empty store of each backend (s3-haproxy: see `live`)."""
    if request.param.startswith("s3"):
        from freight.server.storage.s3 import S3Storage

        return S3Storage(request.getfixturevalue("seaweed").url())
    return FilesystemStorage(tmp_path / "root")


@pytest.fixture
def live(request: pytest.FixtureRequest, tmp_path: Path, storage: Storage) -> Iterator[Live]:
    """The registry on `storage`; for s3-haproxy, three registries on that bucket prefix
    behind HAProxy round robin, so consecutive requests land on different replicas."""
    if request.node.callspec.params.get("storage") != "s3-haproxy":
        with serving(tmp_path / "root", storage=storage) as registry:
            yield registry
        return
    with balanced(tmp_path, storage) as registry:
        yield registry


@contextmanager
def balanced(tmp_path: Path, storage: Storage, count: int = 3) -> Iterator[Live]:
    from contextlib import ExitStack

    from freight.server.storage.s3 import S3Storage
    from support.replicas import start_balancer

    with ExitStack() as stack:
        urls = [stack.enter_context(serving(tmp_path, storage=storage if n == 0 else
                                            S3Storage(storage.location))).url
                for n in range(count)]
        balancer = start_balancer(urls, tmp_path)
        stack.callback(balancer.stop)
        with httpx.Client(base_url=balancer.url, timeout=60) as client:
            yield Live(balancer.url, tmp_path / "root", client)


@pytest.fixture
def live_fs(tmp_path: Path) -> Iterator[Live]:
    with serving(tmp_path / "root") as registry:
        yield registry


@pytest.fixture
def htpasswd_users() -> dict[str, bytes]:
    import bcrypt

    return {"alice": bcrypt.hashpw(b"secret", bcrypt.gensalt(rounds=4))}


@pytest.fixture
def live_auth(tmp_path: Path, htpasswd_users: dict[str, bytes]) -> Iterator[Live]:
    with serving(tmp_path / "root", auth=BasicAuth(htpasswd_users)) as registry:
        yield registry
