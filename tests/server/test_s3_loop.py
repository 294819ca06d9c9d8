"""Blob GETs on S3 storage read the store on the event loop (s3_loop.py) and splice large
bodies from the store's socket to the client's (splice.py): against SeaweedFS, through a
TCP relay that can cut, stall or drop the store's connections. The client always gets the
right bytes or a body that ends short (never wrong or padded bytes), and the server goes on
serving."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from freight.server import protocol, splice
from freight.server.storage import s3_loop
from freight.server.storage.s3 import S3Storage
from support.seaweed import Seaweed
from support.tcp_proxy import TCPProxy

from .conftest import Live, serving

pytestmark = pytest.mark.integration

BIG = os.urandom(3 << 20)  # spliced (at least exchange.SPLICE_MIN)
SMALL = os.urandom(300 << 10)  # sent as the pieces the loop receives


class Calls:
    def __init__(self) -> None:
        self.relays = self.bodies = self.connects = 0


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    seen = Calls()
    relay, body, connect = splice.relay, s3_loop.LoopReads.body, s3_loop.LoopReads._connect

    async def counted_relay(*args: Any, **kwargs: Any) -> int:
        seen.relays += 1
        return await relay(*args, **kwargs)

    async def counted_body(self: s3_loop.LoopReads, *args: Any, **kwargs: Any) -> Any:
        seen.bodies += 1
        return await body(self, *args, **kwargs)

    async def counted_connect(self: s3_loop.LoopReads) -> s3_loop.Link:
        seen.connects += 1
        return await connect(self)

    monkeypatch.setattr(splice, "relay", counted_relay)
    monkeypatch.setattr(s3_loop.LoopReads, "body", counted_body)
    monkeypatch.setattr(s3_loop.LoopReads, "_connect", counted_connect)
    return seen


@pytest.fixture
def store(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Iterator[TCPProxy]:
    """The relay in front of SeaweedFS, as the storage's endpoint."""
    where = urlsplit(seaweed.endpoint)
    proxy = TCPProxy((where.hostname or "127.0.0.1", where.port or 80)).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def registry(seaweed: Seaweed, store: TCPProxy, tmp_path: Path) -> Iterator[Live]:
    with serving(tmp_path, storage=S3Storage(seaweed.url())) as live:
        yield live


def _get(live: Live, digest: str, byte_range: str | None = None) -> httpx.Response:
    headers = {"Range": byte_range} if byte_range else {}
    return live.client.get(f"/v2/app/blobs/{digest}", headers=headers)


def test_large_bodies_are_spliced_small_ones_sent_from_the_loop(
        registry: Live, calls: Calls) -> None:
    big, small = registry.push_blob("app", BIG), registry.push_blob("app", SMALL)
    assert _get(registry, big).content == BIG
    assert calls.relays == 1
    assert _get(registry, small).content == SMALL
    assert calls.relays == 1 and calls.bodies == 2
    part = _get(registry, big, "bytes=5-2097160")
    assert part.status_code == 206 and part.content == BIG[5:2097161]
    assert calls.relays == 2
    part = _get(registry, small, "bytes=1000-1999")
    assert part.status_code == 206 and part.content == SMALL[1000:2000]
    assert calls.relays == 2 and calls.bodies == 4


def test_an_empty_blob_is_an_empty_body(registry: Live) -> None:
    digest = registry.push_blob("app", b"")
    reply = _get(registry, digest)
    assert reply.status_code == 200 and reply.content == b""
    assert _get(registry, digest).content == b""  # the connection is still good


def test_connections_to_the_store_are_kept_alive(registry: Live, calls: Calls) -> None:
    big, small = registry.push_blob("app", BIG), registry.push_blob("app", SMALL)
    for _ in range(5):
        assert _get(registry, big).content == BIG
        assert _get(registry, small).content == SMALL
    assert calls.bodies == 10 and calls.connects == 1


def test_a_connection_the_store_closed_is_replaced(registry: Live, store: TCPProxy,
                                                   calls: Calls) -> None:
    big = registry.push_blob("app", BIG)
    assert _get(registry, big).content == BIG
    store.drop_all()  # as a store closing its idle keep-alive connections
    assert _get(registry, big).content == BIG
    assert calls.connects == 2


@pytest.mark.parametrize("data", [BIG, SMALL], ids=["spliced", "pieces"])
def test_a_reply_the_store_cuts_ends_the_body_short(registry: Live, store: TCPProxy,
                                                    data: bytes) -> None:
    digest = registry.push_blob("app", data)
    store.cut_after, _ = len(data) // 2, store.drop_all()
    _expect_short(registry, digest, len(data))
    store.cut_after, _ = None, store.drop_all()
    assert _get(registry, digest).content == data  # and the server goes on


@pytest.mark.parametrize("data", [BIG, SMALL], ids=["spliced", "pieces"])
def test_a_store_gone_silent_ends_the_body_short(registry: Live, store: TCPProxy,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 data: bytes) -> None:
    monkeypatch.setattr(protocol, "STORE_SILENCE", 0.5)
    monkeypatch.setattr(s3_loop, "READ_SECONDS", 0.5)
    digest = registry.push_blob("app", data)
    store.stall_after, _ = len(data) // 2, store.drop_all()
    _expect_short(registry, digest, len(data))
    store.stall_after, _ = None, store.drop_all()
    assert _get(registry, digest).content == data


@pytest.mark.parametrize("data", [BIG, SMALL], ids=["spliced", "pieces"])
def test_a_client_that_leaves_mid_body_costs_its_connection_only(
        registry: Live, calls: Calls, data: bytes) -> None:
    digest = registry.push_blob("app", data)
    for _ in range(3):
        with httpx.Client(base_url=registry.url, timeout=30) as client, \
                client.stream("GET", f"/v2/app/blobs/{digest}") as reply:
            next(reply.iter_raw(64 << 10))  # then hang up with the rest unread
    # Whether the server had sent all before it saw the client go depends on socket
    # buffers; either way the next GET is whole (a half-read store reply is not reused).
    assert _get(registry, digest).content == data
    assert calls.bodies == 4 and calls.connects <= 4


def _expect_short(live: Live, digest: str, size: int) -> None:
    """The reply announces `size` bytes and ends before them, with the right bytes so far."""
    with live.client.stream("GET", f"/v2/app/blobs/{digest}") as reply:
        assert reply.status_code == 200
        assert reply.headers["content-length"] == str(size)
        got = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            for piece in reply.iter_raw():
                got += piece
    assert 0 < len(got) < size
