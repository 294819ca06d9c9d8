"""Paths of the v2 API and the rules for upload `Location`s (protocol.md §2.8).

The upload URL a registry returns is opaque: it is resolved against the URL of the request
that returned it, every query parameter it has is kept byte for byte, and `digest` is merged
into its query (`?` or `&`), never appended blindly. That makes the `?_state=…?digest=` bug
impossible.
"""

from __future__ import annotations

from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from freight.digest import Digest


def base_url(host: str, *, plain_http: bool) -> str:
    return f"{'http' if plain_http else 'https'}://{host}"


def ping_path() -> str:
    return "/v2/"


def blob_path(repository: str, digest: Digest) -> str:
    return f"/v2/{repository}/blobs/{digest}"


def manifest_path(repository: str, reference: str) -> str:
    return f"/v2/{repository}/manifests/{reference}"


def uploads_path(repository: str) -> str:
    return f"/v2/{repository}/blobs/uploads/"


def tags_path(repository: str) -> str:
    return f"/v2/{repository}/tags/list"


def catalog_path() -> str:
    return "/v2/_catalog"


def referrers_path(repository: str, digest: Digest) -> str:
    return f"/v2/{repository}/referrers/{digest}"


def resolve_location(location: str, request_url: str) -> str:
    """Make a `Location` absolute against the URL it answered (RFC 3986 reference resolution)."""
    return urljoin(request_url, location.strip())


def add_query(url: str, name: str, value: str) -> str:
    """Add `name=value` to `url`'s query, keeping what is there exactly as it is."""
    parts = urlsplit(url)
    pair = f"{name}={quote(value, safe='')}"
    query = f"{parts.query}&{pair}" if parts.query else pair
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def with_digest(url: str, digest: Digest) -> str:
    """The URL that closes an upload session: its Location with `digest` merged in."""
    return add_query(url, "digest", str(digest))


def same_origin(url_a: str, url_b: str) -> bool:
    """True when both URLs have the same scheme, host and port (credentials may travel)."""
    a, b = urlsplit(url_a), urlsplit(url_b)
    return (a.scheme, a.hostname, a.port or _default_port(a.scheme)) == (
        b.scheme, b.hostname, b.port or _default_port(b.scheme))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80
