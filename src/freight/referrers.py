"""Referrers: the signatures, SBOMs and attestations whose subject is an image.

Discovery (`Finder`) asks the referrers API (`GET /v2/<name>/referrers/<digest>`, every
`Link` page, `artifactType` filtered by the registry or, when it says it did not filter
(no `OCI-Filters-Applied`), here). A registry without the API answers 404; then the
referrers tag (`sha256-<hex>`, an index the clients keep) is read instead. Cosign's own
tags (`sha256-<hex>.sig`, `.att`, `.sbom`) are looked for in both cases. Each referrer's
own referrers are found the same way (a signature of an SBOM), to `MAX_DEPTH`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from freight import mediatypes as mt
from freight.digest import Digest
from freight.distribution import urls
from freight.distribution.headers import parse_next_link
from freight.engine.workers import all_of
from freight.errors import RegistryError
from freight.manifest import Descriptor, Index, load_json
from freight.referrer_tags import COSIGN_SUFFIXES, cosign_tag, is_referrer_tag, referrers_tag
from freight.sync.store import Found, RegistryStore
from freight.transport.client import RegistryClient

__all__ = ["API", "COSIGN", "COSIGN_SUFFIXES", "MAX_DEPTH", "PLATFORM_LOOKUPS", "TAG_SCHEMA",
           "Finder", "Listing", "Referrer", "artifact_type", "cosign_tag", "descriptor_for",
           "find_referrers", "is_referrer_tag", "referrers_tag"]

MAX_DEPTH = 8  # referrers of referrers; deeper chains are a loop or an abuse
MAX_PAGES = 1000  # referrers API pages for one subject before we call it a loop
# requests in flight for one subject: its list and cosign's three tags, so a registry far
# away costs one round trip there, not four in a row
LOOKUPS = 4
PLATFORM_LOOKUPS = 4  # platforms of an index whose referrers are looked up at once
API, TAG_SCHEMA, COSIGN = "api", "tag-schema", "cosign"  # how a referrer was found


@dataclass(frozen=True)
class Referrer:
    """One referrer: its descriptor, how it was found, and its own referrers."""

    descriptor: Descriptor
    artifact_type: str
    via: str
    tag: str | None = None  # the cosign tag it lives under
    children: Listing | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": str(self.descriptor.digest),
                               "mediaType": self.descriptor.media_type,
                               "size": self.descriptor.size,
                               "artifactType": self.artifact_type, "via": self.via}
        if self.tag:
            out["tag"] = self.tag
        if self.descriptor.annotations:
            out["annotations"] = dict(self.descriptor.annotations)
        out["referrers"] = [r.to_json() for r in self.children.referrers] \
            if self.children else []
        return out


@dataclass(frozen=True)
class Listing:
    """The referrers of `subject`; `index` is the source's tag-schema index, if any."""

    subject: Digest
    referrers: tuple[Referrer, ...] = ()
    index: Found | None = None
    api: bool = False  # whether the registry answered the referrers API

    def walk(self) -> Iterator[Referrer]:
        for referrer in self.referrers:
            yield referrer
            if referrer.children:
                yield from referrer.children.walk()

    def to_json(self) -> dict[str, Any]:
        return {"subject": str(self.subject), "referrers": [r.to_json() for r in self.referrers]}


@dataclass
class Finder:
    """Finds referrers in one repository of a registry."""

    client: RegistryClient
    repository: str
    artifact_type: str | None = None
    recursive: bool = True
    # the repository's tags when already listed: tag-schema and cosign tags not among
    # them are not asked for (a re-sync then costs no HEAD per missing signature tag)
    known_tags: frozenset[str] | None = None
    _api: bool | None = field(default=None, repr=False)  # learnt on the first call

    def __post_init__(self) -> None:
        self.store = RegistryStore(self.client, self.repository)

    def find(self, subject: Digest, *, depth: int = 0) -> Listing:
        """Every referrer of `subject` (and theirs, when recursive). The look-ups of one
        subject (its list, cosign's tags) and of its referrers' own go at once: each is a
        request that ends, and none waits for another."""
        calls: list[Callable[[], Any]] = [partial(self._listed, subject)]
        calls += [partial(self._cosign_tag, subject, suffix) for suffix in COSIGN_SUFFIXES]
        (descriptors, index), *cosign = all_of(calls, at_once=LOOKUPS)
        found = [Referrer(d, artifact_type(d), API if self._api else TAG_SCHEMA)
                 for d in descriptors]
        found += [r for r in cosign if r is not None]
        if self.artifact_type and depth == 0:
            found = [r for r in found if r.artifact_type == self.artifact_type]
        if self.recursive and depth < MAX_DEPTH:
            children = all_of([partial(self.find, r.descriptor.digest, depth=depth + 1)
                               for r in found], at_once=LOOKUPS)
            found = [Referrer(r.descriptor, r.artifact_type, r.via, r.tag, below)
                     for r, below in zip(found, children, strict=True)]
        return Listing(subject, tuple(found), index, bool(self._api))

    def _listed(self, subject: Digest) -> tuple[list[Descriptor], Found | None]:
        if self._api is not False:
            listed = self._from_api(subject)
            if listed is not None:
                self._api = True
                return listed, None
            self._api = False
        return self._from_tag(subject)

    def _from_api(self, subject: Digest) -> list[Descriptor] | None:
        """The API's answer, all pages; None when the registry has no referrers API."""
        url: str | None = urls.referrers_path(self.repository, subject)
        if self.artifact_type:
            url = urls.add_query(str(url), "artifactType", self.artifact_type)
        out: list[Descriptor] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return out
            # 400/405: registries without the API that route the path elsewhere
            reply = self.client.request("GET", url, ok=(200, 400, 404, 405),
                                        headers={"Accept": mt.OCI_INDEX},
                                        what=f"listing the referrers of {subject.short}")
            if reply.status_code != 200 or not _is_index(reply):
                return out or None
            out += self._page(reply)
            url = self._next(reply)
        raise RegistryError(f"{self.client.host} sent more than {MAX_PAGES} referrers pages")

    def _page(self, reply: httpx.Response) -> list[Descriptor]:
        entries = Index.parse(reply.content, mt.OCI_INDEX, "referrers list").manifests
        if self.artifact_type and "artifactType" not in reply.headers.get(
                "OCI-Filters-Applied", ""):
            entries = tuple(d for d in entries if artifact_type(d) == self.artifact_type)
        return list(entries)

    def _next(self, reply: httpx.Response) -> str | None:
        link = parse_next_link(reply.headers.get("Link"))
        if link is None:
            return None
        url = urls.resolve_location(link, str(reply.url))
        if not urls.same_origin(url, self.client.base):
            raise RegistryError(f"{self.client.host} sent a referrers page link to another "
                                f"host ({url}); not following it with your credentials")
        return url

    def _head(self, tag: str) -> Found | None:
        if self.known_tags is not None and tag not in self.known_tags:
            return None
        return self.store.head_manifest(tag)

    def _from_tag(self, subject: Digest) -> tuple[list[Descriptor], Found | None]:
        tag = referrers_tag(subject)
        found = self._head(tag)
        if found is None:
            return [], None
        raw, kind = self.store.get_manifest(str(found.digest))
        if not mt.is_index(kind):
            return [], None  # not a referrers index: an ordinary tag that looks like one
        return list(Index.parse(raw, kind, f"referrers tag {tag}").manifests), found

    def _cosign_tag(self, subject: Digest, suffix: str) -> Referrer | None:
        tag = cosign_tag(subject, suffix)
        found = self._head(tag)
        if found is None:
            return None
        desc = Descriptor(found.media_type, found.digest, found.size)
        return Referrer(desc, f"cosign{suffix}", COSIGN, tag)


def artifact_type(desc: Descriptor) -> str:
    """A referrers-list entry's artifactType ("" when it has none)."""
    value = desc.extra.get("artifactType")
    return value if isinstance(value, str) else ""


def _is_index(reply: httpx.Response) -> bool:
    kind = reply.headers.get("Content-Type", "").split(";")[0].strip()
    return kind == mt.OCI_INDEX or (not kind and reply.content.startswith(b"{"))


def descriptor_for(raw: bytes, media_type: str) -> Descriptor:
    """The referrers-list descriptor of a manifest: artifactType (else its config's media
    type) and its annotations, as the distribution spec says."""
    document = load_json(raw, "referrer manifest")
    extra: dict[str, Any] = {}
    config = document.get("config")
    kind = document.get("artifactType") or (config.get("mediaType")
                                            if isinstance(config, dict) else None)
    if kind:
        extra["artifactType"] = kind
    annotations = document.get("annotations") or {}
    return Descriptor(media_type, Digest.of(raw), len(raw), None, dict(annotations), extra)


def find_referrers(reference: str, *, artifact_type: str | None = None,
                   recursive: bool = True, connection: Any = None) -> Listing:
    """The referrers of the image `reference` (a tag is resolved with one HEAD)."""
    from freight.connect import Connection
    from freight.reference import Reference
    from freight.sync.store import require

    ref = Reference.parse(reference)
    client = (connection or Connection()).client(ref.registry)
    try:
        finder = Finder(client, ref.repository, artifact_type, recursive)
        found = require(finder.store.head_manifest(ref.reference), str(ref))
        return finder.find(found.digest)
    finally:
        client.close()
