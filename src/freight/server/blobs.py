"""Blob endpoints: fetch (with Range), delete, and the upload flows of protocol.md §2.

Upload Locations are `/v2/<name>/blobs/uploads/<id>` and carry no state: the session lives
in the store (uploads.py) and its offset is how many bytes the store holds, so any process
serves any request of a session, a replayed or stale chunk is detected by its
`Content-Range` (416), and a GET on any Location reports where to resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from freight.digest import Digest
from freight.distribution import routes
from freight.distribution.headers import upload_range
from freight.distribution.ranges import Unsatisfiable, parse_byte_range, parse_upload_range
from freight.server.exchange import (
    Context,
    HTTPError,
    Request,
    Response,
    parse_digest,
    repository,
)
from freight.server.threads import offload
from freight.server.uploads import SESSION_ID, UploadConflict

_BLOB_HEADERS = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes"),
                 ("Cache-Control", "max-age=31536000")]  # content-addressed: never changes


def blob_location(repo: str, digest: Digest) -> str:
    return f"/v2/{repo}/blobs/{digest}"


def upload_location(repo: str, session: str) -> str:
    return f"/v2/{repo}/blobs/uploads/{session}"


def upload_response(status: int, repo: str, session: str, size: int) -> Response:
    """202/204 for a session holding `size` bytes: where to send the next request, and how far."""
    return Response(status, [("Location", upload_location(repo, session)),
                             ("Range", upload_range(size)), ("Docker-Upload-UUID", session)])


def created(repo: str, digest: Digest) -> Response:
    return Response(201, [("Location", blob_location(repo, digest)),
                          ("Docker-Content-Digest", str(digest))])


# -- blobs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Found:
    """A blob to answer with: its size, and for a GET the redirect URL or the open file and
    the byte range asked for."""

    size: int
    url: str | None = None
    file: BinaryIO | None = None
    wanted: tuple[int, int] | None = None


def _find_blob(ctx: Context, repo: str, digest: Digest, *, body: bool,
               byte_range: str | None) -> _Found:
    """Everything a blob GET/HEAD asks of the store, in one worker-thread call (blocking)."""
    size = ctx.storage.blob_size(repo, digest)
    if size is None:
        raise HTTPError("BLOB_UNKNOWN", str(digest))
    if not body:
        return _Found(size)
    url = ctx.storage.blob_url(digest)
    if url is not None:
        return _Found(size, url=url)
    try:
        wanted = parse_byte_range(byte_range, size)
    except Unsatisfiable:
        raise HTTPError("BLOB_UNKNOWN", "range not satisfiable", status=416,
                        headers=(("Content-Range", f"bytes */{size}"),)) from None
    try:
        return _Found(size, file=ctx.storage.open_blob(digest), wanted=wanted)
    except FileNotFoundError:
        raise HTTPError("BLOB_UNKNOWN", str(digest)) from None


async def get_blob(ctx: Context, req: Request, route: routes.Route) -> Response:
    """GET/HEAD a blob of the repository; a single `Range` gives 206; a GET redirects to
    the store (307) when it serves presigned URLs."""
    repo, digest = repository(route), parse_digest(route.ref)
    found = await offload(_find_blob, ctx, repo, digest, body=req.method != "HEAD",
                          byte_range=req.header("range"))
    headers = [*_BLOB_HEADERS, ("Docker-Content-Digest", str(digest)), ("Etag", f'"{digest}"')]
    if found.url is not None:  # the store serves the bytes itself (S3 presigned URL)
        return Response(307, [("Location", found.url), ("Docker-Content-Digest", str(digest))])
    if found.file is None:
        return Response(200, [*headers, ("Content-Length", str(found.size))])
    if found.wanted is None:
        return Response(200, headers, file=found.file, length=found.size)
    start, end = found.wanted
    return Response(206, [*headers, ("Content-Range", f"bytes {start}-{end}/{found.size}")],
                    file=found.file, offset=start, length=end - start + 1)


async def delete_blob(ctx: Context, req: Request, route: routes.Route) -> Response:
    repo, digest = repository(route), parse_digest(route.ref)
    if not await offload(ctx.storage.unlink_blob, repo, digest):
        raise HTTPError("BLOB_UNKNOWN", str(digest))
    return Response(202)


# -- uploads -------------------------------------------------------------------------------

async def start_upload(ctx: Context, req: Request, route: routes.Route) -> Response:
    """POST: mount (201), single-request upload with `?digest=` (201), or a new session (202)."""
    repo = repository(route)
    if req.arg("mount") is not None:
        mounted = await _try_mount(ctx, repo, req.arg("mount"), req.arg("from"))
        if mounted is not None:
            return mounted
    elif req.arg("digest") is not None:
        digest = parse_digest(req.arg("digest"))
        if ctx.uploads.direct:
            return await _ingest(ctx, req, repo, digest, None)
        session = await offload(ctx.uploads.start, repo)
        async with ctx.uploads.lock(session):
            await _append(ctx, req, session, 0)
            return await _close(ctx, repo, session, digest)
    session = await offload(ctx.uploads.start, repo)
    return upload_response(202, repo, session, 0)


async def _try_mount(ctx: Context, repo: str, mount: str | None,
                     source: str | None) -> Response | None:
    """201 if the blob could be linked from `source`; None to fall back to a new session."""
    if not mount or not source or not routes.valid_name(source) or not Digest.is_valid(mount):
        return None
    digest = Digest.parse(mount)
    if await offload(_mount, ctx, repo, source, digest):
        return created(repo, digest)
    return None


def _mount(ctx: Context, repo: str, source: str, digest: Digest) -> bool:
    return ctx.storage.blob_size(repo, digest) is not None or ctx.storage.mount_blob(
        repo, source, digest)


async def _session(ctx: Context, route: routes.Route) -> tuple[str, str, int]:
    """(repo, session id, offset) of an existing session, else BLOB_UPLOAD_UNKNOWN."""
    repo = repository(route)
    size = await offload(ctx.uploads.size, repo, route.ref)
    if size is None:
        raise HTTPError("BLOB_UPLOAD_UNKNOWN", route.ref[:100])
    return repo, route.ref, size


async def upload_status(ctx: Context, req: Request, route: routes.Route) -> Response:
    repo, session, size = await _session(ctx, route)
    return upload_response(204, repo, session, size)


async def cancel_upload(ctx: Context, req: Request, route: routes.Route) -> Response:
    _, session, _ = await _session(ctx, route)
    async with ctx.uploads.lock(session):  # never pull the data from under a running commit
        await _session(ctx, route)
        await offload(ctx.uploads.remove, session)
    return Response(204, [("Docker-Upload-UUID", session)])


def _session_id(route: routes.Route) -> str:
    """The session id of the path, checked only for its form (no store round trip): the
    store is asked once, under the session's lock, where the answer cannot go stale."""
    repository(route)
    if not SESSION_ID.fullmatch(route.ref):
        raise HTTPError("BLOB_UPLOAD_UNKNOWN", route.ref[:100])
    return route.ref


async def patch_upload(ctx: Context, req: Request, route: routes.Route) -> Response:
    """Append a chunk (in order, checked against `Content-Range`) or a streamed body."""
    async with ctx.uploads.lock(_session_id(route)):
        repo, session, offset = await _session(ctx, route)
        size = await _append(ctx, req, session, offset, repo=repo)
        return upload_response(202, repo, session, size)


async def put_upload(ctx: Context, req: Request, route: routes.Route) -> Response:
    """Close the session with `?digest=`, optionally with a last chunk in the body."""
    async with ctx.uploads.lock(_session_id(route)):
        repo, session, offset = await _session(ctx, route)
        digest = parse_digest(req.arg("digest"))  # before the body: a bad one keeps the session
        if offset == 0 and ctx.uploads.direct and _has_body(req):
            return await _ingest(ctx, req, repo, digest, session)
        await _append(ctx, req, session, offset, repo=repo)
        return await _close(ctx, repo, session, digest)


async def _ingest(ctx: Context, req: Request, repo: str, digest: Digest,
                  session: str | None) -> Response:
    """The whole blob in this one body: straight into the store (see UploadStore.direct)."""
    _limit(ctx, req, 0)
    expected = _expected_length(req, 0, repo if session else "", session or "")
    actual, size = await ctx.uploads.ingest(repo, digest, req.chunks())
    if session is not None:
        await offload(ctx.uploads.remove, session)
    if expected is not None and size != expected:
        raise HTTPError("SIZE_INVALID", f"received {size} bytes, expected {expected}")
    if actual != digest:
        raise HTTPError("DIGEST_INVALID", {"expected": str(digest), "actual": str(actual)})
    return created(repo, digest)


async def _append(ctx: Context, req: Request, session: str, offset: int,
                  *, repo: str = "") -> int:
    """Stream the body into the session after checking its range; return the new size."""
    _limit(ctx, req, offset)
    expected = _expected_length(req, offset, repo, session)
    if expected == 0 or (expected is None and not _has_body(req)):
        return offset
    try:
        written = await ctx.uploads.append(session, offset, req.chunks())
    except UploadConflict:  # another replica stored this range first: the client resumes
        now = await offload(ctx.uploads.size, repo, session) if repo else None
        at = upload_response(416, repo, session, now).headers if now is not None else []
        raise HTTPError("RANGE_INVALID", "another request wrote this part of the upload first",
                        headers=tuple(at)) from None
    if expected is not None and written != expected:
        await offload(ctx.uploads.truncate, session, offset)
        raise HTTPError("SIZE_INVALID", f"received {written} bytes, expected {expected}")
    return offset + written


def _limit(ctx: Context, req: Request, offset: int) -> None:
    """Apply the blob size limit to a body appended at `offset`, the size the store holds:
    the limit holds across requests, whichever replica or worker received the others."""
    if ctx.blob_limit is not None:
        ctx.blob_limit.apply(req, offset)


def _has_body(req: Request) -> bool:
    return "transfer-encoding" in req.headers or bool(req.content_length())


def _expected_length(req: Request, offset: int, repo: str, session: str) -> int | None:
    """Bytes the body must hold per `Content-Range`/`Content-Length` (None: unknown)."""
    length = req.content_length()
    header = req.header("content-range")
    if header is None:
        return length
    wanted = parse_upload_range(header)
    if wanted is None or wanted[0] != offset:
        at = upload_response(416, repo, session, offset).headers if repo else []
        raise HTTPError("RANGE_INVALID", f"upload is at offset {offset}; got {header[:60]!r}",
                        headers=tuple(at))
    if length is not None and length != wanted[1] - wanted[0] + 1:
        raise HTTPError("SIZE_INVALID", f"Content-Length {length} does not match {header!r}")
    return wanted[1] - wanted[0] + 1


async def _close(ctx: Context, repo: str, session: str, digest: Digest) -> Response:
    """Verify the session's bytes against `digest` and move them into the store (201)."""
    actual = await offload(ctx.uploads.digest, session, digest.algorithm)
    if actual != digest:
        await offload(ctx.uploads.remove, session)
        raise HTTPError("DIGEST_INVALID", {"expected": str(digest), "actual": str(actual)})
    await offload(ctx.uploads.commit, session, repo, digest)
    return created(repo, digest)
