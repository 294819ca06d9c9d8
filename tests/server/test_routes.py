"""The sans-I/O pieces the server uses: route matching and byte ranges."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freight.distribution import routes
from freight.distribution.ranges import Unsatisfiable, parse_byte_range, parse_upload_range

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(("path", "expected"), [
    ("/v2/", routes.Route(routes.BASE)),
    ("/v2", routes.Route(routes.BASE)),
    ("/v2/_catalog", routes.Route(routes.CATALOG)),
    ("/v2/a/b/c/tags/list", routes.Route(routes.TAGS, "a/b/c")),
    ("/v2/a/manifests/latest", routes.Route(routes.MANIFEST, "a", "latest")),
    (f"/v2/a/manifests/{D}", routes.Route(routes.MANIFEST, "a", D)),
    (f"/v2/a/blobs/{D}", routes.Route(routes.BLOB, "a", D)),
    (f"/v2/a/blobs/blobs/{D}", routes.Route(routes.BLOB, "a/blobs", D)),
    ("/v2/a/blobs/uploads/", routes.Route(routes.UPLOADS, "a")),
    ("/v2/a/blobs/uploads/abc", routes.Route(routes.UPLOAD, "a", "abc")),
    (f"/v2/a/referrers/{D}", routes.Route(routes.REFERRERS, "a", D)),
    ("/v2/a", None),
    ("/v2/a/manifests/", None),
    ("/v2/a/manifests/x/y", None),
    ("/v1/a/tags/list", None),
])
def test_match(path: str, expected: routes.Route | None) -> None:
    assert routes.match(path) == expected


@pytest.mark.parametrize(("name", "valid"), [
    ("a", True), ("a/b-c/d__e/f.g", True), ("a--b", True), ("..", False), ("a/../b", False),
    ("A", False), ("a/", False), ("/a", False), ("a//b", False), ("_a", False),
    ("a" * 256, False), ("a" * 255, True),
])
def test_valid_name(name: str, valid: bool) -> None:
    assert routes.valid_name(name) is valid


@given(st.text(max_size=80))
def test_valid_names_never_escape(name: str) -> None:
    if routes.valid_name(name):
        assert ".." not in name.split("/") and not name.startswith("/") and "\\" not in name


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 10, None), ("bytes=0-4", 10, (0, 4)), ("bytes=5-", 10, (5, 9)),
    ("bytes=-3", 10, (7, 9)), ("bytes=-30", 10, (0, 9)), ("bytes=2-100", 10, (2, 9)),
    ("bytes=0-1,3-4", 10, None), ("items=0-1", 10, None), ("bytes=5-2", 10, None),
])
def test_byte_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_byte_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10),
                                              ("bytes=0-", 0)])
def test_unsatisfiable_range(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable):
        parse_byte_range(header, size)


@given(st.integers(0, 1000), st.integers(0, 1000), st.integers(1, 1000))
def test_byte_range_stays_inside(first: int, last: int, size: int) -> None:
    try:
        found = parse_byte_range(f"bytes={first}-{last}", size)
    except Unsatisfiable:
        assert first >= size
        return
    if found is not None:
        assert 0 <= found[0] <= found[1] < size


@pytest.mark.parametrize(("header", "expected"), [
    ("0-99", (0, 99)), ("bytes 0-99/100", (0, 99)), ("bytes=5-9", (5, 9)),
    ("100-199/*", (100, 199)), ("9-5", None), ("abc", None), ("-5", None),
])
def test_upload_range(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_upload_range(header) == expected
