"""One HTTP exchange on the raw ASGI interface: the request, the response, and errors.

Handlers read a `Request` (headers decoded, query parsed, body streamed from `receive()`)
and return a `Response`; raising `HTTPError` answers with a spec error body instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qs

from freight.digest import Digest
from freight.distribution import routes
from freight.distribution.errors import error_body, status_of
from freight.distribution.headers import parse_uint
from freight.errors import UsageError
from freight.server.cache import Immutable, Recent
from freight.server.readahead import ReadAhead
from freight.server.storage import Storage
from freight.server.storage.base import LoopBody, LoopReadable, Pieces
from freight.server.uploads import UploadStore

if TYPE_CHECKING:
    from freight.server.limits import BlobSizeLimit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
STREAM_CHUNK = 1 << 20  # 1 MiB per body message: few event-loop turns, bounded memory
MAX_HEADER_BYTES = 64 * 1024  # request line + headers, as distribution and nginx allow
ZEROCOPY = "http.response.zerocopysend"  # the ASGI extension protocol.py serves
SPLICE = "freight.splice"  # protocol.py's own: a body spliced from a socket (splice.py)
SPLICE_MIN = 1 << 20  # smaller bodies go as pieces: a pipe and its waits cost more


class HTTPError(Exception):
    """Answer with the spec error `code` (status from distribution's table unless given)."""

    def __init__(self, code: str, detail: Any = None, *, status: int | None = None,
                 message: str | None = None, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(code)
        self.code, self.detail, self.message = code, detail, message
        self.status = status or status_of(code)
        self.headers = headers


class ClientGone(Exception):
    """The client disconnected before the request body was complete."""


class Request:
    """Method, decoded path, query, headers (lower-case names) and the streamed body.

    `header_bytes` counts the request target and headers as received (the server refuses
    more than MAX_HEADER_BYTES however they arrived); `body_limit`, when set, caps the bytes
    `chunks()` yields (413 SIZE_INVALID past it).
    """

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope, self._receive = scope, receive
        self.method: str = scope["method"]
        self.path: str = origin_form(scope["path"])
        raw_query: bytes = scope.get("query_string", b"")
        self.query = parse_qs(raw_query.decode("latin-1"), keep_blank_values=True)
        self.headers: dict[str, str] = {}
        size = len(scope.get("raw_path") or b"") + len(raw_query)
        for raw_name, raw_value in scope.get("headers", []):
            size += len(raw_name) + len(raw_value) + 4  # ": " and CRLF
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            self.headers[name] = f"{self.headers[name]},{value}" if name in self.headers else value
        self.header_bytes = size
        self.received = 0
        self.body_limit: int | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def content_length(self) -> int | None:
        value = self.header("content-length")
        if value is None:
            return None
        length = parse_uint(value)
        if length is None:
            raise HTTPError("SIZE_INVALID", "Content-Length is not a number")
        return length

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises ClientGone if the client goes away mid-way."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            body: bytes = message.get("body", b"")
            self.received += len(body)
            if self.body_limit is not None and self.received > self.body_limit:
                raise HTTPError("SIZE_INVALID", f"body larger than {self.body_limit} bytes",
                                status=413)
            if body:
                yield body
            if not message.get("more_body", False):
                return

    async def read(self, limit: int) -> bytes:
        """The whole body; 413 if it is larger than `limit` bytes."""
        declared = self.content_length()
        if declared is not None and declared > limit:
            raise HTTPError("MANIFEST_INVALID", f"body larger than {limit} bytes", status=413)
        parts = bytearray()
        async for chunk in self.chunks():
            parts += chunk
            if len(parts) > limit:
                raise HTTPError("MANIFEST_INVALID", f"body larger than {limit} bytes",
                                status=413)
        return bytes(parts)


@dataclass
class Response:
    """A reply: a bytes `body`, or `length` bytes of `file` from `offset` streamed in chunks."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    file: BinaryIO | None = None
    offset: int = 0
    length: int = 0

    @classmethod
    def json(cls, data: Any, *, headers: list[tuple[str, str]] | None = None,
             content_type: str = "application/json") -> Response:
        return cls(200, [("Content-Type", content_type), *(headers or [])],
                   json.dumps(data).encode())

    @classmethod
    def error(cls, exc: HTTPError) -> Response:
        return cls(exc.status, [("Content-Type", "application/json"), *exc.headers],
                   error_body(exc.code, exc.message, exc.detail))

    async def send(self, send: Send, receive: Receive, *, head: bool,
                   zerocopy: bool = False, splice: bool = False) -> int:
        """Send the response (headers only for HEAD); return the number of body bytes sent.

        `receive` is watched while a file streams, to stop reading it if the client leaves.
        With `zerocopy` (the server offers the ASGI extension, protocol.py), a file that is an
        OS file goes to the socket in one `http.response.zerocopysend` message; with
        `splice`, a large body arriving on a plain socket (S3) in one `freight.splice`.
        """
        size = self.length if self.file is not None else len(self.body)
        names = {name.lower() for name, _ in self.headers}
        headers = [*self.headers, API_VERSION]
        if "content-length" not in names:
            headers.append(("Content-Length", str(size)))
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
        if head or self.status in (204, 304):
            await send({"type": "http.response.body", "body": b""})
            return 0
        if self.file is None:
            await send({"type": "http.response.body", "body": self.body})
            return size
        if zerocopy and _is_os_file(self.file):
            try:
                await send({"type": ZEROCOPY, "file": self.file, "offset": self.offset,
                            "count": self.length, "more_body": False})
            finally:
                self.file.close()
            return self.length
        return await self._stream(send, receive, splice=splice)

    async def _stream(self, send: Send, receive: Receive, *, splice: bool = False) -> int:
        """The file's bytes, spliced or as pieces (`_body`): a store's read and the
        client's socket run at once either way."""
        file = self.file
        assert file is not None
        if self.length == 0:  # the empty blob: nothing to read, but the body must end
            file.close()
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return 0
        try:
            body = await self._body(file)
        except BaseException:
            file.close()
            raise
        try:
            if splice and self.length >= SPLICE_MIN and isinstance(body, LoopBody):
                detached = body.detach()
                if detached is not None:
                    return await self._splice(body, detached, send)
            return await self._pieces(body, send, receive)
        finally:
            body.close()

    async def _body(self, file: BinaryIO) -> Pieces:
        """The file's bytes on the event loop where it can (S3), else read ahead in
        threads. The pieces own the file from here: closing them closes it."""
        if isinstance(file, LoopReadable):
            body = await file.on_loop(self.offset, self.length, whole=self.status == 200)
            if body is not None:
                file.close()  # it never sent a request of its own: the body holds the GET
                return body
        return ReadAhead(file, self.offset, self.length, STREAM_CHUNK)

    async def _splice(self, body: LoopBody, detached: tuple[int, bytes], send: Send) -> int:
        """`body` spliced from its socket to the client's: one message, no bytes in Python
        but those read before (`detached`: the socket and them)."""
        fd, received = detached
        await send({"type": SPLICE, "fd": fd, "head": received, "count": self.length,
                    "more_body": False})
        body.spliced(self.length - len(received))
        return self.length

    async def _pieces(self, body: Pieces, send: Send, receive: Receive) -> int:
        """`body`'s pieces, each sent as it arrives, until `length` bytes have gone."""
        sent, left = 0, self.length
        gone = asyncio.ensure_future(_disconnect(receive))
        try:
            while left > 0:
                if gone.done():  # uvicorn drops what we send after a disconnect, silently
                    raise ClientGone()
                piece = await body.read()
                if not piece:  # the body ended short: end the response short, never pad
                    raise ClientGone()
                left -= len(piece)
                sent += len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": left > 0})
        finally:
            gone.cancel()
        return sent


def origin_form(path: str) -> str:
    """The path of a request target: a proxy forwards the absolute form
    (`GET http://host/v2/ HTTP/1.1`), which HTTP/1.1 servers must accept (RFC 9112 3.2.2)."""
    for scheme in ("http://", "https://"):
        if path.startswith(scheme):
            _, slash, rest = path[len(scheme):].partition("/")
            return slash + rest if slash else "/"
    return path


def _is_os_file(file: BinaryIO) -> bool:
    """Whether `file` has a descriptor sendfile can read (an S3 reader has none)."""
    try:
        file.fileno()
    except OSError:  # io.UnsupportedOperation is one
        return False
    return True


async def _disconnect(receive: Receive) -> None:
    """Return once the client has gone (the request body, if any, is skipped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


MANIFEST_CACHE_BYTES = 32 << 20  # manifest bytes kept per process (~10 000 of a few KB)


REVISIONS_KEPT = 10_000  # (repository, digest) -> Content-Type of manifests lately named by tags
REVISION_SECONDS = 2.0  # how long one is trusted without reading it again (see cache.Recent)


def _manifest_cache() -> Immutable[Digest, bytes]:
    return Immutable(MANIFEST_CACHE_BYTES, len)


def _revision_cache() -> Recent[tuple[str, Digest], str]:
    return Recent(REVISIONS_KEPT, REVISION_SECONDS)


@dataclass
class Context:
    """What every handler gets: the content store, the upload sessions, the bytes of
    manifests read lately (content-addressed) and the revisions tags named lately (see
    cache.py), and the blob size limit."""

    storage: Storage
    uploads: UploadStore
    manifests: Immutable[Digest, bytes] = field(default_factory=_manifest_cache)
    revisions: Recent[tuple[str, Digest], str] = field(default_factory=_revision_cache)
    blob_limit: BlobSizeLimit | None = None


Handler = Callable[[Context, Request, routes.Route], Awaitable[Response]]


def repository(route: routes.Route) -> str:
    """The route's repository name, or NAME_INVALID."""
    if not routes.valid_name(route.name):
        raise HTTPError("NAME_INVALID", {"name": route.name[:300]})
    return route.name


def parse_digest(text: str | None, *, code: str = "DIGEST_INVALID") -> Digest:
    """A digest from the request, or the error `code` (400/404, never a 500)."""
    if not text:
        raise HTTPError(code, "digest missing")
    try:
        return Digest.parse(text)
    except UsageError as exc:
        raise HTTPError(code, str(exc)[:300]) from None
