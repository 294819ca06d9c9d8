"""Reading what a registry lists: the tags of a repository and the repositories of a registry.

Listings follow the registry's `Link: <url>; rel="next"` header (protocol.md §1.2, §3.6)
rather than building `last=` themselves, and stop at `limit`. Kept apart from
freight.inspect (manifests and configs) so that `freight tags` and `freight catalog` load
no manifest model: start-up is part of every command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from freight.connect import Connection
from freight.distribution import urls
from freight.errors import NotARegistry, NotFound, RegistryError, UsageError
from freight.reference import Reference
from freight.remote import as_registry, as_repository, open_client
from freight.sources.listing import list_all
from freight.transport.client import RegistryClient

DEFAULT_PAGE_SIZE = 1000  # ECR refuses a larger `n` (ggcr#681); fewer round trips elsewhere
TAGS_SHOWN = 10  # a missing tag's error names at most this many of the tags there are


@dataclass(frozen=True)
class TagList:
    """The tags of a repository, in the registry's order; `complete` is False when cut at
    `limit` (or when the registry may hold more)."""

    repository: Reference
    tags: tuple[str, ...]
    complete: bool


@dataclass(frozen=True)
class Catalog:
    """The repositories of a registry, in its order; `complete` as for TagList."""

    registry: str
    repositories: tuple[str, ...]
    complete: bool


def tags(
    repository: str | Reference, *, limit: int | None = None,
    page_size: int = DEFAULT_PAGE_SIZE, connection: Connection | None = None,
) -> TagList:
    """The tags of `repository` (`host/name`), following `Link` pages, at most `limit`."""
    repo = as_repository(repository)
    with open_client(connection, repo.registry) as client:
        client.auth.want(f"repository:{repo.repository}:pull")
        with registry_or_not(client):
            found, complete = list_all(client, urls.tags_path(repo.repository), "tags",
                                       limit=limit, page_size=page_size,
                                       what=f"listing the tags of {repo.repository}")
    return TagList(repo, found, complete)


def catalog(
    registry: str, *, limit: int | None = None, page_size: int = DEFAULT_PAGE_SIZE,
    connection: Connection | None = None,
) -> Catalog:
    """The repositories of `registry` (a host such as `localhost:5000`), at most `limit`."""
    with open_client(connection, as_registry(registry)) as client:
        client.auth.want("registry:catalog:*")
        with registry_or_not(client):
            found, complete = list_all(client, urls.catalog_path(), "repositories",
                                       limit=limit, page_size=page_size,
                                       what="listing the catalog")
    return Catalog(registry, found, complete)


@contextmanager
def registry_or_not(client: RegistryClient) -> Iterator[None]:
    """A 404 without a registry's error code, from a host whose /v2/ is missing too, is
    "not a registry" (a web server at that address), not "no such repository"."""
    try:
        yield
    except NotFound as exc:
        if exc.code is None and not client.speaks_the_api():
            raise client.not_a_registry(exc) from None
        raise


def missing_tag(client: RegistryClient, ref: Reference, exc: NotFound) -> RegistryError:
    """A NotFound for `ref`'s tag that names the tags the repository has (or says that the
    repository does not exist), so the next command is obvious. The listing is best effort."""
    said = f" ({exc.code})" if exc.code else ""
    tag = ref.tag or "latest"
    implicit = "" if ref.tag else " (no tag was given, so :latest)"
    try:
        with registry_or_not(client):
            found, complete = list_all(client, urls.tags_path(ref.repository), "tags",
                                       limit=TAGS_SHOWN, page_size=TAGS_SHOWN,
                                       what=f"listing the tags of {ref.repository}")
    except NotARegistry as wrong:  # a web server's 404 pages, not a registry's
        return wrong
    except NotFound:
        message = (f"{ref.name} does not exist{said}: no repository {ref.repository!r} on "
                   f"{ref.registry} (freight catalog {ref.registry} lists them)")
        return NotFound(message, status=exc.status, code=exc.code, detail=exc.detail)
    except (RegistryError, UsageError):
        return exc
    if not found:
        message = f"{ref.name} has no tag {tag!r}{implicit}{said}; it has no tags at all"
    else:
        more = "" if complete else f", … (freight tags {ref.name} lists them all)"
        message = (f"{ref.name} has no tag {tag!r}{implicit}{said}; it has: "
                   f"{', '.join(found)}{more}")
    return NotFound(message, status=exc.status, code=exc.code, detail=exc.detail)
