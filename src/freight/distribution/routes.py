"""Matching request paths of the v2 API to routes, and the grammar of names, tags and uploads.

The repository name may contain slashes, so a path is split at the *route suffix*
(`/manifests/<ref>`, `/blobs/<digest>`, ...) and the name is validated on its own. Nothing
here touches I/O; the server dispatches on `Route.kind`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlencode

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# distribution's upload id grammar (registry/api/v2/descriptors.go); the server narrows it.
UPLOAD_ID = re.compile(r"[A-Za-z0-9_.=-]+")
MAX_NAME_LENGTH = 255  # clients cap host/name at 255; a longer name cannot be pulled anyway

# Route kinds.
BASE = "base"
CATALOG = "catalog"
TAGS = "tags"
MANIFEST = "manifest"
BLOB = "blob"
UPLOADS = "uploads"
UPLOAD = "upload"
REFERRERS = "referrers"

_REPO_ROUTE = re.compile(
    r"/v2/(?P<name>.+?)/(?:"
    r"(?P<tags>tags/list)"
    r"|manifests/(?P<manifest>[^/]+)"
    r"|blobs/uploads/?(?P<upload>[^/]*)"
    r"|blobs/(?P<blob>[^/]+)"
    r"|referrers/(?P<referrers>[^/]+)"
    r")"
)


@dataclass(frozen=True)
class Route:
    """What a path asks for: `kind`, the repository `name` and the last path segment `ref`.

    `ref` is raw (a tag, a digest string or an upload id): validating it is the handler's
    job, so that a malformed one gets the right error code rather than a routing 404.
    """

    kind: str
    name: str = ""
    ref: str = ""


def match(path: str) -> Route | None:
    """The route for a decoded request path, or None if it is not a v2 API path."""
    if path in ("/v2/", "/v2"):
        return Route(BASE)
    if path == "/v2/_catalog":
        return Route(CATALOG)
    found = _REPO_ROUTE.fullmatch(path)
    if found is None:
        return None
    name = found.group("name")
    if found.group("tags"):
        return Route(TAGS, name)
    for kind, group in ((MANIFEST, "manifest"), (BLOB, "blob"), (REFERRERS, "referrers")):
        if found.group(group) is not None:
            return Route(kind, name, found.group(group))
    upload = found.group("upload")
    return Route(UPLOAD, name, upload) if upload else Route(UPLOADS, name)


def valid_name(name: str) -> bool:
    """True for a repository name the OCI grammar accepts (so never `..` or an empty part)."""
    return len(name) <= MAX_NAME_LENGTH and NAME.fullmatch(name) is not None


def valid_tag(tag: str) -> bool:
    return TAG.fullmatch(tag) is not None


def looks_like_digest(reference: str) -> bool:
    """A manifest reference is a digest when it has a colon (tags cannot)."""
    return ":" in reference


def next_link(path: str, n: int, last: str) -> str:
    """`Link` header value for the next page of a tags or catalog listing (relative, like
    distribution)."""
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'
