"""The registry protocol as both sides share it: every path a client builds is the route the
server matches, and the error body the server writes is the one a client reads."""

from __future__ import annotations

import json

import pytest

from freight.digest import Digest
from freight.distribution import routes, urls
from freight.distribution.errors import CODES, error_body, parse_error_body, status_of

D = Digest.of(b"x")
REPO = "team/sub.app"


@pytest.mark.parametrize(("path", "route"), [
    ("/v2", routes.Route(routes.BASE)),
    (urls.tags_path(REPO), routes.Route(routes.TAGS, REPO)),
    (urls.manifest_path(REPO, "v1"), routes.Route(routes.MANIFEST, REPO, "v1")),
    (urls.manifest_path(REPO, str(D)), routes.Route(routes.MANIFEST, REPO, str(D))),
    (urls.blob_path(REPO, D), routes.Route(routes.BLOB, REPO, str(D))),
    (urls.uploads_path(REPO), routes.Route(routes.UPLOADS, REPO)),
    (urls.uploads_path(REPO) + "abc-1", routes.Route(routes.UPLOAD, REPO, "abc-1")),
    (urls.referrers_path(REPO, D), routes.Route(routes.REFERRERS, REPO, str(D))),
])
def test_every_path_a_client_builds_is_a_route_the_server_knows(
        path: str, route: routes.Route) -> None:
    assert routes.match(path) == route


def test_the_paths_without_a_repository() -> None:
    assert routes.match(urls.ping_path()) == routes.Route(routes.BASE)
    assert routes.match(urls.catalog_path()) == routes.Route(routes.CATALOG)


def test_a_query_value_is_escaped_whole() -> None:
    assert urls.add_query("https://r.example/up", "next", "/a b") == (
        "https://r.example/up?next=%2Fa%20b")


@pytest.mark.parametrize("path", ["/V2/", "/v2/_CATALOG", "/v3/", "/", "/v2/app"])
def test_other_paths_are_no_route(path: str) -> None:
    assert routes.match(path) is None


def test_the_longest_name_allowed_and_one_more() -> None:
    longest = "/".join(["a" * 63] * 4)  # 255 characters
    assert len(longest) == routes.MAX_NAME_LENGTH and routes.valid_name(longest)
    assert not routes.valid_name(longest + "a")
    assert not routes.valid_name("Team/app") and not routes.valid_name("a/../b")


def test_a_manifest_reference_with_a_colon_is_a_digest() -> None:
    assert routes.looks_like_digest(str(D)) and not routes.looks_like_digest("v1.2")
    assert routes.valid_tag("v1.2") and not routes.valid_tag(".v1")


@pytest.mark.parametrize("code", sorted(CODES))
def test_each_error_the_server_writes_the_client_reads_back(code: str) -> None:
    body = error_body(code)
    (entry,) = parse_error_body(body)
    assert (entry.code, entry.message, entry.detail) == (code, CODES[code][1], None)
    assert "detail" not in json.loads(body)["errors"][0]
    assert status_of(code) == CODES[code][0]


def test_an_error_with_its_own_message_and_detail() -> None:
    body = error_body("DIGEST_INVALID", "sha256:1 is not sha256:2", {"expected": "sha256:2"})
    (entry,) = parse_error_body(body)
    assert entry.message == "sha256:1 is not sha256:2"
    assert entry.detail == {"expected": "sha256:2"}
    (falsy,) = parse_error_body(error_body("UNKNOWN", detail=0))
    assert falsy.detail == 0  # a detail is kept even when it is falsy


def test_an_unknown_code_is_a_server_error_and_names_itself() -> None:
    assert status_of("NO_SUCH_CODE") == 500
    (entry,) = parse_error_body(error_body("NO_SUCH_CODE"))
    assert entry.message == "NO_SUCH_CODE"


def test_a_registry_is_spoken_to_over_https_unless_told_otherwise() -> None:
    assert urls.base_url("r.example:5000", plain_http=False) == "https://r.example:5000"
    assert urls.base_url("127.0.0.1:5000", plain_http=True) == "http://127.0.0.1:5000"
