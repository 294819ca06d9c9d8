"""Fault hooks for the registry proxy: each sees a request and may answer in its place.

A hook can answer before the request is forwarded (``before``), or while the request body
streams to the registry (``on_body``), or raise ``Cut`` to drop the client connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

NGINX_413 = (
    b"<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n"
    b"<body>\r\n<center><h1>413 Request Entity Too Large</h1></center>\r\n"
    b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class RequestInfo:
    method: str
    path: str  # path and query, as the client sent it
    kind: str  # see proxy.classify()
    headers: Mapping[str, str]
    content_length: int | None  # None for chunked bodies and bodiless requests


@dataclass(frozen=True)
class Reply:
    """A response the proxy sends instead of the registry's."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class Cut(Exception):
    """Raised by a hook to drop the client's connection without a response."""


class Fault:
    """The hook interface; the base class injects nothing."""

    def before(self, request: RequestInfo) -> Reply | None:
        return None

    def on_body(self, request: RequestInfo, offset: int, chunk: bytes) -> Reply | None:
        """Called before ``chunk`` (starting at body ``offset``) is forwarded."""
        return None


class BodyLimit(Fault):
    """Reject request bodies above ``limit`` bytes with 413, like nginx's client_max_body_size."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rejected = 0

    def before(self, request: RequestInfo) -> Reply | None:
        if request.content_length is not None and request.content_length > self.limit:
            return self._reject()
        return None

    def on_body(self, request: RequestInfo, offset: int, chunk: bytes) -> Reply | None:
        return self._reject() if offset + len(chunk) > self.limit else None

    def _reject(self) -> Reply:
        self.rejected += 1
        return Reply(413, NGINX_413, {"Content-Type": "text/html"})


Matcher = Callable[[RequestInfo], bool]


class FailTimes(Fault):
    """Answer the first ``times`` matching requests with ``status`` (e.g. 503, 429)."""

    def __init__(
        self, status: int, *, times: int, match: Matcher, retry_after: int | None = None
    ) -> None:
        self.status, self.remaining, self.match = status, times, match
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._lock = threading.Lock()

    def before(self, request: RequestInfo) -> Reply | None:
        with self._lock:
            if self.remaining <= 0 or not self.match(request):
                return None
            self.remaining -= 1
        body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected by the test proxy"}]}'
        headers = {"Content-Type": "application/json", **self.headers}
        return Reply(self.status, body, headers)


class CutAfter(Fault):
    """Drop the connection of the first ``times`` matching requests, before forwarding the
    body chunk that would cross ``offset`` (so at most ``offset`` bytes reach the registry)."""

    def __init__(self, offset: int, *, times: int, match: Matcher) -> None:
        self.offset, self.remaining, self.match = offset, times, match
        self._lock = threading.Lock()

    def on_body(self, request: RequestInfo, offset: int, chunk: bytes) -> Reply | None:
        if offset + len(chunk) <= self.offset or not self.match(request):
            return None
        with self._lock:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        raise Cut()
