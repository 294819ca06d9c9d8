"""BlobStream's reads over the chunks a network delivers: exact sizes, nothing lost or
repeated, however the chunks and the reads are cut."""

from __future__ import annotations

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.sources.registry import BlobStream


def _stream(chunks: list[bytes]) -> BlobStream:
    response = httpx.Response(200, stream=httpx.ByteStream(b""))
    response.iter_raw = lambda *a, **k: iter(chunks)  # type: ignore[method-assign]

    def reopen(offset: int) -> httpx.Response:
        raise AssertionError(f"no resume expected (asked at {offset})")

    return BlobStream(response, "registry.test", reopen)


@settings(max_examples=300, deadline=None)
@given(chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=12),
       reads=st.lists(st.integers(min_value=0, max_value=60), max_size=20))
def test_reads_return_exactly_what_was_asked_in_order(chunks: list[bytes],
                                                      reads: list[int]) -> None:
    data = b"".join(chunks)
    stream = _stream(chunks)
    got, offset = [], 0
    for n in reads:
        block = stream.read(n)
        assert block == data[offset:offset + n]  # a short read only at the end
        got.append(block)
        offset += len(block)
    got.append(stream.read())  # the rest, whole
    assert b"".join(got) == data
    assert stream.read(10) == b""
