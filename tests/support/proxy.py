"""A threaded HTTP/1.1 reverse proxy on 127.0.0.1 in front of a registry.

It streams bodies both ways (nothing is buffered whole), counts requests by
(method, kind of path) so tests can assert what a client did, passes every header through
except hop-by-hop ones, and rewrites only an absolute ``Location`` that points at the
upstream, so clients keep talking through the proxy. Faults (see ``faults.py``) hook in
before forwarding and while the request body streams.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from urllib.parse import urlsplit, urlunsplit

from .faults import Cut, Fault, Reply, RequestInfo

CHUNK = 64 * 1024
UPSTREAM_TIMEOUT_SECONDS = 120
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host",
}  # fmt: skip
KINDS = (
    ("base", re.compile(r"^/v2/?$")),
    ("catalog", re.compile(r"^/v2/_catalog")),
    ("upload", re.compile(r"/blobs/uploads/")),
    ("blob", re.compile(r"/blobs/[^/]+$")),
    ("manifest", re.compile(r"/manifests/[^/]+$")),
    ("tags", re.compile(r"/tags/list$")),
    ("referrers", re.compile(r"/referrers/[^/]+$")),
)


def classify(method: str, path: str) -> str:
    """Kind of a registry API path: base, catalog, upload, mount, blob, manifest, tags, …."""
    bare, _, query = path.partition("?")
    for kind, pattern in KINDS:
        if pattern.search(bare):
            if kind == "upload" and method == "POST" and "mount=" in query:
                return "mount"
            return kind
    return "other"


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    kind: str
    status: int  # 0 when the connection was cut
    request_bytes: int


class RegistryProxy:
    """Start with ``RegistryProxy(upstream_host).start()``; ``host`` is the proxy's address."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> RegistryProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def reset(self) -> None:
        with self._lock:
            self.exchanges.clear()

    def counts(self) -> Counter[tuple[str, str]]:
        """Requests so far by (method, kind)."""
        with self._lock:
            return Counter((e.method, e.kind) for e in self.exchanges)

    def blob_writes(self) -> list[Exchange]:
        """Requests that start, feed or close a blob upload, or mount one."""
        with self._lock:
            return [
                e
                for e in self.exchanges
                if e.kind in ("upload", "mount") or (e.kind == "blob" and e.method == "PUT")
            ]

    def rewrite_location(self, location: str) -> str:
        parts = urlsplit(location)
        if parts.netloc != self.upstream:
            return location  # relative, or another host: pass through unchanged
        return urlunsplit(parts._replace(netloc=self.host))


def _handler_for(proxy: RegistryProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        owner = proxy

    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked bodies
    owner: RegistryProxy
    _current: tuple[RequestInfo, _Counted]

    def log_message(self, format: str, *args: object) -> None:
        pass  # the exchange list is the log

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except Cut:
            self.close_connection = True
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _dispatch(self) -> None:
        request = self._request_info()
        self._current = (request, _Counted())
        try:
            reply = self._before(request)
            if reply is None:
                self._forward(request, self._current[1])
            else:
                self._reply(reply, body_pending=request_has_body(self.headers))
        except Cut:
            self._record(0)
            raise

    def _record(self, status: int) -> None:
        """Log the exchange before the client sees the answer, so tests never race it."""
        request, sent = self._current
        sent.status = status
        self.owner.record(Exchange(request.method, request.path, request.kind, status, sent.n))

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _request_info(self) -> RequestInfo:
        length = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        return RequestInfo(
            method=self.command,
            path=self.path,
            kind=classify(self.command, self.path),
            headers={k: v for k, v in self.headers.items()},
            content_length=int(length) if length is not None and not chunked else None,
        )

    def _before(self, request: RequestInfo) -> Reply | None:
        for fault in list(self.owner.faults):
            reply = fault.before(request)
            if reply is not None:
                return reply
        return None

    def _reply(self, reply: Reply, *, body_pending: bool) -> None:
        self._record(reply.status)
        self.send_response_only(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if body_pending:  # the request body was not read: this connection is done
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        self.wfile.flush()

    def _forward(self, request: RequestInfo, sent: _Counted) -> None:
        host, _, port = self.owner.upstream.partition(":")
        upstream = http.client.HTTPConnection(host, int(port), timeout=UPSTREAM_TIMEOUT_SECONDS)
        try:
            try:
                reply = self._send_upstream(upstream, request, sent)
                response = upstream.getresponse() if reply is None else None
            except (http.client.HTTPException, ConnectionRefusedError) as error:
                reply, response = Reply(502, f"upstream failed: {error}".encode()), None
            if response is None:  # a fault answered mid-body, or the upstream failed
                self._reply(reply or Reply(502), body_pending=True)
                return
            self._relay(response)
        finally:
            upstream.close()

    def _send_upstream(
        self, upstream: http.client.HTTPConnection, request: RequestInfo, sent: _Counted
    ) -> Reply | None:
        chunked = request.content_length is None and request_has_body(self.headers)
        upstream.putrequest(request.method, request.path, skip_host=True, skip_accept_encoding=True)
        upstream.putheader("Host", self.owner.upstream)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP:
                upstream.putheader(name, value)
        if chunked:
            upstream.putheader("Transfer-Encoding", "chunked")
        upstream.endheaders()
        for chunk in self._request_body(request):
            for fault in list(self.owner.faults):
                reply = fault.on_body(request, sent.n, chunk)
                if reply is not None:
                    return reply
            upstream.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent.n += len(chunk)
        if chunked:
            upstream.send(b"0\r\n\r\n")
        return None

    def _request_body(self, request: RequestInfo) -> Iterator[bytes]:
        if request.content_length is not None:
            yield from _read_exactly(self.rfile, request.content_length)
        elif request_has_body(self.headers):
            yield from _read_chunked(self.rfile)

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self._record(response.status)
        self.send_response_only(response.status, response.reason)
        length = response.getheader("Content-Length")
        for name, value in response.getheaders():
            if name.lower() in HOP_BY_HOP:
                continue
            if name.lower() == "location":
                value = self.owner.rewrite_location(value)
            self.send_header(name, value)
        bodiless = self.command == "HEAD" or response.status in (204, 304)
        if length is None and not bodiless:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if not bodiless:
            self._relay_body(response, chunked=length is None)
        self.wfile.flush()

    def _relay_body(self, response: http.client.HTTPResponse, *, chunked: bool) -> None:
        while chunk := response.read1(CHUNK):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


class _Counted:
    def __init__(self) -> None:
        self.n = 0
        self.status = 0


def request_has_body(headers: Message) -> bool:
    chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
    return chunked or headers.get("Content-Length") not in (None, "0")


def _read_exactly(stream: BufferedIOBase, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            raise ConnectionError("client closed the connection mid-body")
        remaining -= len(chunk)
        yield chunk


def _read_chunked(stream: BufferedIOBase) -> Iterator[bytes]:
    while True:
        size = int(stream.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline().strip():  # trailers, up to the blank line
                pass
            return
        yield from _read_exactly(stream, size)
        stream.readline()  # the CRLF after each chunk
