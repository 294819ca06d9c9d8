"""Stateless replicas: several `freight serve` processes on one S3 bucket (SeaweedFS) are one
registry, directly and behind HAProxy round robin; one may die mid-push."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from support.docker import DockerEngine
from support.freightcli import UserDirs, run_freight
from support.images import TestImages
from support.replicas import Balancer, Replica, start_balancer, start_replica
from support.seaweed import Seaweed
from support.synthimage import make_archive

from .conftest import digest_of, image_manifest
from .test_skopeo import oci_layout, skopeo

pytestmark = pytest.mark.integration
MiB = 1 << 20
Cluster = Callable[..., Balancer]


@pytest.fixture
def cluster(seaweed: Seaweed, tmp_path: Path) -> Iterator[Cluster]:
    """`cluster(n)`: n replicas on a fresh prefix of the bucket and HAProxy in front."""
    started: list[Balancer] = []

    def start(count: int = 3, *extra: str) -> Balancer:
        url = seaweed.url()
        replicas = [start_replica(url, tmp_path, seaweed.env, *extra) for _ in range(count)]
        balancer = start_balancer(replicas, tmp_path)
        started.append(balancer)
        return balancer

    yield start
    for balancer in started:
        balancer.stop()
        for replica in balancer.replicas:
            replica.stop()


def client(replica: Replica) -> httpx.Client:
    return httpx.Client(base_url=replica.url, timeout=60)


def test_upload_patched_and_closed_on_different_replicas(cluster: Cluster) -> None:
    a, b, c = cluster().replicas
    chunks = [b"a" * (6 * MiB), b"b" * (3 * MiB), b"c" * (7 * MiB), b"tail"]
    data = b"".join(chunks)
    with client(a) as ca, client(b) as cb, client(c) as cc:
        location = ca.post("/v2/team/app/blobs/uploads/").headers["location"]
        offset = 0
        for n, chunk in enumerate(chunks[:3]):
            replica = (cb, cc, ca)[n]
            reply = replica.patch(location, content=chunk, headers={
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Type": "application/octet-stream"})
            assert reply.status_code == 202, reply.text
            offset += len(chunk)
            assert reply.headers["range"] == f"0-{offset - 1}"
        stale = cc.patch(location, content=chunks[0], headers={"Content-Range": f"0-{6 * MiB - 1}"})
        assert stale.status_code == 416
        assert ca.get(location).headers["range"] == f"0-{offset - 1}"  # any replica knows
        done = cb.put(location, params={"digest": digest_of(data)}, content=chunks[3])
        assert done.status_code == 201, done.text
        for replica in (ca, cb, cc):
            got = replica.get(f"/v2/team/app/blobs/{digest_of(data)}")
            assert got.status_code == 200 and digest_of(got.content) == digest_of(data)
        assert cc.get(location).status_code == 404  # the session is gone everywhere


def test_one_chunk_sent_to_two_replicas_at_once_is_stored_once(cluster: Cluster) -> None:
    a, b, _ = cluster().replicas
    chunk = b"x" * (2 * MiB)
    with client(a) as ca, client(b) as cb:
        location = ca.post("/v2/team/app/blobs/uploads/").headers["location"]
        codes: list[int] = []

        def send(target: httpx.Client) -> None:
            codes.append(target.patch(location, content=chunk, headers={
                "Content-Range": f"0-{len(chunk) - 1}"}).status_code)

        threads = [threading.Thread(target=send, args=(t,)) for t in (ca, cb)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(codes) == [202, 416]
        assert cb.put(location, params={"digest": digest_of(chunk)}).status_code == 201


def test_writes_through_one_are_read_through_all_and_tag_races_stay_whole(
        cluster: Cluster) -> None:
    replicas = cluster().replicas
    clients = [client(r) for r in replicas]
    config = b"{}"
    try:
        digests: list[str] = []
        bodies: dict[str, bytes] = {}

        def push(worker: int) -> None:
            own = clients[worker % 3]
            layer = f"layer {worker}".encode() * 100
            for blob in (config, layer):  # the same config blob from every writer at once
                started = own.post("/v2/race/app/blobs/uploads/")
                own.put(started.headers["location"], params={"digest": digest_of(blob)},
                        content=blob).raise_for_status()
            body = image_manifest(digest_of(config), 2, [(digest_of(layer), len(layer))])
            reply = own.put("/v2/race/app/manifests/latest", content=body,
                            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            assert reply.status_code == 201, reply.text
            digests.append(reply.headers["docker-content-digest"])
            bodies[reply.headers["docker-content-digest"]] = body

        threads = [threading.Thread(target=push, args=(w,)) for w in range(9)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(digests) == 9
        seen = set()
        for c in clients:  # every replica sees the same winner, whole
            reply = c.get("/v2/race/app/manifests/latest")
            assert reply.status_code == 200
            assert reply.headers["docker-content-digest"] in digests
            assert digest_of(reply.content) == reply.headers["docker-content-digest"]
            assert reply.content == bodies[reply.headers["docker-content-digest"]]
            seen.add(reply.headers["docker-content-digest"])
            assert c.get(f"/v2/race/app/blobs/{digest_of(config)}").content == config
            assert c.get("/v2/race/app/tags/list").json()["tags"] == ["latest"]
        assert len(seen) == 1
    finally:
        for c in clients:
            c.close()


def test_freight_and_skopeo_push_and_pull_through_haproxy(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    balancer = cluster()
    dirs = UserDirs.under(tmp_path / "user")
    image = make_archive(tmp_path / "app.tar", [7, 1, 0.5], reference="team/app:1")
    pushed = run_freight("push", "-q", "--compression", "none", "--chunk-size", "5M",
                         str(image.archive), f"{balancer.host}/team/app:1", dirs=dirs)
    assert pushed.returncode == 0, pushed.describe()
    pulled = run_freight("pull", "-q", f"{balancer.host}/team/app:1", str(tmp_path / "back.tar"),
                         dirs=dirs)
    assert pulled.returncode == 0, pulled.describe()
    config = run_freight("config", "--raw", f"{balancer.host}/team/app:1", dirs=dirs)
    assert config.returncode == 0 and digest_of(config.stdout.encode()) == image.image_id
    layout = oci_layout(tmp_path / "layout")
    ref = f"docker://{balancer.host}/team/skopeo:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", ref)
    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'skopeo-back'}:v1")
    want = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    got = json.loads((tmp_path / "skopeo-back" / "index.json").read_text())["manifests"][0]
    assert got["digest"] == want


def test_docker_push_and_pull_through_haproxy(cluster: Cluster, docker: DockerEngine,
                                              docker_puller: DockerEngine,
                                              images: TestImages) -> None:
    balancer = cluster()
    first, second = f"{balancer.host}/team/app:1", f"{balancer.host}/other/dup:2"
    docker.run("tag", images.app.reference, first)
    docker.run("tag", images.dup.reference, second)
    docker.run("push", first)
    docker.run("push", second)  # a cross-repository mount, on whichever replica
    for ref, image in ((first, images.app), (second, images.dup)):
        docker_puller.run("pull", ref)
        assert docker_puller.run_image(ref).strip() == image.output.strip()
        docker_puller.remove_images(ref)


def test_kill_one_replica_during_a_large_push(cluster: Cluster, tmp_path: Path) -> None:
    balancer = cluster()
    dirs = UserDirs.under(tmp_path / "user")
    image = make_archive(tmp_path / "big.tar", [40, 40, 24], reference="team/big:1")
    push = subprocess.Popen(
        [*_freight(), "push", "-q", "--compression", "none", "--chunk-size", "8M", "-j", "2",
         str(image.archive), f"{balancer.host}/team/big:1"],
        env=_env(dirs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = balancer.replicas[0]
    _wait_for_uploads(victim)
    victim.kill()
    _, err = push.communicate(timeout=600)
    assert push.returncode == 0, err
    with httpx.Client(base_url=balancer.url, timeout=60) as c:
        tags = c.get("/v2/team/big/tags/list").json()["tags"]
        assert tags == ["1"]
        document = c.get("/v2/team/big/manifests/1").json()
        for blob in (document["config"], *document["layers"]):
            with c.stream("GET", f"/v2/team/big/blobs/{blob['digest']}") as reply:
                assert reply.status_code == 200
                import hashlib

                hasher = hashlib.sha256()
                for piece in reply.iter_bytes():
                    hasher.update(piece)
                assert f"sha256:{hasher.hexdigest()}" == blob["digest"]
    config = run_freight("config", "--raw", f"{balancer.host}/team/big:1", dirs=dirs)
    assert digest_of(config.stdout.encode()) == image.image_id


def _wait_for_uploads(replica: Replica) -> None:
    """Until the replica has served some PATCH (a bound against hangs only)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if replica.service.log.exists() and '"PATCH"' in replica.service.log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("no upload reached the replica")


def _freight() -> list[str]:
    import sys

    return [sys.executable, "-m", "freight"]


def _env(dirs: UserDirs) -> dict[str, str]:
    import os

    from support.replicas import SRC

    return {**os.environ, **dirs.env(), "NO_COLOR": "1",
            "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
