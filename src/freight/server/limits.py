"""Limits on what one client can make the registry hold: upload sessions and blob size.

Upload sessions are counted per process, in the app, from what requests and responses say:
a session counts from the POST that opened it (or the next PATCH this process saw of it)
until a PUT, DELETE or 404 on it, or `idle` seconds without a request; an abandoned
session thus stops counting by itself, and memory stays bounded.

The blob size limit is applied by the upload handlers to each body at the offset the
store holds for its session (the running size of the session, in the session state), so it
holds across a series of PATCHes whichever replica or worker received each of them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from freight.distribution import routes
from freight.distribution.ranges import parse_upload_range
from freight.server.exchange import HTTPError, Request, Response

SESSION_IDLE = 15 * 60.0  # seconds without a request before a session stops counting
TRACKED_SESSIONS = 100_000  # sessions remembered without a limit: bounded memory (~10 MB)


class UploadSessions:
    """Upload sessions open in this process, oldest activity first; at most `limit` new."""

    def __init__(self, limit: int | None, *, idle: float = SESSION_IDLE) -> None:
        self.limit, self.idle = limit, idle
        self._seen: OrderedDict[str, float] = OrderedDict()  # session -> last use

    def __len__(self) -> int:
        self._prune(time.monotonic())
        return len(self._seen)

    def admit(self) -> None:
        """Before a POST that may open a session: TOOMANYREQUESTS (429) at the limit."""
        if self.limit is not None and len(self) >= self.limit:
            raise HTTPError("TOOMANYREQUESTS", f"more than {self.limit} uploads in progress; "
                            "finish or cancel one, or retry later",
                            headers=(("Retry-After", "5"),))

    def record(self, route: routes.Route, method: str, response: Response) -> None:
        """Track the session a request on an upload route opened, used or ended."""
        if route.kind == routes.UPLOADS:
            if method == "POST" and response.status == 202:
                session = _header(response, "docker-upload-uuid")
                if session:
                    self._touch(session)
        elif method in ("PUT", "DELETE") or response.status == 404:
            self._seen.pop(route.ref, None)  # done, failed, or gone (a PATCH brings it back)
        elif response.status == 202 and method == "PATCH":
            self._touch(route.ref)

    def _touch(self, session: str) -> None:
        now = time.monotonic()
        self._prune(now)
        self._seen[session] = now
        self._seen.move_to_end(session)
        cap = 2 * self.limit if self.limit is not None else TRACKED_SESSIONS
        if len(self._seen) > cap:  # e.g. PATCHes of sessions another replica opened
            self._seen.popitem(last=False)

    def _prune(self, now: float) -> None:
        while self._seen:
            session, last = next(iter(self._seen.items()))
            if now - last < self.idle:
                return
            del self._seen[session]


@dataclass(frozen=True)
class BlobSizeLimit:
    """Refuse blob bodies past `max_bytes`: 413 SIZE_INVALID, before reading if declared."""

    max_bytes: int

    def apply(self, request: Request, offset: int = 0) -> None:
        """Check the declared length and range of a body appended at `offset`, and cap the
        body `request` will yield."""
        length = request.content_length()
        if length is not None and offset + length > self.max_bytes:
            raise self.too_large()
        header = request.header("content-range")
        wanted = parse_upload_range(header) if header else None
        if wanted is not None and wanted[1] >= self.max_bytes:
            raise self.too_large()
        request.body_limit = max(self.max_bytes - offset, 0)

    def too_large(self) -> HTTPError:
        return HTTPError("SIZE_INVALID", f"blobs are limited to {self.max_bytes} bytes here",
                         status=413)


def _header(response: Response, name: str) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value
    return None
