"""protocol.md §7 C1: the URL that closes an upload, for every shape of Location."""

import pytest

from freight.digest import Digest
from freight.distribution import headers
from freight.distribution.urls import resolve_location, same_origin, with_digest

D = Digest.of(b"x")
ENC = str(D).replace(":", "%3A")
REQ = "http://127.0.0.1:5000/v2/team/app/blobs/uploads/"


@pytest.mark.parametrize(("location", "expected"), [
    ("/v2/team/app/blobs/uploads/u1", f"http://127.0.0.1:5000/v2/team/app/blobs/uploads/u1?digest={ENC}"),
    ("u2", f"http://127.0.0.1:5000/v2/team/app/blobs/uploads/u2?digest={ENC}"),
    ("http://127.0.0.1:5000/v2/team/app/blobs/uploads/u3?_state=AbC%3D%3D",
     f"http://127.0.0.1:5000/v2/team/app/blobs/uploads/u3?_state=AbC%3D%3D&digest={ENC}"),
    ("/up?a=1&b=two&_state=x%2By", f"http://127.0.0.1:5000/up?a=1&b=two&_state=x%2By&digest={ENC}"),
    ("https://storage.example/put?X-Sig=abc%3D", f"https://storage.example/put?X-Sig=abc%3D&digest={ENC}"),
])
def test_digest_is_merged_never_appended(location: str, expected: str) -> None:
    url = with_digest(resolve_location(location, REQ), D)
    assert url == expected
    assert url.count("?") == 1
    assert "?&" not in url


def test_other_host_is_another_origin() -> None:
    assert not same_origin("https://storage.example/put", REQ)
    assert same_origin("http://127.0.0.1:5000/x", REQ)
    assert same_origin("https://h/x", "https://h:443/y")


@pytest.mark.parametrize(("value", "end"), [("0-0", 0), ("0-99", 99), ("bytes=0-5", 5),
                                             (None, None), ("junk", None)])
def test_range_reply(value: str | None, end: int | None) -> None:
    assert headers.parse_range_end(value) == end


def test_content_range_has_no_bytes_prefix() -> None:
    assert headers.content_range(0, 99) == "0-99"
    assert headers.parse_content_range("bytes 0-99/100") is None
    assert headers.parse_content_range("5-3") is None


def test_next_link() -> None:
    value = '</v2/_catalog?last=other%2Frepo&n=1>; rel="next"'
    assert headers.parse_next_link(value) == "/v2/_catalog?last=other%2Frepo&n=1"
