"""Listings: tags and the catalog (protocol.md §3.4), and the pager every listing uses
(the referrers API too)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlencode

from freight.distribution import routes
from freight.distribution.headers import parse_uint
from freight.server.exchange import Context, HTTPError, Request, Response, repository
from freight.server.threads import offload

T = TypeVar("T")


def paginate(items: list[T], req: Request, path: str, *, key: Callable[[T], str] = str,
             default: int | None = None, maximum: int | None = None,
             query: dict[str, str] | None = None) -> tuple[list[T], list[tuple[str, str]]]:
    """The page `?n=`/`?last=` ask for and its `Link` header, for every listing.

    `items` are sorted by `key`; `last` is exclusive. Without `n` the page holds `default`
    items (None: all of them); `n` is clamped to `maximum`. PAGINATION_NUMBER_INVALID for
    an `n` that is no plain decimal. The `Link` (relative, like distribution's) carries
    `query` too, so a filtered listing stays filtered on the next page.
    """
    last, count = req.arg("last"), req.arg("n")
    if last:
        items = [item for item in items if key(item) > last]
    limit = default
    if count:
        limit = parse_uint(count)
        if limit is None:
            raise HTTPError("PAGINATION_NUMBER_INVALID", {"n": count[:40]})
    if limit is None:
        return items, []
    limit = min(limit, maximum) if maximum is not None else limit
    page = items[:limit]
    if limit == 0 or len(items) <= limit:
        return page, []
    following = urlencode({"n": limit, "last": key(page[-1]), **(query or {})})
    return page, [("Link", f'<{path}?{following}>; rel="next"')]


async def list_tags(ctx: Context, req: Request, route: routes.Route) -> Response:
    repo = repository(route)
    tags = await offload(ctx.storage.tags, repo)
    if tags is None:
        raise HTTPError("NAME_UNKNOWN", {"name": repo})
    page, link = paginate(tags, req, f"/v2/{repo}/tags/list")
    return Response.json({"name": repo, "tags": page}, headers=link)


async def catalog(ctx: Context, req: Request, route: routes.Route) -> Response:
    names = await offload(ctx.storage.repositories)
    page, link = paginate(names, req, "/v2/_catalog")
    return Response.json({"repositories": page}, headers=link)
