"""Several processes (uvicorn workers, replicas) on one store are one registry: simulated
in-process by two apps on one store location, each with its own in-memory upload state."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from freight.server import FilesystemStorage, Storage

from .conftest import Live, digest_of, serving

MiB = 1 << 20


@pytest.fixture
def pair(storage: Storage, tmp_path: Path) -> Iterator[tuple[Live, Live]]:
    """Two registries on the same content, sharing nothing in memory."""
    if isinstance(storage, FilesystemStorage):
        twin: Storage = FilesystemStorage(storage.root)
    else:
        from freight.server.storage.s3 import S3Storage

        twin = S3Storage(storage.location)
    with serving(tmp_path, storage=storage) as one, serving(tmp_path, storage=twin) as two:
        yield one, two


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
