"""Several processes (uvicorn workers, replicas) on one store are one registry: simulated
in-process by two apps on one store location, each with its own in-memory upload state."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from freight.server import FilesystemStorage, Storage

from .conftest import Live, digest_of, serving

MiB = 1 << 20


@contextmanager
def two_workers(storage: Storage, tmp_path: Path, **options: Any) -> Iterator[tuple[Live, Live]]:
    """Two registries on the same content, sharing nothing in memory."""
    if isinstance(storage, FilesystemStorage):
        twin: Storage = FilesystemStorage(storage.root)
    else:
        from freight.server.storage.s3 import S3Storage

        twin = S3Storage(storage.location)
    with serving(tmp_path, storage=storage, **options) as one, \
            serving(tmp_path, storage=twin, **options) as two:
        yield one, two


@pytest.fixture
def pair(storage: Storage, tmp_path: Path) -> Iterator[tuple[Live, Live]]:
    with two_workers(storage, tmp_path) as both:
        yield both


def test_upload_alternates_between_workers(pair: tuple[Live, Live]) -> None:
    one, two = pair
    chunks = [b"1" * MiB, b"2" * (2 * MiB), b"3" * 100]
    data = b"".join(chunks)
    location = one.client.post("/v2/w/app/blobs/uploads/").headers["location"]
    offset = 0
    for n, chunk in enumerate(chunks):
        worker = (two, one)[n % 2]
        reply = worker.client.patch(location, content=chunk, headers={
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        assert reply.status_code == 202, reply.text
        offset += len(chunk)
    assert one.client.put(location, params={"digest": digest_of(data)}).status_code == 201
    assert digest_of(two.client.get(f"/v2/w/app/blobs/{digest_of(data)}").content) == \
        digest_of(data)


def test_same_chunk_on_two_workers_is_stored_once(pair: tuple[Live, Live]) -> None:
    one, two = pair
    chunk = b"c" * (3 * MiB)
    location = one.client.post("/v2/w/app/blobs/uploads/").headers["location"]
    codes: list[int] = []

    def send(live: Live) -> None:
        codes.append(live.client.patch(location, content=chunk, headers={
            "Content-Range": f"0-{len(chunk) - 1}"}).status_code)

    threads = [threading.Thread(target=send, args=(live,)) for live in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [202, 416]
    assert two.client.get(location).headers["range"] == f"0-{len(chunk) - 1}"
    assert two.client.put(location, params={"digest": digest_of(chunk)}).status_code == 201


def test_manifest_deleted_through_one_worker_is_gone_for_the_other(
        pair: tuple[Live, Live]) -> None:
    """The other worker has the bytes cached (content-addressed); the revision link it reads
    on every GET is what says the manifest is gone."""
    one, two = pair
    digest, body = one.push_image("w/cached", "v1")
    for ref in ("v1", digest):
        assert two.client.get(f"/v2/w/cached/manifests/{ref}").content == body
    assert one.client.delete(f"/v2/w/cached/manifests/{digest}").status_code == 202
    for ref in ("v1", digest):
        reply = two.client.get(f"/v2/w/cached/manifests/{ref}")
        assert reply.status_code == 404, reply.text
        assert reply.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_tag_moved_through_one_worker_is_read_through_the_other_at_once(
        pair: tuple[Live, Live]) -> None:
    one, two = pair
    first, _ = one.push_image("w/moving", "latest", layer=b"one")
    assert two.client.get("/v2/w/moving/manifests/latest").headers[
        "docker-content-digest"] == first
    second, body = one.push_image("w/moving", "latest", layer=b"two")
    reply = two.client.get("/v2/w/moving/manifests/latest")
    assert (reply.headers["docker-content-digest"], reply.content) == (second, body)


def test_blob_deleted_through_one_worker_is_gone_for_the_other(
        pair: tuple[Live, Live]) -> None:
    """The other worker knows the blob's size (cached); the link is still read each time."""
    one, two = pair
    digest = one.push_blob("w/blobs", b"sized" * 100)
    assert two.client.head(f"/v2/w/blobs/blobs/{digest}").headers["content-length"] == "500"
    assert one.client.delete(f"/v2/w/blobs/blobs/{digest}").status_code == 202
    assert two.client.head(f"/v2/w/blobs/blobs/{digest}").status_code == 404
    assert two.client.get(f"/v2/w/blobs/blobs/{digest}").status_code == 404


LIMIT = 3 * MiB


@pytest.mark.parametrize("ranged", [True, False], ids=["content-range", "streamed"])
def test_blob_size_limit_holds_across_workers(storage: Storage, tmp_path: Path,
                                              ranged: bool) -> None:
    """Each PATCH is under the limit, the session is not: the worker that did not open the
    session (and never saw its first PATCH) still answers 413 (it read 2 MiB as 0 before)."""
    with two_workers(storage, tmp_path, max_blob_size=LIMIT) as (one, two):
        chunk = b"x" * (2 * MiB)
        location = one.client.post("/v2/w/limited/blobs/uploads/").headers["location"]
        first = one.client.patch(location, content=chunk, headers={
            "Content-Range": f"0-{len(chunk) - 1}"} if ranged else {})
        assert first.status_code == 202, first.text
        headers = {"Content-Range": f"{len(chunk)}-{2 * len(chunk) - 1}"} if ranged else {}
        second = two.client.patch(location, content=iter([chunk]) if not ranged else chunk,
                                  headers=headers)
        assert second.status_code == 413, second.text
        assert second.json()["errors"][0]["code"] == "SIZE_INVALID"
        assert int(two.client.get(location).headers["range"].split("-")[1]) < LIMIT
        small = b"y" * MiB  # the limit refuses only what goes beyond it
        location = two.client.post("/v2/w/limited/blobs/uploads/").headers["location"]
        for live, start in ((two, 0), (one, MiB), (two, 2 * MiB)):
            reply = live.client.patch(location, content=small, headers={
                "Content-Range": f"{start}-{start + MiB - 1}"})
            assert reply.status_code == 202, reply.text
        assert one.client.put(location, params={"digest": digest_of(small * 3)}
                              ).status_code == 201
