"""uvicorn's h11 protocol with a deadline for the request line and headers (slowloris).

uvicorn times out idle keep-alive connections, but not a client that sends a header byte
every few seconds: each byte cancels the keep-alive timer, and nothing else runs. This
protocol arms a deadline when it waits for a request (connection made, previous response
done) and disarms it once h11 has the whole head; a connection still inside its headers at
the deadline is closed. h11's `max_incomplete_event_size` bounds the bytes buffered meanwhile;
the app refuses a head that grew larger in one read (exchange.MAX_HEADER_BYTES, 431).

It also serves the ASGI "Zero Copy Send" extension (`http.response.zerocopysend`) on plain
HTTP connections: a file body goes from the page cache to the socket with `loop.sendfile`
(os.sendfile), with no read into Python, no thread hop and no copy through h11 or the
transport's buffer, which is what bounded large blob GETs on the filesystem. h11 is kept in
step with its documented sendfile idiom: a `Data` event whose payload is only a length.

uvicorn is imported here only when a server starts (start-up speed of the CLI).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle

from freight.distribution.errors import error_body
from freight.server import splice
from freight.server.exchange import SPLICE, ZEROCOPY

STORE_SILENCE = 60.0  # seconds a spliced body's source may send nothing (botocore's read timeout)
TLS_HANDSHAKE = b"\x16"  # the first byte of a TLS handshake record (a ClientHello)


def guarded_h11(header_timeout: float, max_header_bytes: int) -> type[asyncio.Protocol]:
    """An H11Protocol class closing connections whose headers take over `header_timeout` s,
    answering requests h11 refuses with a spec error body."""

    class GuardedH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.app = _with_zerocopy(self.app)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if data[:1] == TLS_HANDSHAKE and self._fresh():
                self._refuse_tls()  # before h11: it would log "Invalid HTTP request received."
                return
            super().data_received(data)
            if self._deadline is not None and self.conn.their_state is not h11.IDLE:
                self._disarm()  # the head is complete: the body has its own pace

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def send_400_response(self, msg: str) -> None:
            """A request h11 cannot parse: a spec error body, as for every other refusal."""
            too_long = len(self.conn.trailing_data[0]) > max_header_bytes
            status, code, message = ((431, "SIZE_INVALID", "request head too large")
                                     if too_long else
                                     (400, "UNSUPPORTED", "malformed HTTP request"))
            self._reply(status, code, message)

        def _reply(self, status: int, code: str, message: str) -> None:
            """Answer with a spec error body and close the connection."""
            body = error_body(code, message)
            headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                       (b"content-length", str(len(body)).encode())]
            for event in (h11.Response(status_code=status, headers=headers),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event) or b"")
            self.transport.close()

        def _fresh(self) -> bool:
            """Nothing received on this connection yet."""
            return self.cycle is None and self.conn.their_state is h11.IDLE \
                and not self.conn.trailing_data[0]

        def _refuse_tls(self) -> None:
            """A TLS ClientHello on this plain-HTTP server (clients that probe, as freight and
            docker do on loopback): an HTTP 400 they recognise, without a warning logged."""
            self._reply(400, "UNSUPPORTED", "this registry speaks plain HTTP, not HTTPS")

        def _expired(self) -> None:
            self._deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11


class _Length:
    """h11's sendfile placeholder: a body piece that is only a length (h11 counts it against
    Content-Length and hands it back from `send_with_data_passthrough`, untouched)."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count


def _with_zerocopy(app: Any) -> Any:
    """`app`, offered the zero-copy extensions on connections without TLS (sendfile and
    splice write to the socket itself, so they cannot go through a TLS transport)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        cycle = getattr(send, "__self__", None)
        if scope.get("type") == "http" and isinstance(cycle, RequestResponseCycle) \
                and cycle.transport.get_extra_info("sslcontext") is None:
            extensions = scope.setdefault("extensions", {})
            extensions[ZEROCOPY] = {}
            if splice.AVAILABLE:
                extensions[SPLICE] = {}
            send = functools.partial(_send, cycle, send)
        await app(scope, receive, send)

    return wrapped


async def _send(cycle: RequestResponseCycle, send: Any, message: Any) -> None:
    """uvicorn's `send`, plus the zero-copy messages: `count` bytes of `file` from `offset`
    (ZEROCOPY), or `head` and then the rest of `count` bytes from socket `fd` (SPLICE).

    A source shorter than `count` or a write that fails closes the connection (the body
    ends short, never padded) and raises OSError; the response then counts as cut.
    """
    if message["type"] not in (ZEROCOPY, SPLICE):
        await send(message)
        return
    if cycle.disconnected:
        return
    if not cycle.response_started or cycle.response_complete:
        raise RuntimeError(f"unexpected ASGI message {message['type']!r}")
    if cycle.flow.write_paused:
        await cycle.flow.drain()
    count = int(message["count"])
    pieces = cycle.conn.send_with_data_passthrough(h11.Data(data=cast(bytes, _Length(count)))) or []
    try:
        for piece in pieces:
            if not isinstance(piece, _Length):
                cycle.transport.write(piece)
            elif message["type"] == SPLICE:
                await _splice(cycle, message["head"], message["fd"], count)
            elif count and await asyncio.get_running_loop().sendfile(
                    cycle.transport, message["file"], int(message.get("offset", 0)),
                    count) != count:
                raise OSError("the file ended before the body did")
    except (OSError, RuntimeError):  # RuntimeError: the transport closed meanwhile
        cycle.disconnected = True
        cycle.transport.close()
        raise OSError("zero-copy body cut short") from None
    if not message.get("more_body", False):
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _splice(cycle: RequestResponseCycle, head: bytes, fd: int, count: int) -> None:
    """`head`, then `count - len(head)` bytes spliced from socket `fd`, once every byte
    written before has left the transport's buffer (the splice writes behind its back)."""
    transport = cycle.transport
    transport.write(head)
    low, high = transport.get_write_buffer_limits()
    transport.set_write_buffer_limits(0, 0)  # paused until its buffer is empty, then resumed
    try:
        while transport.get_write_buffer_size():
            await cycle.flow.drain()
        if transport.is_closing():
            raise OSError("the client has gone")
        client = transport.get_extra_info("socket").fileno()
        await splice.relay(fd, client, count - len(head), timeout=STORE_SILENCE)
    finally:
        transport.set_write_buffer_limits(high, low)


def protocol_options(header_timeout: float, max_header_bytes: int) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the guarded protocol."""
    return {"http": guarded_h11(header_timeout, max_header_bytes),
            "h11_max_incomplete_event_size": max_header_bytes}
