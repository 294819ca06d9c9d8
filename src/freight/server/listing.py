"""Listings: tags, the catalog, and the referrers of a manifest (protocol.md §3.4, §3.6)."""

from __future__ import annotations

import asyncio
from typing import Any

from freight import mediatypes as mt
from freight.digest import Digest
from freight.distribution import routes
from freight.distribution.headers import parse_uint
from freight.manifest import load_json
from freight.server.exchange import (
    Context,
    HTTPError,
    Request,
    Response,
    parse_digest,
    repository,
)
from freight.server.manifests import base_type, read_manifest


def paginate(items: list[str], req: Request, path: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The page `n`/`last` ask for (items sorted; `last` exclusive) and its `Link` header."""
    last, count = req.arg("last"), req.arg("n")
    if last:
        items = [item for item in items if item > last]
    if count is None or count == "":
        return items, []
    limit = parse_uint(count)
    if limit is None:
        raise HTTPError("PAGINATION_NUMBER_INVALID", {"n": count[:40]})
    page = items[:limit]
    if limit == 0 or len(items) <= limit:
        return page, []
    return page, [("Link", routes.next_link(path, limit, page[-1]))]


async def list_tags(ctx: Context, req: Request, route: routes.Route) -> Response:
    repo = repository(route)
    tags = await asyncio.to_thread(ctx.storage.tags, repo)
    if tags is None:
        raise HTTPError("NAME_UNKNOWN", {"name": repo})
    page, link = paginate(tags, req, f"/v2/{repo}/tags/list")
    return Response.json({"name": repo, "tags": page}, headers=link)


async def catalog(ctx: Context, req: Request, route: routes.Route) -> Response:
    names = await asyncio.to_thread(ctx.storage.repositories)
    page, link = paginate(names, req, "/v2/_catalog")
    return Response.json({"repositories": page}, headers=link)


async def referrers(ctx: Context, req: Request, route: routes.Route) -> Response:
    """An OCI index of the manifests whose subject is the digest; empty if there are none."""
    repo, subject = repository(route), parse_digest(route.ref)
    found = await asyncio.to_thread(_descriptors, ctx, repo, subject)
    headers = []
    wanted = req.arg("artifactType")
    if wanted:
        found = [d for d in found if d.get("artifactType") == wanted]
        headers.append(("OCI-Filters-Applied", "artifactType"))
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": found}
    return Response.json(index, headers=headers, content_type=mt.OCI_INDEX)


def _descriptors(ctx: Context, repo: str, subject: Digest) -> list[dict[str, Any]]:
    out = []
    for digest in ctx.storage.referrers(repo, subject):
        content_type = ctx.storage.manifest_type(repo, digest)
        try:
            data = read_manifest(ctx.storage, digest)
        except FileNotFoundError:
            continue
        if content_type is not None:
            out.append(_descriptor(digest, base_type(content_type), data))
    return out


def _descriptor(digest: Digest, media_type: str, data: bytes) -> dict[str, Any]:
    """The referrers-API descriptor: artifactType (else config type), annotations copied."""
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
