"""The referrers API (distribution-spec v1.1.1, `GET /v2/<name>/referrers/<digest>`).

Referrers: an OCI index (`Content-Type: application/vnd.oci.image.index.v1+json`, exactly)
of the manifests whose `subject` is the digest, never 404 for an unknown subject (an empty
index), 400 for a malformed digest. Entries carry the referrer's `artifactType` (else its
config media type) and its annotations. `?artifactType=` filters, and the reply says so with
`OCI-Filters-Applied: artifactType`. Pages are sorted by digest; `n` sets the page size
(default `PAGE_SIZE`) and a `Link: <...?n=..&last=<digest>>; rel="next"` leads on, like
the tags list.

Accept negotiation for manifest reads is in manifests.py (`_lookup`), in the same store
round trip as the read itself.

The `?tag=` multi-tag manifest PUT is a distribution-spec HEAD addition (unreleased); this
server targets v1.1.1 and does not implement it.
"""

from __future__ import annotations

from typing import Any

from freight import mediatypes as mt
from freight.digest import Digest
from freight.distribution import routes
from freight.manifest import load_json
from freight.server.exchange import (
    Context,
    Request,
    Response,
    parse_digest,
    repository,
)
from freight.server.listing import paginate
from freight.server.manifests import base_type, read_manifest
from freight.server.threads import offload

PAGE_SIZE = 256  # referrers per page unless `n` says otherwise; keeps a reply under ~100 KB
MAX_PAGE_SIZE = 10000  # a larger `n` is clamped: one reply must stay bounded


async def list_referrers(ctx: Context, req: Request, route: routes.Route) -> Response:
    repo, subject = repository(route), parse_digest(route.ref)
    found = await offload(_descriptors, ctx, repo, subject)
    headers: list[tuple[str, str]] = []
    wanted = req.arg("artifactType")
    if wanted:
        found = [d for d in found if d.get("artifactType") == wanted]
        headers.append(("OCI-Filters-Applied", "artifactType"))
    page, link = paginate(found, req, f"/v2/{repo}/referrers/{subject}",
                          key=lambda d: str(d["digest"]), default=PAGE_SIZE,
                          maximum=MAX_PAGE_SIZE,
                          query={"artifactType": wanted} if wanted else None)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": page}
    return Response.json(index, headers=headers + link, content_type=mt.OCI_INDEX)


def _descriptors(ctx: Context, repo: str, subject: Digest) -> list[dict[str, Any]]:
    out = []
    for digest in sorted(ctx.storage.referrers(repo, subject), key=str):
        content_type = ctx.storage.manifest_type(repo, digest)
        try:
            data = read_manifest(ctx, digest)
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
