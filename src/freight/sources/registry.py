"""A registry repository as a source: manifests fetched and verified, blobs streamed lazily.

Manifests are read whole (they are small; the protocol caps them at a few MiB) and checked
against the digest asked for; blobs are opened as streams that follow redirects to blob
storage (httpx drops `Authorization` when the host changes) and are verified by whoever
consumes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import httpx

from freight import jsontext
from freight import mediatypes as mt
from freight.digest import Digest
from freight.distribution import urls
from freight.errors import NetworkError, RegistryError, SourceError, UsageError
from freight.manifest import Descriptor, Index, Manifest, Platform
from freight.reference import Reference
from freight.sources.listing import list_all
from freight.sources.model import Blob, ImageNode, IndexNode, Node, SourceImage, TreeWalk
from freight.transport.client import RegistryClient
from freight.transport.retry import RetryPolicy

MAX_RESUMES = 5  # Range resumes of one blob before the download counts as failed
MAX_MANIFEST_SIZE = 4 << 20  # distribution's limit; anything larger is not a manifest
READ_BLOCK = 1 << 20
TAGS_PAGE = 1000  # ECR's maximum page; registries that ignore n send everything


@dataclass(frozen=True)
class Fetched:
    raw: bytes
    media_type: str
    digest: Digest


class BlobStream:
    """A file-like reader over a streaming GET of a blob.

    A connection that breaks mid-blob is resumed with a `Range` request from the byte
    reached, so a cut download costs the bytes lost, not the whole blob. Resumes spend
    from the transport's one retry policy (with its waits): at most MAX_RESUMES in all,
    and `policy.attempts` in a row without a byte arriving between them.
    """

    def __init__(self, response: httpx.Response, host: str,
                 reopen: Callable[[int], httpx.Response],
                 policy: RetryPolicy | None = None) -> None:
        self._response, self._host, self._reopen = response, host, reopen
        self._chunks: Iterator[bytes] = response.iter_raw()  # as the network delivers
        self._rest = b""  # received but not yet read
        self._offset = 0  # bytes received so far
        self._closed = False  # closed (maybe by another thread, to end a read): no resume
        base = policy or RetryPolicy()
        self._budget = replace(base, max_total_failures=MAX_RESUMES + 1).budget()

    def read(self, n: int = -1) -> bytes:
        parts, got = [self._rest], len(self._rest)
        while n < 0 or got < n:
            chunk = self._next()
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        self._rest = b""
        if 0 <= n < got:  # keep the last chunk's tail: copying it is cheap, the block is not
            last = parts[-1]
            cut = len(last) - (got - n)
            parts[-1], self._rest = last[:cut], last[cut:]
        return b"".join(parts)  # one copy per read, however many network chunks it took

    def _next(self) -> bytes:
        while True:
            try:
                chunk = next(self._chunks, b"")
                self._offset += len(chunk)
                if chunk:
                    self._budget.progress()
                return chunk
            except httpx.HTTPError as exc:
                self._resume(exc)

    def _resume(self, exc: httpx.HTTPError) -> None:
        self._response.close()
        if self._closed or not self._budget.failed():
            raise NetworkError(f"download from {self._host} failed: {exc}") from None
        self._response = self._reopen(self._offset)
        self._chunks = self._response.iter_raw()

    def close(self) -> None:
        self._closed = True
        self._response.close()

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RegistryReader:
    """Read access to one repository."""

    def __init__(self, client: RegistryClient, repository: str) -> None:
        self.client, self.repository = client, repository
        client.auth.want(f"repository:{repository}:pull")

    def manifest(self, reference: str) -> Fetched:
        """GET a manifest or index by tag or digest; verified when asked for by digest."""
        sep = "@" if ":" in reference else ":"
        return fetch_manifest(self.client, self.repository, reference,
                              f"{self.repository}{sep}{reference}")

    def open_blob(self, digest: Digest) -> BlobStream:
        """Start downloading a blob (following redirects); the caller verifies the bytes."""
        return BlobStream(self._get_blob(digest, 0), self.client.host,
                          lambda offset: self._get_blob(digest, offset), self.client.retry)

    def _get_blob(self, digest: Digest, offset: int) -> httpx.Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        request = self.client.http.build_request(
            "GET", urls.blob_path(self.repository, digest), headers=headers)
        try:
            reply = self.client.http.send(request, stream=True, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise NetworkError(f"cannot download blob {digest} from {self.client.host}: "
                               f"{exc}") from None
        if reply.status_code == (206 if offset else 200):
            return reply
        try:  # the error is read from the body, so the reply is closed only after
            if offset and reply.status_code == 200:
                raise NetworkError(f"{self.client.host} cannot resume a download (no Range "
                                   "support); run the command again")
            raise self.client.error_for(reply, f"downloading blob {digest.short}")
        finally:
            reply.close()

    def tags(self) -> list[str]:
        """Every tag of the repository, following `Link` pagination to the end."""
        found, _ = list_all(self.client, urls.tags_path(self.repository), "tags", limit=None,
                            page_size=TAGS_PAGE, what=f"listing the tags of {self.repository}")
        return list(found)

    def node(self, desc: Descriptor, fetched: Fetched | None = None, *,
             walk: TreeWalk | None = None, depth: int = 0) -> Node:
        """The image tree under `desc`; blobs are not downloaded until opened."""
        walk = walk or TreeWalk(f"{self.repository}@{desc.digest}", RegistryError)
        return walk.visit(desc, depth, lambda: self._read_node(desc, fetched, walk, depth))

    def _read_node(self, desc: Descriptor, fetched: Fetched | None, walk: TreeWalk,
                   depth: int) -> Node:
        fetched = fetched or self.manifest(str(desc.digest))
        kind = fetched.media_type
        if mt.is_index(kind):
            with malformed_from(self.client.host):
                index = Index.parse(fetched.raw, kind, f"index {fetched.digest}")
            return IndexNode(index, tuple((c, self.node(c, walk=walk, depth=depth + 1))
                                          for c in index.manifests))
        if not mt.is_manifest(kind):
            raise RegistryError(f"{self.repository}@{fetched.digest} has unsupported media type "
                                f"{kind!r}")
        with malformed_from(self.client.host):
            manifest = Manifest.parse(fetched.raw, kind, f"manifest {fetched.digest}")
        config = self._blob(manifest.config, "config")
        layers = tuple(self._blob(d, f"layer {i + 1}") for i, d in enumerate(manifest.layers))
        return ImageNode(config, layers, manifest, None)  # the platform: TreeWalk.visit's

    def _blob(self, desc: Descriptor, what: str) -> Blob:
        return Blob(desc.media_type, desc.size, lambda: self.open_blob(desc.digest),  # type: ignore[arg-type, return-value]
                    desc.digest, what=f"{what} of {self.repository} ({desc.digest.short})",
                    origin=self.client.host, urls=desc.urls, annotations=desc.annotations)

    def image(self, ref: Reference, *, platform: Platform | None = None,
              fetched: Fetched | None = None) -> SourceImage:
        """The image `ref` names (its manifest or index already `fetched`, if given); with
        `platform`, an index narrows to that child."""
        fetched = fetched or self.manifest(ref.reference)
        names = (str(ref),) if ref.tag else ()
        if platform is not None and mt.is_index(fetched.media_type):
            # choose before walking: the other platforms' manifests are never fetched
            with malformed_from(self.client.host):
                index = Index.parse(fetched.raw, fetched.media_type, f"index of {ref}")
            return SourceImage(self.node(pick(index, platform, ref)), names, str(ref))
        desc = Descriptor(fetched.media_type, fetched.digest, len(fetched.raw))
        return SourceImage(self.node(desc, fetched), names, str(ref))


@contextmanager
def malformed_from(host: str) -> Iterator[None]:
    """A manifest or index a registry sent that does not parse is that registry's error
    (exit 4), not bad local input."""
    try:
        yield
    except SourceError as exc:
        raise RegistryError(f"{host} sent a malformed document: {exc}") from None


def pick(index: Index, platform: Platform, ref: Reference) -> Descriptor:
    """The first entry of `index` for `platform`; a usage error listing what there is."""
    for desc in index.manifests:
        if desc.platform is not None and platform.matches(desc.platform):
            return desc
    have = ", ".join(str(d.platform) for d in index.manifests if d.platform)
    raise UsageError(f"{ref} has no image for {platform} (it has: {have or 'no platforms'}); "
                     "choose one with --platform")


def fetch_manifest(client: RegistryClient, repository: str, reference: str,
                   name: str) -> Fetched:
    """GET the manifest or index `reference` (a tag or digest) of `repository`, checked: at
    most MAX_MANIFEST_SIZE bytes, a JSON object, and the digest asked for. `name` says
    which in messages."""
    reply = client.request("GET", urls.manifest_path(repository, reference), ok=(200,),
                           headers={"Accept": ", ".join(mt.ACCEPT_MANIFESTS)},
                           what=f"fetching the manifest {name}")
    raw = reply.content
    if len(raw) > MAX_MANIFEST_SIZE:
        raise RegistryError(f"{client.host} sent a {len(raw)}-byte manifest; too large")
    content_type = reply.headers.get("Content-Type", "")
    if raw.lstrip()[:1] != b"{":  # every manifest and index is a JSON object
        said = content_type or "no Content-Type"
        raise RegistryError(f"{client.host} answered the manifest request for {name} with "
                            f"something that is not a manifest ({said}, {len(raw)} bytes, "
                            "not JSON); is it a registry?")
    digest = Digest.of(raw)
    if Digest.is_valid(reference) and Digest.parse(reference) != digest:
        raise RegistryError(f"{client.host} sent a manifest whose digest is {digest}, not "
                            f"the {reference} asked for")
    media_type = content_type.split(";")[0].strip()
    return Fetched(raw, media_type or _declared_type(raw), digest)


def _declared_type(raw: bytes) -> str:
    try:
        value = jsontext.parse(raw).get("mediaType")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""
