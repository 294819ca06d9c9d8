"""Blob bodies read from S3 on the event loop itself, with no worker thread per piece.

Read through a storage thread (S3Reader.read), a blob GET costs a hop per 1 MiB piece: a
thread reads from the store's socket, the event loop writes to the client's. At 50
concurrent 100 MB pulls that is 50 threads taking the GIL in turn, and perf put a fifth of
the server's time in waking and switching them (bench/README.md, "Session 9"). Here the
store's connection is one more socket of the event loop: each piece the loop receives from
it goes out to the client as it is (no copy in Python), and the store's socket is paused
while PAUSE_AT bytes wait for a slow client (a reply never piles up in memory).

Only a plain reply is streamed here: 200 or 206 with a Content-Length of exactly the bytes
asked for. Anything else (an error status, a chunked reply, a failure to sign or connect)
returns None before a byte is sent, and the caller reads through S3Reader instead, with
boto3's retries and errors, as s3_direct.py does for small reads. A reply that stops
before its end raises StoreGone: the client's response is already under way, so it ends
short (the client sees a truncated body, never wrong bytes).
"""

from __future__ import annotations

import asyncio
import io
import ssl
import weakref
from collections import deque
from http.client import parse_headers
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from freight.server.storage.s3_direct import DirectReads

PAUSE_AT = 1 << 20  # bytes of a reply queued for the client before the store's socket pauses
HEAD_LIMIT = 64 << 10  # a reply's status line and headers, at most
CONNECT_SECONDS = 10.0
READ_SECONDS = 60.0  # silence from the store that ends a reply (botocore's read timeout)
IDLE_LINKS = 64  # kept-alive connections per event loop (= s3_objects.MAX_CONNECTIONS)


class StoreGone(OSError):
    """The store's reply stopped before its end: closed, reset, or silent READ_SECONDS."""


class Link(asyncio.Protocol):
    """One connection to the store: the pieces received wait here until the body's reader
    takes them, and reading pauses while PAUSE_AT bytes wait."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.pieces: deque[bytes] = deque()
        self.queued = 0
        self.paused = False
        self.ended = False  # the store closed its side, or the connection is lost
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pieces.append(data)
        self.queued += len(data)
        if self.queued >= PAUSE_AT:
            self.pause()
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _silence(self) -> None:
        """READ_SECONDS passed with nothing received: the reader's wait ends in StoreGone."""
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(StoreGone(f"the store sent nothing for {READ_SECONDS:.0f} s"))

    async def take(self) -> bytes:
        """The next piece received; b"" once the store has closed the connection."""
        while not self.pieces:
            if self.ended:
                return b""
            self.waiter = self.loop.create_future()
            timer = self.loop.call_later(READ_SECONDS, self._silence)
            try:
                await self.waiter
            finally:
                timer.cancel()
                self.waiter = None
        piece = self.pieces.popleft()
        self.queued -= len(piece)
        if self.queued < PAUSE_AT // 2:
            self.resume()
        return piece

    def pause(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def put_back(self, piece: bytes) -> None:
        """Return the unused end of a piece taken: it is read first next time."""
        self.pieces.appendleft(piece)
        self.queued += len(piece)

    def idle(self) -> bool:
        """Whether the connection can carry another request: open, nothing unread."""
        return not self.ended and not self.pieces and self.transport is not None \
            and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # a reply half read: its bytes are not worth waiting for


class Body:
    """The rest of one reply's body, piece by piece (`read`), then its connection goes
    back to the pool; `close` before the end drops the connection instead."""

    def __init__(self, reads: LoopReads, link: Link, length: int, *, reusable: bool) -> None:
        self.reads, self.link, self.left, self.reusable = reads, link, length, reusable
        self.closed = False

    async def read(self) -> bytes:
        """The next piece; b"" after the last. StoreGone if the reply ends short."""
        if self.left <= 0:
            return b""
        piece = await self.link.take()
        if not piece:
            raise StoreGone("the store closed the connection before the body's end")
        piece = self._count(piece)
        if self.left == 0:
            self.close()
        return piece

    def _count(self, data: bytes) -> bytes:
        """`data` as far as the body goes, counted (more than its Content-Length: the
        connection is out of step, never reuse it)."""
        if len(data) > self.left:
            data, self.reusable = data[:self.left], False
        self.left -= len(data)
        return data

    def detach(self) -> tuple[int, bytes] | None:
        """For a splice (server/splice.py): stop reading the connection and give its
        descriptor and the body's bytes received already; None on TLS (nothing to splice:
        the bytes are encrypted). Then `spliced` says how many more went."""
        transport = self.link.transport
        if transport is None or transport.get_extra_info("sslcontext") is not None:
            return None
        self.link.pause()
        received = b"".join(self.link.pieces)
        self.link.pieces.clear()
        self.link.queued = 0
        return transport.get_extra_info("socket").fileno(), self._count(received)

    def spliced(self, count: int) -> None:
        self.left -= count

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.left == 0 and self.reusable and self.link.idle():
            self.link.resume()
            self.reads.keep(self.link)
        else:
            self.link.close()


class LoopReads:
    """Signed GETs of the bucket's objects on the running event loop, on kept-alive
    connections (one pool per loop: a uvicorn worker or a test's server has its own)."""

    def __init__(self, direct: DirectReads) -> None:
        self.direct = direct
        where = urlsplit(direct.base)
        self.host = where.hostname or ""
        self.tls = where.scheme == "https"
        self.port = where.port or (443 if self.tls else 80)
        self.netloc = where.netloc
        self._context: ssl.SSLContext | None = None
        self._idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Link]] = \
            weakref.WeakKeyDictionary()

    async def body(self, key: str, offset: int, length: int, *, whole: bool) -> Body | None:
        """The body of the full `key` (`whole`: all `length` bytes of it), or of its bytes
        `offset` to `offset + length`, its reply's head read; None if the reply is not a
        plain one."""
        headers = {"Host": self.netloc}
        if not whole:
            headers["Range"] = f"bytes={offset}-{offset + length - 1}"
        from botocore.exceptions import BotoCoreError

        try:
            request = self._request(key, headers)
        except BotoCoreError:  # no credentials to sign with: boto3 says what is wrong
            return None
        for fresh in (False, True):  # a kept-alive connection the store closed: once more
            link = None if fresh else self._reuse()
            reused = link is not None
            try:
                if link is None:
                    link = await self._connect()
                body = await self._send(link, request, length, 200 if whole else 206)
            except (OSError, ValueError):  # TimeoutError and StoreGone are OSErrors
                if link is not None:
                    link.close()
                if reused:
                    continue
                return None
            except BaseException:  # cancelled (the client left, the server stops)
                if link is not None:
                    link.close()
                raise
            if body is None:
                link.close()
            return body
        return None

    def _request(self, key: str, headers: dict[str, str]) -> bytes:
        prepared = self.direct.signed("GET", key, headers)
        where = urlsplit(prepared.url)
        target = where.path + (f"?{where.query}" if where.query else "")
        lines = [f"GET {target} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in prepared.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(self, link: Link, request: bytes, length: int, status: int) -> Body | None:
        """Send `request` on `link` and read the reply's head: the Body of a plain reply of
        `status` with `length` bytes, None for any other reply."""
        assert link.transport is not None
        link.transport.write(request)
        got, head = await _head(link)
        _, _, header_lines = head.partition(b"\r\n")
        fields = parse_headers(io.BytesIO(header_lines + b"\r\n\r\n"))
        declared = fields.get("Content-Length", "")
        if got != status or "Transfer-Encoding" in fields or not declared.isdigit() \
                or int(declared) != length:
            return None
        reusable = head.startswith(b"HTTP/1.1 ") \
            and fields.get("Connection", "").lower() != "close"
        return Body(self, link, length, reusable=reusable)

    async def _connect(self) -> Link:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if self.tls else None
        _, link = await asyncio.wait_for(loop.create_connection(
            lambda: Link(loop), self.host, self.port, ssl=tls,
            server_hostname=self.host if tls else None), CONNECT_SECONDS)
        return link

    def _tls_context(self) -> ssl.SSLContext:
        """The store's CAs as botocore reads them: AWS_CA_BUNDLE, else its default bundle."""
        if self._context is None:
            verify = self.direct.verify
            if verify is False:
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            else:
                from botocore.httpsession import get_cert_path

                context = ssl.create_default_context(cafile=get_cert_path(verify))
            self._context = context
        return self._context

    def _reuse(self) -> Link | None:
        idle = self._idle.get(asyncio.get_running_loop(), [])
        while idle:
            link = idle.pop()
            if link.idle():
                return link
            link.close()
        return None

    def keep(self, link: Link) -> None:
        idle = self._idle.setdefault(link.loop, [])
        if len(idle) < IDLE_LINKS:
            idle.append(link)
        else:
            link.close()


async def _head(link: Link) -> tuple[int, bytes]:
    """The status code and the head (status line and header lines) of the reply on
    `link`; what follows the head is put back for the body. StoreGone or ValueError if
    the reply ends, or its head is not HTTP, within HEAD_LIMIT bytes."""
    data = b""
    while (end := data.find(b"\r\n\r\n")) < 0:
        if len(data) > HEAD_LIMIT:
            raise ValueError("the store's reply head is too long")
        piece = await link.take()
        if not piece:
            raise StoreGone("the store closed the connection before replying")
        data += piece
    head, rest = data[:end], data[end + 4:]
    if rest:
        link.put_back(rest)
    status = head[9:12]
    if not head.startswith(b"HTTP/1.") or not status.isdigit():
        raise ValueError("the store's reply is not HTTP")
    return int(status), head
