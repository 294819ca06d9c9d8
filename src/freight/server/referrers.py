"""The referrers API (distribution-spec v1.1.1, `GET /v2/<name>/referrers/<digest>`) and
Accept negotiation for manifest reads.

Referrers: an OCI index (`Content-Type: application/vnd.oci.image.index.v1+json`, exactly)
of the manifests whose `subject` is the digest, never 404 for an unknown subject (an empty
index), 400 for a malformed digest. Entries carry the referrer's `artifactType` (else its
config media type) and its annotations. `?artifactType=` filters, and the reply says so with
`OCI-Filters-Applied: artifactType`. Pages are sorted by digest; `n` sets the page size
(default `PAGE_SIZE`) and a `Link: <...?n=..&last=<digest>>; rel="next"` leads on, like
the tags list.

Negotiation: a client that lists manifest types in `Accept` and not the stored one gets 404
MANIFEST_UNKNOWN, as distribution does, instead of bytes it cannot parse (a Docker client
asking only for schema2 never receives an OCI manifest). No `Accept`, `*/*`, or an Accept
naming no manifest type at all gets what is stored.

The `?tag=` multi-tag manifest PUT is a distribution-spec HEAD addition (unreleased); this
server targets v1.1.1 and does not implement it.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from freight import mediatypes as mt
from freight.digest import Digest
from freight.distribution import routes
from freight.manifest import load_json
from freight.server.exchange import (
    Context,
    Handler,
    HTTPError,
    Request,
    Response,
    parse_digest,
    repository,
)
from freight.server.manifests import base_type, read_manifest, reference

PAGE_SIZE = 256  # referrers per page unless `n` says otherwise; keeps a reply under ~100 KB
MAX_PAGE_SIZE = 10000  # a larger `n` is clamped: one reply must stay bounded
_KNOWN = frozenset(mt.ACCEPT_MANIFESTS)


async def list_referrers(ctx: Context, req: Request, route: routes.Route) -> Response:
    repo, subject = repository(route), parse_digest(route.ref)
    found = await asyncio.to_thread(_descriptors, ctx, repo, subject)
    headers: list[tuple[str, str]] = []
    wanted = req.arg("artifactType")
    if wanted:
        found = [d for d in found if d.get("artifactType") == wanted]
        headers.append(("OCI-Filters-Applied", "artifactType"))
    page, link = _page(found, req, f"/v2/{repo}/referrers/{subject}", wanted)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": page}
    return Response.json(index, headers=headers + link, content_type=mt.OCI_INDEX)


def _page(found: list[dict[str, Any]], req: Request, path: str,
          wanted: str | None) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    count, last = req.arg("n"), req.arg("last")
    if count is not None and not count.isdigit():
        raise HTTPError("PAGINATION_NUMBER_INVALID", {"n": count[:40]})
    limit = min(int(count), MAX_PAGE_SIZE) if count else PAGE_SIZE
    if last:
        found = [d for d in found if d["digest"] > last]
    page = found[:limit]
    if limit == 0 or len(found) <= limit:
        return page, []
    query = {"n": limit, "last": page[-1]["digest"]}
    if wanted:
        query["artifactType"] = wanted
    return page, [("Link", f'<{path}?{urlencode(query)}>; rel="next"')]


def _descriptors(ctx: Context, repo: str, subject: Digest) -> list[dict[str, Any]]:
    out = []
    for digest in sorted(ctx.storage.referrers(repo, subject), key=str):
        content_type = ctx.storage.manifest_type(repo, digest)
        try:
            data = read_manifest(ctx.storage, digest)
        except FileNotFoundError:
            continue  # deleted while we listed
        if content_type is not None:
            out.append(_descriptor(digest, base_type(content_type), data))
    return out


def _descriptor(digest: Digest, media_type: str, data: bytes) -> dict[str, Any]:
    document = load_json(data, "manifest")
    entry: dict[str, Any] = {"mediaType": media_type, "digest": str(digest), "size": len(data)}
    config = document.get("config")
    artifact = document.get("artifactType") or (
        config.get("mediaType") if isinstance(config, dict) else None)
    if artifact:
        entry["artifactType"] = artifact
    if document.get("annotations"):
        entry["annotations"] = document["annotations"]
    return entry


def negotiated(handler: Handler) -> Handler:
    """`handler` (a manifest GET/HEAD) behind the Accept check described above."""

    async def check(ctx: Context, req: Request, route: routes.Route) -> Response:
        accepted = accepted_types(req.header("accept"))
        if accepted is not None:
            stored = await asyncio.to_thread(_stored_type, ctx, repository(route), route)
            if stored is not None and stored not in accepted:
                raise HTTPError("MANIFEST_UNKNOWN", {
                    "reason": f"the manifest is {stored}, which the Accept header does not "
                              "allow", "accept": sorted(accepted)})
        return await handler(ctx, req, route)

    return check


def accepted_types(header: str | None) -> frozenset[str] | None:
    """The manifest types an Accept header allows; None when it allows anything."""
    if not header:
        return None
    types = {part.split(";", 1)[0].strip().lower() for part in header.split(",")}
    if types & {"*/*", "application/*"} or not types & _KNOWN:
        return None
    return frozenset(types & _KNOWN)


def _stored_type(ctx: Context, repo: str, route: routes.Route) -> str | None:
    tag, digest = reference(route)
    if tag is not None:
        digest = ctx.storage.resolve_tag(repo, tag)
    if digest is None:
        return None  # the handler answers MANIFEST_UNKNOWN itself
    content_type = ctx.storage.manifest_type(repo, digest)
    return base_type(content_type) if content_type else None
