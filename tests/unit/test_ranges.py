"""Range headers both ways: what a blob GET's `Range` asks for (RFC 9110 §14), the upload
`Content-Range` a registry accepts, the `Range` and `Link` a client reads back."""

from __future__ import annotations

import pytest

from freight.distribution import headers
from freight.distribution.ranges import Unsatisfiable, parse_byte_range, parse_upload_range
from freight.distribution.routes import next_link
from freight.distribution.urls import same_origin

SIZE = 1000


@pytest.mark.parametrize(("value", "expected"), [
    ("bytes=0-99", (0, 99)),
    (" bytes=100-199 ", (100, 199)),
    ("bytes=500-", (500, 999)),  # open end: to the last byte
    ("bytes=900-5000", (900, 999)),  # an end past the content is cut to it
    ("bytes=-100", (900, 999)),  # suffix: the last 100 bytes
    ("bytes=-5000", (0, 999)),  # a suffix longer than the content: all of it
    ("bytes=999-999", (999, 999)),
    ("bytes=5-4", None),  # backwards: ignored, the whole blob is sent
    ("bytes=-", None), ("bytes=0-1,5-9", None), ("items=0-1", None), ("", None), (None, None),
])
def test_blob_range_requests(value: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_byte_range(value, SIZE) == expected


@pytest.mark.parametrize(("value", "size"), [("bytes=1000-", SIZE), ("bytes=-0", SIZE),
                                             ("bytes=-10", 0), ("bytes=0-", 0)])
def test_a_range_with_no_byte_in_the_blob_is_unsatisfiable(value: str, size: int) -> None:
    with pytest.raises(Unsatisfiable, match=value):
        parse_byte_range(value, size)


@pytest.mark.parametrize(("value", "expected"), [
    ("0-99", (0, 99)), (" 5-5 ", (5, 5)), ("bytes 0-99/100", (0, 99)), ("bytes=10-19/*", (10, 19)),
    ("100-1048675", (100, 1048675)),
    ("9-8", None), ("0-", None), ("-5", None), ("a-b", None), ("0-99/100/1", None),
])
def test_upload_content_ranges_a_registry_accepts(value: str,
                                                  expected: tuple[int, int] | None) -> None:
    assert parse_upload_range(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("0-99", (0, 99)), (" 7-7 ", (7, 7)), ("100-1048675", (100, 1048675)),
    ("9-8", None), ("bytes 0-9", None), ("0-9x", None),
])
def test_content_range_as_the_client_writes_it(value: str,
                                               expected: tuple[int, int] | None) -> None:
    assert headers.parse_content_range(value) == expected
    if expected:
        assert headers.content_range(*expected) == value.strip()


@pytest.mark.parametrize(("value", "expected"), [
    ("0-99", 99), ("bytes=0-4", 4), ("0-0", 0), (None, None), ("", None), ("junk", None)])
def test_upload_range_reply(value: str | None, expected: int | None) -> None:
    assert headers.parse_range_end(value) == expected


def test_upload_range_of_a_size_uses_distributions_0_0() -> None:
    assert [headers.upload_range(n) for n in (0, 1, 2, 100)] == ["0-0", "0-0", "0-1", "0-99"]


@pytest.mark.parametrize(("value", "expected"), [
    ('</v2/app/tags/list?n=2&last=b>; rel="next"', "/v2/app/tags/list?n=2&last=b"),
    ("<https://r.example/v2/_catalog?last=x>;rel=next", "https://r.example/v2/_catalog?last=x"),
    ('<https://r.example/other>; rel="prev"', None), (None, None), ("", None),
])
def test_next_page_link(value: str | None, expected: str | None) -> None:
    assert headers.parse_next_link(value) == expected


def test_the_link_a_server_writes_is_the_one_a_client_follows() -> None:
    link = next_link("/v2/team/app/tags/list", 50, "v1.2")
    assert headers.parse_next_link(link) == "/v2/team/app/tags/list?n=50&last=v1.2"


@pytest.mark.parametrize(("a", "b", "same"), [
    ("http://r.example/v2/", "http://r.example:80/v2/x", True),
    ("https://r.example/v2/", "https://r.example:443/x", True),
    ("http://r.example/", "http://r.example:81/", False),
    ("https://r.example/", "https://r.example:80/", False),
    ("https://r.example:80/", "https://r.example/", False),
    ("http://r.example/", "https://r.example/", False),
    ("https://r.example/", "https://storage.example/", False),
])
def test_credentials_travel_only_to_the_same_origin(a: str, b: str, same: bool) -> None:
    assert same_origin(a, b) is same
