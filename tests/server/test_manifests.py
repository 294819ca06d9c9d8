"""Manifest endpoints (protocol.md §3; S3 of §7)."""

from __future__ import annotations

import hashlib
import json

import pytest

from .conftest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Live,
    digest_of,
    image_manifest,
    index_manifest,
)


def blobs(live: Live, repo: str = "test/repo") -> tuple[str, str]:
    return live.push_blob(repo, b"{}"), live.push_blob(repo, b"layer bytes")


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_put_by_tag_then_get_and_head_exact_bytes(live: Live, media_type: str) -> None:
    config, layer = blobs(live)
    body = image_manifest(config, 2, [(layer, 11)], media_type=media_type)
    body = body.replace(b", ", b",\n   ")  # odd formatting: bytes must survive untouched
    reply = live.push_manifest("test/repo", "v1", body, media_type)
    assert reply.status_code == 201, reply.text
    digest = digest_of(body)
    assert reply.headers["docker-content-digest"] == digest
    assert reply.headers["location"] == f"/v2/test/repo/manifests/{digest}"
    for ref in ("v1", digest):
        got = live.client.get(f"/v2/test/repo/manifests/{ref}")
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["content-type"] == media_type
        assert got.headers["docker-content-digest"] == digest
        head = live.client.head(f"/v2/test/repo/manifests/{ref}")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(body))
        assert head.headers["content-type"] == media_type


def test_content_type_is_echoed_exactly(live: Live) -> None:
    config, layer = blobs(live)
    body = image_manifest(config, 2, [(layer, 11)])
    reply = live.push_manifest("test/repo", "v1", body, OCI_MANIFEST + "; charset=utf-8")
    assert reply.status_code == 201
    got = live.client.get("/v2/test/repo/manifests/v1")
    assert got.headers["content-type"] == OCI_MANIFEST + "; charset=utf-8"


def test_put_by_digest(live: Live) -> None:
    config, layer = blobs(live)
    body = image_manifest(config, 2, [(layer, 11)])
    reply = live.push_manifest("test/repo", digest_of(body), body)
    assert reply.status_code == 201
    assert live.client.get("/v2/test/repo/tags/list").json()["tags"] == []


def test_put_by_wrong_digest_is_digest_invalid(live: Live) -> None:
    config, layer = blobs(live)
    body = image_manifest(config, 2, [(layer, 11)])
    reply = live.push_manifest("test/repo", digest_of(b"other"), body)
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "DIGEST_INVALID"


def test_sha512_reference_is_checked_with_sha512(live: Live) -> None:
    config, layer = blobs(live)
    body = image_manifest(config, 2, [(layer, 11)])
    digest = "sha512:" + hashlib.sha512(body).hexdigest()
    reply = live.push_manifest("test/repo", digest, body)
    assert reply.status_code == 201
    assert live.client.get(f"/v2/test/repo/manifests/{digest}").content == body


def test_missing_blob_is_manifest_blob_unknown(live: Live) -> None:
    config = live.push_blob("test/repo", b"{}")
    absent = digest_of(b"never pushed")
    reply = live.push_manifest("test/repo", "v1", image_manifest(config, 2, [(absent, 12)]))
    assert reply.status_code == 400
    error = reply.json()["errors"][0]
    assert (error["code"], error["detail"]) == ("MANIFEST_BLOB_UNKNOWN", absent)


def test_blob_in_other_repository_does_not_count(live: Live) -> None:
    config, layer = blobs(live, "other/repo")
    reply = live.push_manifest("test/repo", "v1", image_manifest(config, 2, [(layer, 11)]))
    assert reply.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"


def test_foreign_layer_with_urls_need_not_exist(live: Live) -> None:
    config = live.push_blob("test/repo", b"{}")
    body = json.loads(image_manifest(config, 2, [(digest_of(b"remote"), 6)]))
    body["layers"][0]["urls"] = ["https://example.com/layer"]
    reply = live.push_manifest("test/repo", "v1", json.dumps(body).encode())
    assert reply.status_code == 201


def test_an_empty_urls_list_makes_no_layer_foreign(live: Live) -> None:
    """`urls: []` names nowhere to fetch the layer from: its blob must be here, as any
    other layer's (the engine and sync read `urls` the same way)."""
    config = live.push_blob("test/repo", b"{}")
    absent = digest_of(b"remote")
    body = json.loads(image_manifest(config, 2, [(absent, 6)]))
    body["layers"][0]["urls"] = []
    reply = live.push_manifest("test/repo", "v1", json.dumps(body).encode())
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index_requires_children(live: Live, media_type: str) -> None:
    child, child_body = live.push_image("test/repo", "child")
    absent = digest_of(b"no such manifest")
    bad = index_manifest([(child, len(child_body)), (absent, 10)], media_type)
    reply = live.push_manifest("test/repo", "multi", bad, media_type)
    assert reply.status_code == 400
    assert reply.json()["errors"][0] == {
        "code": "MANIFEST_BLOB_UNKNOWN", "detail": absent,
        "message": "manifest references a manifest or blob unknown to registry"}
    good = index_manifest([(child, len(child_body))], media_type)
    reply = live.push_manifest("test/repo", "multi", good, media_type)
    assert reply.status_code == 201
    assert live.client.get("/v2/test/repo/manifests/multi").headers["content-type"] == media_type


def test_manifest_over_4_mib_is_413(live: Live) -> None:
    config, layer = blobs(live)
    body = image_manifest(config, 2, [(layer, 11)],
                          annotations={"pad": "x" * (4 << 20)})
    reply = live.push_manifest("test/repo", "big", body)
    assert reply.status_code == 413
    assert reply.json()["errors"][0]["code"] == "MANIFEST_INVALID"


def test_manifest_just_under_limit_is_accepted(live: Live) -> None:
    config, layer = blobs(live)
    small = image_manifest(config, 2, [(layer, 11)], annotations={"pad": ""})
    body = image_manifest(config, 2, [(layer, 11)],
                          annotations={"pad": "x" * ((4 << 20) - len(small))})
    assert len(body) == 4 << 20
    assert live.push_manifest("test/repo", "big", body).status_code == 201


@pytest.mark.parametrize(("content_type", "body"), [
    (OCI_MANIFEST, b"not json"),
    (OCI_MANIFEST, b"[1, 2]"),
    (DOCKER_MANIFEST, b'{"schemaVersion": 2, "mediaType": "%s"}' % OCI_MANIFEST.encode()),
    ("application/vnd.docker.distribution.manifest.v1+prettyjws", b'{"schemaVersion": 1}'),
    ("text/plain", b'{"schemaVersion": 2}'),
    (OCI_MANIFEST, b'{"schemaVersion": 1, "config": {}, "layers": []}'),
    (OCI_MANIFEST, b'{"schemaVersion": 2, "layers": []}'),
    (OCI_MANIFEST, b'{"schemaVersion": 2, "config": {"digest": "sha256:zz", "size": 1},'
                   b' "layers": []}'),
    (OCI_INDEX, b'{"schemaVersion": 2, "manifests": [{"size": 3}]}'),
    ("", b'{"schemaVersion": 2, "config": {}, "layers": []}'),
])
def test_invalid_manifests(live: Live, content_type: str, body: bytes) -> None:
    reply = live.push_manifest("test/repo", "v1", body, content_type)
    assert reply.status_code == 400, reply.text
    assert reply.json()["errors"][0]["code"] == "MANIFEST_INVALID"


def test_content_type_may_come_from_the_body(live: Live) -> None:
    config, layer = blobs(live)
    body = image_manifest(config, 2, [(layer, 11)])
    reply = live.client.put("/v2/test/repo/manifests/v1", content=body,
                            headers={"Content-Type": ""})
    assert reply.status_code == 201
    assert live.client.get("/v2/test/repo/manifests/v1").headers["content-type"] == OCI_MANIFEST


def test_unknown_manifest(live: Live) -> None:
    live.push_image("test/repo", "v1")
    for ref in ("nope", digest_of(b"nope")):
        reply = live.client.get(f"/v2/test/repo/manifests/{ref}")
        assert reply.status_code == 404
        assert reply.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert live.client.head(f"/v2/test/repo/manifests/{ref}").status_code == 404


def test_if_none_match(live: Live) -> None:
    digest, _ = live.push_image("test/repo", "v1")
    reply = live.client.get("/v2/test/repo/manifests/v1", headers={"If-None-Match": f'"{digest}"'})
    assert reply.status_code == 304


def test_retag_moves_tag(live: Live) -> None:
    first, _ = live.push_image("test/repo", "v1", layer=b"one")
    second, _ = live.push_image("test/repo", "v1", layer=b"two")
    assert first != second
    got = live.client.get("/v2/test/repo/manifests/v1")
    assert got.headers["docker-content-digest"] == second
    assert live.client.get(f"/v2/test/repo/manifests/{first}").status_code == 200


def test_delete_by_tag_keeps_manifest(live: Live) -> None:
    digest, _ = live.push_image("test/repo", "v1")
    assert live.client.delete("/v2/test/repo/manifests/v1").status_code == 202
    assert live.client.get("/v2/test/repo/manifests/v1").status_code == 404
    assert live.client.get(f"/v2/test/repo/manifests/{digest}").status_code == 200
    again = live.client.delete("/v2/test/repo/manifests/v1")
    assert again.status_code == 404
    assert again.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_delete_by_digest_removes_tags(live: Live) -> None:
    digest, _ = live.push_image("test/repo", "v1")
    live.client.put("/v2/test/repo/manifests/v2",
                    content=live.client.get("/v2/test/repo/manifests/v1").content,
                    headers={"Content-Type": OCI_MANIFEST})
    assert live.client.delete(f"/v2/test/repo/manifests/{digest}").status_code == 202
    for ref in ("v1", "v2", digest):
        assert live.client.get(f"/v2/test/repo/manifests/{ref}").status_code == 404
    assert live.client.get("/v2/test/repo/tags/list").json()["tags"] == []
    assert live.client.delete(f"/v2/test/repo/manifests/{digest}").status_code == 404
