"""What only the S3 backend does: direct multipart uploads, presigned redirects, the
`--storage` option's errors (the shared behaviour runs in every suite via `live`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from freight.server.storage.s3 import S3Storage
from support.seaweed import Seaweed

from .conftest import digest_of, serving

pytestmark = pytest.mark.integration
MiB = 1 << 20


def open_multipart_uploads(storage: S3Storage) -> list[str]:
    reply = storage.objects.client.list_multipart_uploads(Bucket=storage.objects.bucket,
                                                          Prefix=storage.objects.prefix)
    return [u["Key"] for u in reply.get("Uploads", [])]


def test_whole_blob_put_goes_straight_to_multipart(seaweed: Seaweed, tmp_path: Path) -> None:
    storage = S3Storage(seaweed.url())
    data = os.urandom(20 * MiB + 7)
    with serving(tmp_path, storage=storage) as live:
        bad = live.client.post("/v2/a/b/blobs/uploads/").headers["location"]
        wrong = live.client.put(bad, params={"digest": digest_of(b"other")}, content=data)
        assert wrong.status_code == 400 and wrong.json()["errors"][0]["code"] == "DIGEST_INVALID"
        assert live.client.head(f"/v2/a/b/blobs/{digest_of(data)}").status_code == 404
        digest = live.push_blob("a/b", data)
        again = live.push_blob("c/d", data)  # exists already: hashed, linked, not rewritten
        assert digest == again
        for repo in ("a/b", "c/d"):
            got = live.client.get(f"/v2/{repo}/blobs/{digest}")
            assert got.status_code == 200 and digest_of(got.content) == digest
    assert open_multipart_uploads(storage) == []  # the refused one was aborted
    assert [key for key in (i.key for i in storage.objects.list("")) if "_uploads" in key] == []


def test_single_post_upload(seaweed: Seaweed, tmp_path: Path) -> None:
    storage = S3Storage(seaweed.url())
    with serving(tmp_path, storage=storage) as live:
        data = b"one request"
        reply = live.client.post("/v2/a/b/blobs/uploads/", params={"digest": digest_of(data)},
                                 content=data)
        assert reply.status_code == 201, reply.text
        assert live.client.get(f"/v2/a/b/blobs/{digest_of(data)}").content == data


def test_redirect_to_presigned_url(seaweed: Seaweed, tmp_path: Path) -> None:
    storage = S3Storage(seaweed.url(), redirect=True)
    with serving(tmp_path, storage=storage) as live:
        digest = live.push_blob("a/b", b"served by the store")
        reply = live.client.get(f"/v2/a/b/blobs/{digest}")
        assert reply.status_code == 307
        assert reply.headers["location"].startswith(seaweed.endpoint)
        assert httpx.get(reply.headers["location"]).content == b"served by the store"
        assert live.client.head(f"/v2/a/b/blobs/{digest}").status_code == 200  # HEAD: no
        assert live.client.get(f"/v2/a/b/blobs/{digest_of(b'x')}").status_code == 404


SERVE = [sys.executable, "-m", "freight", "serve", "--address", "127.0.0.1:0"]


@pytest.mark.parametrize("storage", ["s3://", "s3://bucket/../up", "s3://no-such-bucket/x"])
def test_bad_storage_is_one_line(seaweed: Seaweed, storage: str) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    done = subprocess.run([*SERVE, "--storage", storage], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(src)})
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("freight: "), done.stderr
    assert "Traceback" not in done.stderr
