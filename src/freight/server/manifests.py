"""Manifest endpoints: GET/HEAD/PUT/DELETE by tag or digest (protocol.md §3).

The exact bytes are stored and served with the exact Content-Type they were pushed with.
A PUT is checked before anything is stored: size limit (413), media type, JSON shape, digest
of the reference, and that every blob and child manifest it needs is in the repository.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from freight import mediatypes as mt
from freight.digest import Digest
from freight.distribution import routes
from freight.errors import SourceError
from freight.manifest import Descriptor, Index, Manifest
from freight.server import documents
from freight.server.exchange import (
    Context,
    HTTPError,
    Request,
    Response,
    parse_digest,
    repository,
)
from freight.server.storage import Storage
from freight.server.threads import offload

MAX_MANIFEST_SIZE = 4 << 20  # distribution's limit; the spec asks registries to take >= 4 MB
SUPPORTED_TYPES = mt.MANIFESTS | mt.INDEXES
_KNOWN = frozenset(mt.ACCEPT_MANIFESTS)


def reference(route: routes.Route) -> tuple[str | None, Digest | None]:
    """(tag, None) or (None, digest) from the path; TAG_INVALID / DIGEST_INVALID otherwise."""
    if routes.looks_like_digest(route.ref):
        return None, parse_digest(route.ref)
    if not routes.valid_tag(route.ref):
        raise HTTPError("TAG_INVALID", route.ref[:200])
    return route.ref, None


def read_manifest(ctx: Context, digest: Digest) -> bytes:
    """The manifest's stored bytes (blocking), from the cache when this process has them.

    Bytes are cached only once they hash to `digest`: the cache can never serve bytes the
    store does not hold under that name.
    """
    cached = ctx.manifests.get(digest)
    if cached is not None:
        return cached
    with ctx.storage.open_blob(digest) as f:
        data = f.read(MAX_MANIFEST_SIZE + 1)
    if digest.algorithm in hashlib.algorithms_available and \
            hashlib.new(digest.algorithm, data).hexdigest() == digest.encoded:
        ctx.manifests.put(digest, data)
    return data


@dataclass(frozen=True)
class Wanted:
    """What a manifest GET/HEAD asks for: the reference, the types its `Accept` allows
    (None: any) and the digests its `If-None-Match` holds."""

    ref: str
    accepted: frozenset[str] | None
    if_none_match: str | None

    @classmethod
    def of(cls, req: Request, route: routes.Route) -> Wanted:
        return cls(route.ref, accepted_types(req.header("accept")), req.header("if-none-match"))


def accepted_types(header: str | None) -> frozenset[str] | None:
    """The manifest types an Accept header allows; None when it allows anything."""
    if not header:
        return None
    types = {part.split(";", 1)[0].strip().lower() for part in header.split(",")}
    if types & {"*/*", "application/*"} or not types & _KNOWN:
        return None
    return frozenset(types & _KNOWN)


def _resolve(ctx: Context, repo: str, ref: str) -> tuple[Digest, str]:
    """(digest, stored Content-Type) of the manifest `ref` names: one read of the tag (if
    it is one, never cached: tags change) and one of the revision link, which a tag read
    just now lets come from `ctx.revisions` for a moment (cache.Recent says why).

    A reference that is no valid tag or digest names no manifest: MANIFEST_UNKNOWN (404), as
    the OCI spec and its conformance suite want for GET and HEAD.
    """
    digest: Digest | None = None
    content_type: str | None = None
    if routes.looks_like_digest(ref):
        digest = Digest.parse(ref) if Digest.is_valid(ref) else None
        if digest is not None:
            content_type = ctx.storage.manifest_type(repo, digest)
    elif routes.valid_tag(ref):
        digest = ctx.storage.resolve_tag(repo, ref)
        if digest is not None:
            content_type = _tagged_revision(ctx, repo, digest)
    if digest is None or content_type is None:
        raise HTTPError("MANIFEST_UNKNOWN", ref[:200])
    return digest, content_type


def _tagged_revision(ctx: Context, repo: str, digest: Digest) -> str | None:
    """The Content-Type of the revision a tag just read names: from `ctx.revisions` if
    read within its seconds, else from the store (and kept there if present)."""
    content_type = ctx.revisions.get((repo, digest))
    if content_type is None:
        content_type = ctx.storage.manifest_type(repo, digest)
        if content_type is not None:
            ctx.revisions.put((repo, digest), content_type)
    return content_type


def _lookup(ctx: Context, repo: str, wanted: Wanted) -> tuple[Digest, str, bytes | None]:
    """(digest, Content-Type, bytes) of the manifest `wanted` names (blocking).

    A client that lists manifest types in `Accept` and not the stored one gets 404
    MANIFEST_UNKNOWN, as distribution does, instead of bytes it cannot parse (a Docker client
    asking only for schema2 never receives an OCI manifest). The bytes are None when
    `If-None-Match` already holds the digest (304).
    """
    digest, content_type = _resolve(ctx, repo, wanted.ref)
    if wanted.accepted is not None and base_type(content_type) not in wanted.accepted:
        raise HTTPError("MANIFEST_UNKNOWN", {
            "reason": f"the manifest is {base_type(content_type)}, which the Accept header "
                      "does not allow", "accept": sorted(wanted.accepted)})
    if wanted.if_none_match is not None and str(digest) in wanted.if_none_match:
        return digest, content_type, None
    try:
        return digest, content_type, read_manifest(ctx, digest)
    except FileNotFoundError:
        raise HTTPError("MANIFEST_UNKNOWN", wanted.ref[:200]) from None


async def get_manifest(ctx: Context, req: Request, route: routes.Route) -> Response:
    """The stored bytes, `Content-Type` as pushed, digest and ETag; 304 on `If-None-Match`.

    Tag, type and bytes are looked up in one worker-thread call: storage may block (disk,
    network), and one hop per request keeps the GET rate up.
    """
    repo = repository(route)
    digest, content_type, data = await offload(_lookup, ctx, repo, Wanted.of(req, route))
    headers = [("Docker-Content-Digest", str(digest)), ("Etag", f'"{digest}"')]
    if data is None:
        return Response(304, headers)
    headers += [("Content-Type", content_type), ("Content-Length", str(len(data)))]
    return Response(200, headers, data)


async def delete_manifest(ctx: Context, req: Request, route: routes.Route) -> Response:
    """By digest: the manifest and its tags; by tag: only the tag. 202, or MANIFEST_UNKNOWN."""
    repo = repository(route)
    tag, digest = reference(route)
    if digest is not None:
        done = await offload(ctx.storage.delete_manifest, repo, digest)
        ctx.revisions.forget((repo, digest))
    else:
        done = await offload(ctx.storage.delete_tag, repo, str(tag))
    if not done:
        raise HTTPError("MANIFEST_UNKNOWN", route.ref)
    return Response(202)


async def put_manifest(ctx: Context, req: Request, route: routes.Route) -> Response:
    repo = repository(route)
    tag, wanted = reference(route)
    data = await req.read(MAX_MANIFEST_SIZE)
    content_type, document = check_media_type(req.header("content-type"), data)
    algorithm = wanted.algorithm if wanted is not None else "sha256"
    digest = Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
    if wanted is not None and digest != wanted:
        raise HTTPError("DIGEST_INVALID", {"expected": str(wanted), "actual": str(digest)})
    subject = await offload(check_references, ctx.storage, repo, data,
                            base_type(content_type), document)
    await offload(ctx.storage.put_manifest, repo, digest, content_type, data,
                  tag=tag, subject=subject)
    ctx.revisions.forget((repo, digest))  # pushed again, maybe with another Content-Type
    try:  # again, now that the revision is visible to a gc (see gc.py, "Sweep")
        await offload(check_references, ctx.storage, repo, data, base_type(content_type),
                      document)
    except HTTPError:  # a gc removed what it needs between the check and the write: undo
        await offload(ctx.storage.delete_manifest, repo, digest)
        raise
    ctx.manifests.put(digest, data)  # hashed above: its first GET needs no read of the bytes
    headers = [("Location", f"/v2/{repo}/manifests/{digest}"),
               ("Docker-Content-Digest", str(digest))]
    if subject is not None:
        headers.append(("OCI-Subject", str(subject)))
    return Response(201, headers)


def base_type(content_type: str) -> str:
    """The media type without parameters (`; charset=...`)."""
    return content_type.split(";", 1)[0].strip().lower()


def check_media_type(header: str | None, data: bytes) -> tuple[str, dict[str, Any]]:
    """(Content-Type to store, parsed JSON); MANIFEST_INVALID unless both agree on a type
    freight knows and the document is schema version 2."""
    document = documents.parse(data)
    declared = document.get("mediaType")
    if header and declared and base_type(header) != declared:
        raise HTTPError("MANIFEST_INVALID",
                        f"Content-Type {header!r} differs from mediaType {declared!r}")
    content_type = header or (declared if isinstance(declared, str) else "")
    if base_type(content_type) not in SUPPORTED_TYPES:
        raise HTTPError("MANIFEST_INVALID", f"unsupported manifest media type {content_type!r}")
    if document.get("schemaVersion") != 2 or type(document["schemaVersion"]) is not int:
        raise HTTPError("MANIFEST_INVALID", "schemaVersion must be 2")
    documents.check(document, index=mt.is_index(base_type(content_type)))
    return content_type, document


def check_references(storage: Storage, repo: str, data: bytes, media_type: str,
                     document: dict[str, Any]) -> Digest | None:
    """Require what the manifest references (MANIFEST_BLOB_UNKNOWN); return its subject.

    The subject itself need not exist (the spec says so: referrers may come first).
    Layers with `urls` (foreign layers) are not stored by registries, so not required.
    """
    try:
        if mt.is_index(media_type):
            for child in Index.parse(data).manifests:
                _require(storage.manifest_type(repo, child.digest) is not None, child)
        else:
            image = Manifest.parse(data)
            for blob in (image.config, *image.layers):
                _require(bool(blob.urls) or storage.blob_size(repo, blob.digest) is not None,
                         blob)
        subject = document.get("subject")
        return Descriptor.from_json(subject, "subject").digest if subject else None
    except SourceError as exc:
        raise HTTPError("MANIFEST_INVALID", str(exc)[:300]) from None


def _require(present: bool, descriptor: Descriptor) -> None:
    if not present:
        raise HTTPError("MANIFEST_BLOB_UNKNOWN", str(descriptor.digest))
