"""The registry as a raw ASGI application: routing, access control, errors and the access log."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from freight.distribution import routes
from freight.server import blobs, listing, manifests, referrers
from freight.server.auth import BasicAuth
from freight.server.exchange import (
    MAX_HEADER_BYTES,
    SPLICE,
    ZEROCOPY,
    ClientGone,
    Context,
    Handler,
    HTTPError,
    Receive,
    Request,
    Response,
    Scope,
    Send,
)
from freight.server.limits import BlobSizeLimit, UploadSessions
from freight.server.metrics import CONTENT_TYPE as METRICS_TYPE
from freight.server.metrics import Metrics
from freight.server.storage import Storage
from freight.server.threads import offload

log = logging.getLogger("freight.server")


async def _ping(ctx: Context, req: Request, route: routes.Route) -> Response:
    return Response.json({})


HANDLERS: dict[tuple[str, str], Handler] = {
    (routes.BASE, "GET"): _ping,
    (routes.CATALOG, "GET"): listing.catalog,
    (routes.TAGS, "GET"): listing.list_tags,
    (routes.REFERRERS, "GET"): referrers.list_referrers,
    (routes.MANIFEST, "GET"): manifests.get_manifest,
    (routes.MANIFEST, "PUT"): manifests.put_manifest,
    (routes.MANIFEST, "DELETE"): manifests.delete_manifest,
    (routes.BLOB, "GET"): blobs.get_blob,
    (routes.BLOB, "DELETE"): blobs.delete_blob,
    (routes.UPLOADS, "POST"): blobs.start_upload,
    (routes.UPLOAD, "GET"): blobs.upload_status,
    (routes.UPLOAD, "PATCH"): blobs.patch_upload,
    (routes.UPLOAD, "PUT"): blobs.put_upload,
    (routes.UPLOAD, "DELETE"): blobs.cancel_upload,
}
READ_METHODS = frozenset({"GET", "HEAD"})
UPLOAD_ROUTES = frozenset({routes.UPLOADS, routes.UPLOAD})
HEALTHZ, READYZ, METRICS = "/healthz", "/readyz", "/metrics"
OPERATIONS = {HEALTHZ: "healthz", READYZ: "readyz", METRICS: "metrics"}  # path -> route label
READINESS_TIMEOUT = 5.0  # seconds a storage read may take before the registry is not ready
# A read every backend answers cheaply: the tag of a repository that cannot be pushed to
# (a name with a leading `_` fails the name grammar), so it never exists.
READINESS_PROBE = ("_freight/readiness", "probe")
OTHER = "other"  # the route label of a path that is no API path


@dataclass(frozen=True)
class Options:
    """How the registry serves; see `Registry`."""

    read_only: bool = False
    access_log: TextIO | None = None
    max_uploads: int | None = None
    max_blob_size: int | None = None
    readiness_timeout: float = READINESS_TIMEOUT


class Registry:
    """ASGI callable serving the v2 API over a `Storage`, plus `/metrics` (Prometheus),
    `/healthz` (the process answers) and `/readyz` (storage answers too).

    Options: `auth` (Basic auth required on every request but the health checks),
    `read_only` (every write is answered 405 UNSUPPORTED), `access_log` (a stream receiving
    one JSON line per request, None for silence), `max_uploads` (upload sessions in progress
    at once, 429 TOOMANYREQUESTS past it) and `max_blob_size` (bytes, 413 past it).
    """

    def __init__(self, storage: Storage, *, auth: BasicAuth | None = None,
                 options: Options = Options()) -> None:
        blob_limit = (BlobSizeLimit(options.max_blob_size)
                      if options.max_blob_size is not None else None)
        self.ctx = Context(storage, storage.uploads, blob_limit=blob_limit)
        self.auth, self.options = auth, options
        self.access_log = options.access_log
        self.sessions = UploadSessions(options.max_uploads)
        self.metrics = Metrics(upload_sessions=lambda: len(self.sessions))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request, started = Request(scope, receive), time.monotonic()
        route = routes.match(request.path)
        user: str | None = None
        try:
            if request.header_bytes > MAX_HEADER_BYTES:
                raise HTTPError("SIZE_INVALID", f"request headers exceed {MAX_HEADER_BYTES} "
                                "bytes", status=431)
            response = await self._operations(request, route)
            if response is None:
                user = await self._authenticate(request)
                response = await self._dispatch(request, route)
        except HTTPError as exc:
            response = Response.error(exc)
        except ClientGone:
            self._done(request, route, 499, 0, started, user)
            return
        except Exception as exc:
            log.exception("internal error on %s %s", request.method, request.path)
            self.metrics.storage_error(exc)
            response = Response.error(HTTPError("UNKNOWN", "internal server error"))
        if route is not None and route.kind in UPLOAD_ROUTES:
            self.sessions.record(route, request.method, response)
        try:
            extensions = scope.get("extensions", {})
            sent = await response.send(send, receive, head=request.method == "HEAD",
                                       zerocopy=ZEROCOPY in extensions,
                                       splice=SPLICE in extensions)
        except (ClientGone, OSError):
            sent = -1
        self._done(request, route, response.status, sent, started, user)

    async def _operations(self, request: Request, route: routes.Route | None) -> Response | None:
        """The answer to /healthz, /readyz and /metrics; None for every other path."""
        if route is not None or request.path not in OPERATIONS:
            return None
        if request.method not in READ_METHODS:
            raise HTTPError("UNSUPPORTED", f"{request.method} is not allowed here")
        if request.path == HEALTHZ:
            return Response.json({"status": "ok"})
        if request.path == READYZ:
            return await self._ready()
        await self._authenticate(request)
        return Response(200, [("Content-Type", METRICS_TYPE)], self.metrics.exposition())

    async def _ready(self) -> Response:
        """200 when a storage read answers within the timeout, else 503 UNAVAILABLE."""
        storage = self.ctx.storage
        try:
            await asyncio.wait_for(offload(probe, storage),
                                   self.options.readiness_timeout)
        except Exception as exc:  # any failure of the probe: the storage is not usable
            log.warning("readiness probe failed: %s", exc or type(exc).__name__)
            raise HTTPError("UNAVAILABLE", "storage is not reachable") from None
        return Response.json({"status": "ready"})

    async def _authenticate(self, request: Request) -> str | None:
        if self.auth is None:
            return None
        client = request.scope.get("client") or ("", 0)
        user = await self.auth.user(request.header("authorization"), str(client[0]))
        if user is None:
            raise HTTPError("UNAUTHORIZED", headers=(self.auth.challenge,))
        return user

    async def _dispatch(self, request: Request, route: routes.Route | None) -> Response:
        if route is None:
            raise HTTPError("UNSUPPORTED", status=404, message="not a registry API path")
        method = "GET" if request.method == "HEAD" else request.method
        handler = HANDLERS.get((route.kind, method))
        if handler is None:
            raise HTTPError("UNSUPPORTED", f"{request.method} is not allowed here")
        if self.options.read_only and method not in READ_METHODS:
            raise HTTPError("UNSUPPORTED", "this registry is read-only")
        if route.kind == routes.UPLOADS and method == "POST" and request.arg("mount") is None:
            self.sessions.admit()
        return await handler(self.ctx, request, route)

    def _done(self, request: Request, route: routes.Route | None, status: int, sent: int,
              started: float, user: str | None) -> None:
        """Count the request and write its access log line."""
        elapsed = time.monotonic() - started
        kind = route.kind if route is not None else OPERATIONS.get(request.path, OTHER)
        self.metrics.observe(kind, request.method, status, elapsed, request.received, sent)
        if self.access_log is None:
            return
        client = request.scope.get("client") or ("", 0)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "remote": f"{client[0]}:{client[1]}", "method": request.method,
            "path": request.path, "status": status, "bytes_in": request.received,
            "bytes_out": sent, "ms": round(elapsed * 1000, 1),
        }
        if user:
            entry["user"] = user
        self.access_log.write(json.dumps(entry) + "\n")
        self.access_log.flush()


def probe(storage: Storage) -> None:
    """Raise unless `storage` answers: its own `check()` if it has one (a remote store),
    else its directories must be there and writable, and a tag read must answer."""
    check = getattr(storage, "check", None)
    if callable(check):
        check()
        return
    root = getattr(storage, "root", None)
    if root is not None:
        for sub in ("blobs", "repositories", "tmp"):
            if not os.access(Path(root) / sub, os.R_OK | os.W_OK | os.X_OK):
                raise OSError(f"{Path(root) / sub} is missing or not writable")
    storage.resolve_tag(*READINESS_PROBE)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_app(storage: Storage, *, auth: BasicAuth | None = None, read_only: bool = False,
             access_log: TextIO | None = None, max_uploads: int | None = None,
             max_blob_size: int | None = None) -> Registry:
    """The ASGI application serving `storage`; see `Registry` for the options."""
    return Registry(storage, auth=auth, options=Options(
        read_only=read_only, access_log=access_log, max_uploads=max_uploads,
        max_blob_size=max_blob_size))


__all__ = ["Options", "Registry", "make_app"]
