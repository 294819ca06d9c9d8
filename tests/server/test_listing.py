"""Tags, catalog and referrers (protocol.md §3.4, §3.6; S4 of §7)."""

from __future__ import annotations

import json

import pytest

from .conftest import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, Live, digest_of, image_manifest

TAGS = ["b", "v1", "C", "v9", "_x", "a", "v10"]


@pytest.fixture
def tagged(live: Live) -> Live:
    _, body = live.push_image("test/repo", TAGS[0])
    for tag in TAGS[1:]:
        assert live.push_manifest("test/repo", tag, body).status_code == 201
    return live


def test_tags_are_sorted(tagged: Live) -> None:
    reply = tagged.client.get("/v2/test/repo/tags/list")
    assert reply.json() == {"name": "test/repo", "tags": sorted(TAGS)}
    assert "link" not in reply.headers


def test_tags_pagination_follows_link(tagged: Live) -> None:
    seen: list[str] = []
    url: str | None = "/v2/test/repo/tags/list?n=3"
    while url:
        reply = tagged.client.get(url)
        page = reply.json()["tags"]
        assert len(page) <= 3
        seen += page
        link = reply.headers.get("link")
        url = link[1:link.index(">")] if link else None
        assert link is None or link.endswith('rel="next"')
    assert seen == sorted(TAGS)


@pytest.mark.parametrize(("query", "expected", "has_link"), [
    ("n=2", ["C", "_x"], True),
    ("n=0", [], False),
    ("n=7", sorted(TAGS), False),
    ("n=100", sorted(TAGS), False),
    ("last=b", ["v1", "v10", "v9"], False),
    ("last=b&n=2", ["v1", "v10"], True),
    ("last=zzz", [], False),
])
def test_tags_n_and_last(tagged: Live, query: str, expected: list[str], has_link: bool) -> None:
    reply = tagged.client.get(f"/v2/test/repo/tags/list?{query}")
    assert reply.json()["tags"] == expected
    assert ("link" in reply.headers) == has_link


@pytest.mark.parametrize("n", ["-1", "x", "1.5"])
def test_bad_n_is_pagination_number_invalid(tagged: Live, n: str) -> None:
    reply = tagged.client.get("/v2/test/repo/tags/list", params={"n": n})
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"


def test_unknown_repository_tags_is_name_unknown(live: Live) -> None:
    reply = live.client.get("/v2/no/such/tags/list")
    assert reply.status_code == 404
    assert reply.json()["errors"][0] == {
        "code": "NAME_UNKNOWN", "message": "repository name not known to registry",
        "detail": {"name": "no/such"}}


def test_catalog(live: Live) -> None:
    for repo in ("zeta", "alpha/one", "alpha/one/nested", "mid"):
        live.push_blob(repo, b"x")
    assert live.client.get("/v2/_catalog").json() == {
        "repositories": ["alpha/one", "alpha/one/nested", "mid", "zeta"]}
    first = live.client.get("/v2/_catalog?n=1")
    assert first.json()["repositories"] == ["alpha/one"]
    assert first.headers["link"] == '</v2/_catalog?n=1&last=alpha%2Fone>; rel="next"'
    rest = live.client.get("/v2/_catalog?n=10&last=alpha/one")
    assert rest.json()["repositories"] == ["alpha/one/nested", "mid", "zeta"]


def push_referrer(live: Live, subject: str, subject_size: int, artifact_type: str,
                  annotations: dict[str, str] | None = None) -> str:
    config = live.push_blob("test/repo", b"{}")
    extra: dict[str, object] = {"subject": {"mediaType": OCI_MANIFEST, "digest": subject,
                                            "size": subject_size},
                                "artifactType": artifact_type}
    if annotations:
        extra["annotations"] = annotations
    body = image_manifest(config, 2, [], **extra)
    reply = live.push_manifest("test/repo", digest_of(body), body)
    assert reply.status_code == 201, reply.text
    assert reply.headers["oci-subject"] == subject
    return digest_of(body)


def test_referrers(live: Live) -> None:
    subject, body = live.push_image("test/repo", "v1")
    sig = push_referrer(live, subject, len(body), "application/example.sig", {"a": "b"})
    sbom = push_referrer(live, subject, len(body), "application/example.sbom")
    reply = live.client.get(f"/v2/test/repo/referrers/{subject}")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == OCI_INDEX
    index = reply.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert set(by_digest) == {sig, sbom}
    assert by_digest[sig]["artifactType"] == "application/example.sig"
    assert by_digest[sig]["annotations"] == {"a": "b"}
    assert by_digest[sig]["mediaType"] == OCI_MANIFEST
    filtered = live.client.get(f"/v2/test/repo/referrers/{subject}",
                               params={"artifactType": "application/example.sbom"})
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sbom]


def test_referrer_may_come_before_its_subject(live: Live) -> None:
    absent = digest_of(b"not pushed yet")
    ref = push_referrer(live, absent, 10, "application/example.sig")
    reply = live.client.get(f"/v2/test/repo/referrers/{absent}")
    assert [d["digest"] for d in reply.json()["manifests"]] == [ref]


def test_artifact_type_falls_back_to_config_type(live: Live) -> None:
    subject, body = live.push_image("test/repo", "v1")
    config = live.push_blob("test/repo", b"{}")
    doc = json.loads(image_manifest(config, 2, [], config_type="application/x-config"))
    doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(body)}
    raw = json.dumps(doc).encode()
    assert live.push_manifest("test/repo", "ref", raw).status_code == 201
    reply = live.client.get(f"/v2/test/repo/referrers/{subject}")
    assert reply.json()["manifests"][0]["artifactType"] == "application/x-config"


def test_deleted_referrer_disappears(live: Live) -> None:
    subject, body = live.push_image("test/repo", "v1")
    ref = push_referrer(live, subject, len(body), OCI_EMPTY)
    live.client.delete(f"/v2/test/repo/manifests/{ref}")
    assert live.client.get(f"/v2/test/repo/referrers/{subject}").json()["manifests"] == []


def test_unknown_digest_gives_empty_index(live: Live) -> None:
    for repo in ("test/repo", "never/pushed"):
        reply = live.client.get(f"/v2/{repo}/referrers/{digest_of(b'x')}")
        assert reply.status_code == 200
        assert reply.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_malformed_referrers_digest_is_400(live: Live) -> None:
    reply = live.client.get("/v2/test/repo/referrers/sha256:nothex")
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["code"] == "DIGEST_INVALID"
