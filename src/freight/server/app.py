"""The registry as a raw ASGI application: routing, access control, errors and the access log."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, TextIO

from freight.distribution import routes
from freight.server import blobs, listing, manifests
from freight.server.auth import BasicAuth
from freight.server.exchange import (
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
from freight.server.storage import Storage
from freight.server.uploads import UploadStore

log = logging.getLogger("freight.server")


async def _ping(ctx: Context, req: Request, route: routes.Route) -> Response:
    return Response.json({})


HANDLERS: dict[tuple[str, str], Handler] = {
    (routes.BASE, "GET"): _ping,
    (routes.CATALOG, "GET"): listing.catalog,
    (routes.TAGS, "GET"): listing.list_tags,
    (routes.REFERRERS, "GET"): listing.referrers,
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


class Registry:
    """ASGI callable serving the v2 API over a `Storage`.

    Options: `auth` (Basic auth required on every request), `read_only` (every write is
    answered 405 UNSUPPORTED) and `access_log` (a stream receiving one JSON line per request,
    None for silence).
    """

    def __init__(self, storage: Storage, *, auth: BasicAuth | None = None,
                 read_only: bool = False, access_log: TextIO | None = None) -> None:
        self.ctx = Context(storage, UploadStore(storage.root))
        self.auth, self.read_only, self.access_log = auth, read_only, access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request, started = Request(scope, receive), time.monotonic()
        user: str | None = None
        try:
            user = await self._authenticate(request)
            response = await self._dispatch(request)
        except HTTPError as exc:
            response = Response.error(exc)
        except ClientGone:
            self._log(request, 499, 0, started, user)
            return
        except Exception:
            log.exception("internal error on %s %s", request.method, request.path)
            response = Response.error(HTTPError("UNKNOWN", "internal server error"))
        try:
            sent = await response.send(send, receive, head=request.method == "HEAD")
        except (ClientGone, OSError):
            sent = -1
        self._log(request, response.status, sent, started, user)

    async def _authenticate(self, request: Request) -> str | None:
        if self.auth is None:
            return None
        user = await self.auth.user(request.header("authorization"))
        if user is None:
            raise HTTPError("UNAUTHORIZED", headers=(self.auth.challenge,))
        return user

    async def _dispatch(self, request: Request) -> Response:
        route = routes.match(request.path)
        if route is None:
            raise HTTPError("UNSUPPORTED", status=404, message="not a registry API path")
        method = "GET" if request.method == "HEAD" else request.method
        handler = HANDLERS.get((route.kind, method))
        if handler is None:
            raise HTTPError("UNSUPPORTED", f"{request.method} is not allowed here")
        if self.read_only and method not in READ_METHODS:
            raise HTTPError("UNSUPPORTED", "this registry is read-only")
        return await handler(self.ctx, request, route)

    def _log(self, request: Request, status: int, sent: int, started: float,
             user: str | None) -> None:
        if self.access_log is None:
            return
        client = request.scope.get("client") or ("", 0)
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "remote": f"{client[0]}:{client[1]}", "method": request.method,
            "path": request.path, "status": status, "bytes_in": request.received,
            "bytes_out": sent, "ms": round((time.monotonic() - started) * 1000, 1),
        }
        if user:
            entry["user"] = user
        self.access_log.write(json.dumps(entry) + "\n")
        self.access_log.flush()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_app(storage: Storage, *, auth: BasicAuth | None = None, read_only: bool = False,
             access_log: TextIO | None = None) -> Registry:
    """The ASGI application serving `storage`; see `Registry` for the options."""
    return Registry(storage, auth=auth, read_only=read_only, access_log=access_log)


__all__ = ["Registry", "make_app"]
