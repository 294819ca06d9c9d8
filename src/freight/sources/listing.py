"""Paginated listings (tags, catalog): `Link` pages followed to the end or to a limit.

Only links on the same registry are followed (credentials never go to another host), and
a link that repeats ends the listing with an error instead of a loop.
"""

from __future__ import annotations

import httpx

from freight import jsontext
from freight.distribution import urls
from freight.distribution.headers import parse_next_link
from freight.errors import RegistryError, UsageError
from freight.transport.client import RegistryClient


def list_all(
    client: RegistryClient, path: str, key: str, *, limit: int | None, page_size: int,
    what: str,
) -> tuple[tuple[str, ...], bool]:
    """Every item of a paginated listing (up to `limit`), and whether that was all of them."""
    _check_counts(limit, page_size)
    first = page_size if limit is None else min(page_size, limit)
    url: str | None = urls.add_query(path, "n", str(first))
    items: list[str] = []
    seen: set[str] = set()
    while url is not None and (limit is None or len(items) < limit):
        reply = client.request("GET", url, ok=(200,), what=what)
        seen.add(str(reply.url))
        items.extend(_page(reply, key, client.host))
        url = _next_page(client, reply, seen)
    complete = url is None and (limit is None or len(items) <= limit)
    return tuple(items if limit is None else items[:limit]), complete


def _check_counts(limit: int | None, page_size: int) -> None:
    if limit is not None and limit < 1:
        raise UsageError("the limit must be at least 1")
    if page_size < 1:
        raise UsageError("the page size must be at least 1")


def _page(reply: httpx.Response, key: str, host_name: str) -> list[str]:
    try:
        data = jsontext.parse(reply.content)
    except ValueError:
        raise RegistryError(f"{host_name} sent a listing that is not JSON") from None
    values = data.get(key) if isinstance(data, dict) else None
    if values is None and isinstance(data, dict):
        return []  # distribution sends `"tags": null` for a repository whose tags are gone
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RegistryError(f"{host_name} sent a listing without a list of {key!r}")
    return values


def _next_page(client: RegistryClient, reply: httpx.Response, seen: set[str]) -> str | None:
    """The next page's URL from `Link`, on the same registry; None at the end."""
    link = parse_next_link(reply.headers.get("Link"))
    if link is None:
        return None
    url = urls.resolve_location(link, str(reply.url))
    if not urls.same_origin(url, client.base):
        raise RegistryError(f"{client.host} sent a next-page link to another host ({url}); "
                            "not following it with your credentials")
    if str(httpx.URL(url)) in seen:
        raise RegistryError(f"{client.host} sent the same next-page link twice ({link})")
    return url
