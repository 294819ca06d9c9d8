"""s3_loop's reading of a store's replies, with no network: heads split anywhere, which
replies are streamed and which go back to boto3, when a connection is kept or dropped,
and reading paused while a client is slow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.server.storage import s3_loop
from freight.server.storage.s3_loop import Body, Link, LoopReads, StoreGone


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.paused = self.aborted = False

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class FakeReads(LoopReads):
    def __init__(self) -> None:  # no DirectReads: only the pool is used
        self.kept: list[Link] = []

    def keep(self, link: Link) -> None:
        self.kept.append(link)


def _link(loop: asyncio.AbstractEventLoop, *pieces: bytes) -> tuple[Link, FakeTransport]:
    link, transport = Link(loop), FakeTransport()
    link.connection_made(transport)
    for piece in pieces:
        link.data_received(piece)
    return link, transport


def _reply(status: int = 200, length: int = 5, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status} OK\r\nContent-Length: {length}\r\n{extra}\r\n").encode()


def _send(*pieces: bytes, length: int = 5, status: int = 200) -> tuple[Body | None, FakeTransport]:
    async def run() -> tuple[Body | None, FakeTransport]:
        link, transport = _link(asyncio.get_running_loop(), *pieces)
        reads = FakeReads()
        return await reads._send(link, b"GET / HTTP/1.1\r\n\r\n", length, status), transport
    return asyncio.run(run())


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(1, 60), max_size=5))
def test_a_head_split_anywhere_is_read_and_the_body_follows(cuts: list[int]) -> None:
    whole = _reply(extra="ETag: \"x\"\r\n") + b"hello"
    pieces, at = [], 0
    for cut in sorted(set(cuts)):
        if at < cut < len(whole):
            pieces.append(whole[at:cut])
            at = cut
    pieces.append(whole[at:])

    async def run() -> bytes:
        link, _ = _link(asyncio.get_running_loop(), *pieces)
        body = await FakeReads()._send(link, b"GET", 5, 200)
        assert body is not None
        got = b""
        while piece := await body.read():
            got += piece
        return got

    assert asyncio.run(run()) == b"hello"


@pytest.mark.parametrize("reply", [
    _reply(404), _reply(206), _reply(length=6), _reply(extra="Transfer-Encoding: chunked\r\n"),
    b"HTTP/1.1 200 OK\r\n\r\n",  # no Content-Length
], ids=["404", "206-for-200", "other-length", "chunked", "no-length"])
def test_replies_that_are_not_plain_go_back_to_boto3(reply: bytes) -> None:
    body, _ = _send(reply + b"hello")
    assert body is None


@pytest.mark.parametrize("head", [b"SSH-2.0-OpenSSH\r\n\r\n", b"x" * 70_000],
                         ids=["not-http", "too-long"])
def test_a_head_that_is_not_http_is_refused(head: bytes) -> None:
    with pytest.raises(ValueError):
        _send(head)


def test_a_reply_that_ends_before_its_head_is_store_gone() -> None:
    async def run() -> None:
        link, _ = _link(asyncio.get_running_loop(), b"HTTP/1.1 200")
        link.eof_received()
        await FakeReads()._send(link, b"GET", 5, 200)

    with pytest.raises(StoreGone):
        asyncio.run(run())


@pytest.mark.parametrize(("extra", "version", "kept"), [
    ("", "1.1", True), ("Connection: close\r\n", "1.1", False), ("", "1.0", False)])
def test_a_connection_is_kept_only_after_a_whole_keep_alive_reply(
        extra: str, version: str, kept: bool) -> None:
    async def run() -> tuple[FakeReads, FakeTransport]:
        head = _reply(extra=extra).replace(b"HTTP/1.1", f"HTTP/{version}".encode())
        link, transport = _link(asyncio.get_running_loop(), head + b"hello")
        reads = FakeReads()
        body = await reads._send(link, b"GET", 5, 200)
        assert body is not None and await body.read() == b"hello"
        assert await body.read() == b""
        return reads, transport

    reads, transport = asyncio.run(run())
    assert bool(reads.kept) is kept and transport.aborted is not kept


def test_a_half_read_or_overlong_reply_drops_its_connection() -> None:
    async def run() -> list[tuple[list[Link], bool]]:
        loop, seen = asyncio.get_running_loop(), []
        for data in (b"he", b"hello+more"):  # half read; more bytes than Content-Length
            link, transport = _link(loop, _reply() + data)
            reads = FakeReads()
            body = await reads._send(link, b"GET", 5, 200)
            assert body is not None
            piece = await body.read()
            assert piece == data[:5]
            body.close()
            seen.append((reads.kept, transport.aborted))
        return seen

    assert asyncio.run(run()) == [([], True), ([], True)]


def test_reading_pauses_while_a_client_is_slow_and_resumes() -> None:
    async def run() -> None:
        link, transport = _link(asyncio.get_running_loop())
        piece = b"x" * (256 << 10)
        for _ in range(4):
            link.data_received(piece)
        assert transport.paused  # PAUSE_AT (1 MiB) waiting
        await link.take()
        assert transport.paused  # 768 KiB still waiting
        await link.take()
        await link.take()
        assert not transport.paused  # under half of PAUSE_AT

    asyncio.run(run())


def test_a_silent_store_is_store_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_loop, "READ_SECONDS", 0.05)

    async def run() -> None:
        link, _ = _link(asyncio.get_running_loop())
        await link.take()

    with pytest.raises(StoreGone, match="sent nothing"):
        asyncio.run(asyncio.wait_for(run(), 10))


def test_a_spliced_body_is_counted_and_its_connection_kept() -> None:
    async def run() -> tuple[FakeReads, tuple[int, bytes] | None, FakeTransport]:
        link, transport = _link(asyncio.get_running_loop(), _reply(length=10) + b"hel")
        transport.get_extra_info = lambda name, default=None: (  # type: ignore[method-assign]
            _Socket() if name == "socket" else default)
        reads = FakeReads()
        body = await reads._send(link, b"GET", 10, 200)
        assert body is not None
        detached = body.detach()
        assert transport.paused
        body.spliced(7)
        body.close()
        return reads, detached, transport

    reads, detached, transport = asyncio.run(run())
    assert detached == (7, b"hel")
    assert len(reads.kept) == 1 and not transport.paused and not transport.aborted


class _Socket:
    def fileno(self) -> int:
        return 7
