"""Blob fetch and upload flows (protocol.md §2; S1, S2 of §7) against a live server."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Live, digest_of, serving

DATA = bytes(range(256)) * 400  # 102400 bytes


def start(live: Live, repo: str = "test/repo") -> str:
    reply = live.client.post(f"/v2/{repo}/blobs/uploads/")
    assert reply.status_code == 202
    return reply.headers["location"]


def test_post_answers_202_with_location_uuid_and_range(live: Live) -> None:
    reply = live.client.post("/v2/test/repo/blobs/uploads/")
    assert reply.status_code == 202
    uuid = reply.headers["docker-upload-uuid"]
    assert reply.headers["location"] == f"/v2/test/repo/blobs/uploads/{uuid}"
    assert reply.headers["range"] == "0-0"
    assert reply.headers["docker-distribution-api-version"] == "registry/2.0"


def test_monolithic_upload_then_get_head_and_ranges(live: Live) -> None:
    digest = live.push_blob("test/repo", DATA)
    head = live.client.head(f"/v2/test/repo/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(DATA))
    assert head.headers["docker-content-digest"] == digest
    got = live.client.get(f"/v2/test/repo/blobs/{digest}")
    assert got.content == DATA
    part = live.client.get(f"/v2/test/repo/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == DATA[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(DATA)}"
    tail = live.client.get(f"/v2/test/repo/blobs/{digest}", headers={"Range": "bytes=-5"})
    assert tail.content == DATA[-5:]
    beyond = live.client.get(f"/v2/test/repo/blobs/{digest}",
                             headers={"Range": f"bytes={len(DATA)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(DATA)}"


def test_close_answers_201_with_location_and_digest(live: Live) -> None:
    location = start(live)
    digest = digest_of(b"abc")
    reply = live.client.put(location, params={"digest": digest}, content=b"abc")
    assert reply.status_code == 201
    assert reply.headers["location"] == f"/v2/test/repo/blobs/{digest}"
    assert reply.headers["docker-content-digest"] == digest


def test_chunked_upload_in_order(live: Live) -> None:
    location = start(live)
    for begin in range(0, len(DATA), 30000):
        chunk = DATA[begin:begin + 30000]
        reply = live.client.patch(location, content=chunk, headers={
            "Content-Range": f"{begin}-{begin + len(chunk) - 1}",
            "Content-Type": "application/octet-stream"})
        assert reply.status_code == 202, reply.text
        assert reply.headers["range"] == f"0-{begin + len(chunk) - 1}"
        location = reply.headers["location"]
    reply = live.client.put(location, params={"digest": digest_of(DATA)})
    assert reply.status_code == 201
    assert live.client.get(reply.headers["location"]).content == DATA


@pytest.mark.parametrize("content_range", ["10-19", "3-12", "0-4"])  # gap, overlap, replay
def test_out_of_order_or_replayed_chunk_is_416(live: Live, content_range: str) -> None:
    location = start(live)
    first = live.client.patch(location, content=DATA[:5], headers={"Content-Range": "0-4"})
    assert first.status_code == 202
    start_, end = (int(x) for x in content_range.split("-"))
    reply = live.client.patch(location, content=DATA[start_:end + 1],
                              headers={"Content-Range": content_range})
    assert reply.status_code == 416
    assert reply.json()["errors"][0]["code"] == "RANGE_INVALID"
    status = live.client.get(location)  # the way to recover
    assert status.status_code == 204
    assert status.headers["range"] == "0-4"


def test_rfc_style_content_range_is_accepted(live: Live) -> None:
    location = start(live)
    reply = live.client.patch(location, content=DATA[:10],
                              headers={"Content-Range": "bytes 0-9/10"})
    assert reply.status_code == 202


def test_content_length_must_match_range(live: Live) -> None:
    location = start(live)
    reply = live.client.patch(location, content=DATA[:10], headers={"Content-Range": "0-19"})
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "SIZE_INVALID"
    assert live.client.get(location).headers["range"] == "0-0"


def test_streamed_patch_without_content_range(live: Live) -> None:
    """What docker push does: one chunked-encoded PATCH, then PUT with an empty body."""

    def body() -> Iterator[bytes]:
        for begin in range(0, len(DATA), 7000):
            yield DATA[begin:begin + 7000]

    location = start(live)
    reply = live.client.patch(location, content=body())
    assert reply.status_code == 202
    assert reply.headers["range"] == f"0-{len(DATA) - 1}"
    done = live.client.put(reply.headers["location"], params={"digest": digest_of(DATA)})
    assert done.status_code == 201
    assert live.client.get(done.headers["location"]).content == DATA


def test_last_chunk_on_put(live: Live) -> None:
    location = start(live)
    live.client.patch(location, content=DATA[:100], headers={"Content-Range": "0-99"})
    reply = live.client.put(location, params={"digest": digest_of(DATA)}, content=DATA[100:],
                            headers={"Content-Range": f"100-{len(DATA) - 1}"})
    assert reply.status_code == 201


def test_out_of_order_last_chunk_on_put_is_416(live: Live) -> None:
    location = start(live)
    reply = live.client.put(location, params={"digest": digest_of(DATA)}, content=DATA[100:],
                            headers={"Content-Range": f"100-{len(DATA) - 1}"})
    assert reply.status_code == 416


def test_status_of_upload(live: Live) -> None:
    location = start(live)
    live.client.patch(location, content=DATA[:1000], headers={"Content-Range": "0-999"})
    for method in ("GET", "HEAD"):
        reply = live.client.request(method, location)
        assert reply.status_code == 204
        assert reply.headers["range"] == "0-999"
        assert reply.headers["location"] == location


def test_single_post_with_digest(live: Live) -> None:
    digest = digest_of(b"single")
    reply = live.client.post("/v2/test/repo/blobs/uploads/", params={"digest": digest},
                             content=b"single")
    assert reply.status_code == 201
    assert reply.headers["location"] == f"/v2/test/repo/blobs/{digest}"
    assert live.client.get(reply.headers["location"]).content == b"single"


def test_single_post_with_wrong_digest(live: Live) -> None:
    reply = live.client.post("/v2/test/repo/blobs/uploads/", params={"digest": digest_of(b"x")},
                             content=b"single")
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "DIGEST_INVALID"


def test_digest_mismatch_at_close_cancels_session(live: Live) -> None:
    location = start(live)
    reply = live.client.put(location, params={"digest": digest_of(b"other")}, content=b"abc")
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert live.client.get(location).status_code == 404
    assert live.client.head(f"/v2/test/repo/blobs/{digest_of(b'abc')}").status_code == 404


@pytest.mark.parametrize("params", [{}, {"digest": "sha256:nothex"}, {"digest": "md5:abc"}])
def test_missing_or_bad_digest_at_close_keeps_session(live: Live, params: dict[str, str]) -> None:
    location = start(live)
    reply = live.client.put(location, params=params)
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert live.client.get(location).status_code == 204


def test_cancel_upload(live: Live) -> None:
    location = start(live)
    assert live.client.delete(location).status_code == 204
    again = live.client.delete(location)
    assert again.status_code == 404
    assert again.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert live.client.get(location).status_code == 404


@pytest.mark.parametrize("uuid", ["0" * 32, "x..y", "not-a-session", "A" * 32])
def test_unknown_session_is_404(live: Live, uuid: str) -> None:
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        reply = live.client.request(method, f"/v2/test/repo/blobs/uploads/{uuid}")
        assert reply.status_code == 404, (method, reply.text)
        assert reply.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"


def test_session_is_bound_to_its_repository(live: Live) -> None:
    uuid = start(live).rsplit("/", 1)[1]
    assert live.client.get(f"/v2/other/repo/blobs/uploads/{uuid}").status_code == 404


def test_blob_existence_is_per_repository(live_fs: Live) -> None:
    live = live_fs
    digest = live.push_blob("test/repo", DATA)
    assert live.client.head(f"/v2/third/repo/blobs/{digest}").status_code == 404
    assert len(list((live.root / "blobs").rglob("*"))) == 3  # sha256/xx/<hex>
    live.push_blob("third/repo", DATA)
    assert len([p for p in (live.root / "blobs").rglob("*") if p.is_file()]) == 1


def test_mount_from_other_repository(live: Live) -> None:
    digest = live.push_blob("src/repo", DATA)
    reply = live.client.post("/v2/dst/repo/blobs/uploads/",
                             params={"mount": digest, "from": "src/repo"})
    assert reply.status_code == 201
    assert reply.headers["location"] == f"/v2/dst/repo/blobs/{digest}"
    assert reply.headers["docker-content-digest"] == digest
    assert live.client.get(f"/v2/dst/repo/blobs/{digest}").content == DATA


@pytest.mark.parametrize("params", [
    {"mount": digest_of(b"absent"), "from": "src/repo"},
    {"mount": "PRESENT"},
    {"mount": "sha256:bogus", "from": "src/repo"},
    {"mount": "PRESENT", "from": "Bad//name"},
])
def test_mount_fallback_gives_usable_session(live: Live, params: dict[str, str]) -> None:
    present = live.push_blob("src/repo", DATA)
    params = {k: (present if v == "PRESENT" else v) for k, v in params.items()}
    reply = live.client.post("/v2/dst/repo/blobs/uploads/", params=params)
    assert reply.status_code == 202
    location = reply.headers["location"]
    assert location.startswith("/v2/dst/repo/blobs/uploads/")
    done = live.client.put(location, params={"digest": digest_of(b"new")}, content=b"new")
    assert done.status_code == 201


def test_delete_blob(live: Live) -> None:
    digest = live.push_blob("test/repo", DATA)
    assert live.client.delete(f"/v2/test/repo/blobs/{digest}").status_code == 202
    gone = live.client.get(f"/v2/test/repo/blobs/{digest}")
    assert gone.status_code == 404
    assert gone.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert live.client.delete(f"/v2/test/repo/blobs/{digest}").status_code == 404


def test_empty_blob(live: Live) -> None:
    digest = live.push_blob("test/repo", b"")
    assert digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    reply = live.client.get(f"/v2/test/repo/blobs/{digest}")
    assert reply.status_code == 200
    assert reply.content == b""


def test_concurrent_pushes_of_the_same_blob_both_succeed(live: Live) -> None:
    big = os.urandom(3 << 20)
    statuses: list[int] = []

    def push(repo: str) -> None:
        import httpx

        with httpx.Client(base_url=live.url, timeout=30) as client:
            location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
            reply = client.put(location, params={"digest": digest_of(big)}, content=big)
            statuses.append(reply.status_code)

    threads = [threading.Thread(target=push, args=(repo,)) for repo in ("a/x", "b/y", "a/x")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201, 201, 201]
    for repo in ("a/x", "b/y"):
        assert live.client.get(f"/v2/{repo}/blobs/{digest_of(big)}").content == big


def test_large_blob_streams_through(live: Live) -> None:
    big = os.urandom(20 << 20)
    location = start(live)
    reply = live.client.patch(location, content=iter([big[i:i + (1 << 20)]
                                                     for i in range(0, len(big), 1 << 20)]))
    assert reply.status_code == 202
    done = live.client.put(reply.headers["location"], params={"digest": digest_of(big)})
    assert done.status_code == 201
    with live.client.stream("GET", done.headers["location"]) as got:
        assert got.headers["content-length"] == str(len(big))
        assert b"".join(got.iter_bytes()) == big


def test_download_stops_when_client_leaves(tmp_path: Path) -> None:
    log = io.StringIO()
    big = os.urandom(64 << 20)
    with serving(tmp_path / "root", access_log=log) as live:
        digest = live.push_blob("test/repo", big)
        with live.client.stream("GET", f"/v2/test/repo/blobs/{digest}") as reply:
            next(reply.iter_raw(1 << 20))
        wait = 0
        while '"method": "GET"' not in log.getvalue() and wait < 3000:
            time.sleep(0.01)
            wait += 1
    entry = next(json.loads(line) for line in log.getvalue().splitlines()
                 if '"method": "GET"' in line)
    assert entry["bytes_out"] == -1  # reported as cut short, not read to the end
