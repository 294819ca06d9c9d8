"""The referrers API pages with `Link`, filters with `OCI-Filters-Applied`, and manifest
reads negotiate `Accept` (server/referrers.py)."""

from __future__ import annotations

import pytest

from .conftest import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Live, image_manifest


def _subject_with_referrers(live: Live, count: int) -> tuple[str, list[str]]:
    subject, body = live.push_image("test/repo", "v1")
    made = []
    config = live.push_blob("test/repo", b"{}")
    for i in range(count):
        kind = "application/spdx+json" if i % 2 else "application/vnd.in-toto+json"
        layer = live.push_blob("test/repo", f"doc {i}".encode())
        raw = image_manifest(config, 2, [(layer, len(f"doc {i}"))], artifactType=kind,
                             subject={"mediaType": OCI_MANIFEST, "digest": subject,
                                      "size": len(body)})
        reply = live.push_manifest("test/repo", f"r{i}", raw)
        assert reply.headers["oci-subject"] == subject
        made.append(reply.headers["docker-content-digest"])
    return subject, made


def test_referrers_pages_follow_link_to_every_entry(live: Live) -> None:
    subject, made = _subject_with_referrers(live, 5)
    url, seen, pages = f"/v2/test/repo/referrers/{subject}?n=2", [], 0
    while url:
        reply = live.client.get(url)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == OCI_INDEX
        seen += [d["digest"] for d in reply.json()["manifests"]]
        link = reply.headers.get("link")
        url = link[link.index("<") + 1:link.index(">")] if link else ""
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def test_filter_is_applied_across_pages_and_said(live: Live) -> None:
    subject, _ = _subject_with_referrers(live, 5)
    reply = live.client.get(f"/v2/test/repo/referrers/{subject}",
                            params={"artifactType": "application/spdx+json", "n": "1"})
    assert reply.headers["oci-filters-applied"] == "artifactType"
    assert "artifactType=application%2Fspdx%2Bjson" in reply.headers["link"]
    assert [d["artifactType"] for d in reply.json()["manifests"]] == ["application/spdx+json"]


def test_bad_page_size_is_400(live: Live) -> None:
    subject, _ = _subject_with_referrers(live, 1)
    reply = live.client.get(f"/v2/test/repo/referrers/{subject}?n=x")
    assert reply.status_code == 400


@pytest.mark.parametrize(("accept", "status"), [
    (DOCKER_MANIFEST, 404),  # a Docker client asking only for schema2
    (f"{DOCKER_MANIFEST}, {OCI_MANIFEST}", 200),
    ("*/*", 200),
    (None, 200),
    ("application/json", 200),  # names no manifest type: not negotiating
])
def test_accept_negotiation_never_sends_what_the_client_cannot_read(
        live: Live, accept: str | None, status: int) -> None:
    live.push_image("test/repo", "v1")
    headers = {"Accept": accept} if accept else {}
    for method in ("GET", "HEAD"):
        reply = live.client.request(method, "/v2/test/repo/manifests/v1", headers=headers)
        assert reply.status_code == status
        if status == 200:
            assert reply.headers["content-type"] == OCI_MANIFEST
    if status == 404:
        got = live.client.get("/v2/test/repo/manifests/v1", headers=headers)
        assert got.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
