"""splice.relay between real loopback TCP sockets: every byte arrives in order whatever
the pieces and pace of the source and the reader, a source that ends or goes silent is
SourceEnded, a reader that leaves is an OSError, and no descriptor is left open."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freight.server import splice

pytestmark = pytest.mark.skipif(not splice.AVAILABLE, reason="splice(2) is Linux's")


def _pair() -> tuple[socket.socket, socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        near = socket.create_connection(listener.getsockname())
        far, _ = listener.accept()
    near.setblocking(False)
    return near, far


@contextmanager
def _relay_sockets() -> Iterator[tuple[socket.socket, socket.socket, socket.socket,
                                       socket.socket]]:
    """(source writer, source as the relay reads it, target as the relay writes it,
    target reader)."""
    source_in, source_out = _pair()
    target_out, target_in = _pair()
    try:
        yield source_out, source_in, target_out, target_in
    finally:
        for sock in (source_in, source_out, target_out, target_in):
            sock.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _run(coro: object, seconds: float = 30.0) -> int:
    async def bounded() -> int:
        return await asyncio.wait_for(coro, seconds)  # type: ignore[arg-type]
    return asyncio.run(bounded())


def _write(sock: socket.socket, data: bytes, pieces: list[int], pause: float) -> None:
    view, at = memoryview(data), 0
    for size in pieces:
        sock.sendall(view[at:at + size])
        at += size
        if pause:
            time.sleep(pause)
    sock.sendall(view[at:])


def _feed(sock: socket.socket, count: int) -> None:
    """`count` bytes, or as many as go before the relay gives up and its sockets close."""
    with contextlib.suppress(OSError):
        sock.sendall(b"y" * count)


def _read(sock: socket.socket, count: int, out: bytearray, pause: float) -> None:
    while len(out) < count:
        data = sock.recv(min(256 << 10, count - len(out)))
        if not data:
            return
        out += data
        if pause:
            time.sleep(pause)


@settings(max_examples=25, deadline=None)
@given(count=st.integers(1, 5 << 20),
       pieces=st.lists(st.integers(1, 3 << 20), max_size=6),
       extra=st.integers(0, 1000),
       writer_pause=st.sampled_from([0.0, 0.005]),
       reader_pause=st.sampled_from([0.0, 0.002]))
def test_every_byte_arrives_in_order(count: int, pieces: list[int], extra: int,
                                     writer_pause: float, reader_pause: float) -> None:
    data = os.urandom(count + extra)  # bytes past `count` stay in the source's socket
    before = _open_fds()
    with _relay_sockets() as (writer, source, target, reader):
        received = bytearray()
        threads = [threading.Thread(target=_write, args=(writer, data, pieces, writer_pause)),
                   threading.Thread(target=_read, args=(reader, count, received, reader_pause))]
        for thread in threads:
            thread.start()
        moved = _run(splice.relay(source.fileno(), target.fileno(), count, timeout=10))
        for thread in threads:
            thread.join(30)
        assert moved == count
        assert bytes(received) == data[:count]
        if extra:  # never read past `count`: the rest is the next reply's
            assert source.recv(extra + 1, socket.MSG_PEEK) == data[count:]
    assert _open_fds() == before


def test_a_source_that_ends_short_is_source_ended() -> None:
    before = _open_fds()
    with _relay_sockets() as (writer, source, target, reader):
        writer.sendall(b"x" * 1000)
        writer.shutdown(socket.SHUT_WR)
        with pytest.raises(splice.SourceEnded, match="after 1000 of 5000 bytes"):
            _run(splice.relay(source.fileno(), target.fileno(), 5000, timeout=10))
        assert reader.recv(2000) == b"x" * 1000
    assert _open_fds() == before


def test_a_silent_source_is_source_ended_after_the_timeout() -> None:
    before = _open_fds()
    with _relay_sockets() as (writer, source, target, _reader):
        writer.sendall(b"x" * 10)
        with pytest.raises(splice.SourceEnded, match="sent nothing"):
            _run(splice.relay(source.fileno(), target.fileno(), 5000, timeout=0.3))
    assert _open_fds() == before


def test_a_reader_that_leaves_is_an_os_error() -> None:
    before = _open_fds()
    with _relay_sockets() as (writer, source, target, reader):
        reader.close()
        feeding = threading.Thread(target=_feed, args=(writer, 8 << 20), daemon=True)
        feeding.start()
        with pytest.raises(OSError):
            _run(splice.relay(source.fileno(), target.fileno(), 8 << 20, timeout=10))
    assert _open_fds() == before


def test_the_loop_serves_others_while_a_relay_waits() -> None:
    """A relay waits on the loop (no blocking call): another task runs meanwhile."""
    async def both() -> list[str]:
        done: list[str] = []
        with _relay_sockets() as (writer, source, target, reader):
            async def other() -> None:
                await asyncio.sleep(0.05)
                done.append("other")
                writer.sendall(b"z" * 100)

            task = asyncio.ensure_future(other())
            await splice.relay(source.fileno(), target.fileno(), 100, timeout=10)
            done.append("relay")
            await task
            assert reader.recv(200) == b"z" * 100
        return done

    assert asyncio.run(asyncio.wait_for(both(), 30)) == ["other", "relay"]


class _Served(asyncio.Protocol):
    """The server side of a client connection, with uvicorn's flow control on its
    transport, as protocol._splice finds it in a request's cycle."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from uvicorn.protocols.http.flow_control import FlowControl

        self.transport = cast(asyncio.Transport, transport)
        self.flow = FlowControl(self.transport)
        # A small send buffer: most of what is written waits in the transport's buffer.
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                     16 << 10)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()


@settings(max_examples=20, deadline=None)
@given(preamble=st.integers(0, 6 << 20), head=st.integers(0, 2 << 20),
       body=st.integers(1, 3 << 20), reader_pause=st.sampled_from([0.0, 0.003]))
def test_a_splice_begins_only_once_what_the_transport_holds_has_left(
        preamble: int, head: int, body: int, reader_pause: float) -> None:
    """The response head and the bytes read from the store before (`head`) go through
    the transport's buffer; the spliced rest writes to the socket behind its back. Under
    any pace of the client, the client reads them in order: nothing spliced overtakes a
    byte still buffered."""
    from freight.server import protocol

    first = os.urandom(preamble)
    received_before = os.urandom(head)
    rest = os.urandom(body)
    count = head + body

    async def serve() -> bytes:
        loop = asyncio.get_running_loop()
        served = _Served()
        server = await loop.create_server(lambda: served, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
        client.connect(("127.0.0.1", port))
        got = bytearray()
        reading = threading.Thread(target=_read, args=(client, preamble + count, got,
                                                       reader_pause))
        with _relay_sockets() as (writer, source, _target, _reader):
            feeding = threading.Thread(target=_write, args=(writer, rest, [], 0.0))
            try:
                while not hasattr(served, "transport"):
                    await asyncio.sleep(0.001)
                reading.start()
                feeding.start()
                served.transport.write(first)  # the response head, as uvicorn writes it
                cycle = SimpleNamespace(transport=served.transport, flow=served.flow)
                await protocol._splice(cast(Any, cycle), received_before, source.fileno(),
                                       count)
                await loop.run_in_executor(None, reading.join, 30)
            finally:
                feeding.join(30)
                served.transport.close()
                client.close()
                server.close()
        return bytes(got)

    got = asyncio.run(asyncio.wait_for(serve(), 60))
    assert len(got) == preamble + count
    assert got == first + received_before + rest
