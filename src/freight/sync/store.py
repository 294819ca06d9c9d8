"""Content stores for byte-exact copies: a registry repository, read and written raw.

Sync, referrers and artifacts move manifests and blobs unchanged, so every digest at the
destination equals the source's. A `Store` is one repository's view of that content:
HEAD/GET/PUT of manifests by tag or digest, blob existence, streamed blob reads and
uploads. `RegistryStore` speaks the v2 API through a `RegistryClient`; bundles
(sync/bundle.py) provide the same calls over an OCI layout in a tar.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import httpx

from freight import jsontext
from freight import mediatypes as mt
from freight.digest import EMPTY_SHA256, Digest, Hasher
from freight.distribution import urls
from freight.errors import DigestMismatch, NotFound, RegistryError, registry_sent_wrong_bytes
from freight.sources.registry import fetch_manifest
from freight.transport.client import RegistryClient

READ_BLOCK = 1 << 20  # bytes per chunk of a streamed blob
ACCEPT = ", ".join(mt.ACCEPT_MANIFESTS)
# client -> whether its registry has the referrers API (a registry does not change while a
# client lives; keyed by client, not host: a port may be another registry tomorrow)
_API: weakref.WeakKeyDictionary[RegistryClient, bool] = weakref.WeakKeyDictionary()
_API_LOCK = threading.Lock()
# client -> digest -> the repositories of its registry known to hold the blob (we put it
# there, or a HEAD said so): another repository there mounts it instead of uploading it
# again (a base layer goes up once), and those repositories are not asked again
_PLACED: weakref.WeakKeyDictionary[RegistryClient, dict[Digest, set[str]]] = \
    weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Found:
    """What a manifest HEAD says: its digest, media type and size."""

    digest: Digest
    media_type: str
    size: int


@dataclass(frozen=True)
class Stored:
    """What a manifest PUT reported: the digest, and the subject the registry indexed
    (`OCI-Subject`); None means the registry has no referrers API for it."""

    digest: Digest
    subject: Digest | None


class BlobSource(Protocol):
    """Where blob bytes come from (a store, or local files being pushed)."""

    name: str

    def open_blob(self, digest: Digest) -> BinaryIO: ...


class Source(BlobSource, Protocol):
    """What a copy reads from: manifests by digest, and blobs."""

    def get_manifest(self, reference: str) -> tuple[bytes, str]: ...


class Readable(Source, Protocol):
    """A sync source: a registry repository, or one repository of a layout."""

    def head_manifest(self, reference: str) -> Found | None: ...


class Store(Protocol):
    """One repository's content, byte for byte."""

    name: str  # for messages: host/repository or bundle:repository
    place: str  # the blobs its repositories share (a registry host, one bundle)

    def head_manifest(self, reference: str) -> Found | None: ...
    def get_manifest(self, reference: str) -> tuple[bytes, str]: ...
    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Stored: ...
    def has_blob(self, digest: Digest) -> bool: ...
    def open_blob(self, digest: Digest) -> BinaryIO: ...
    def put_blob(self, digest: Digest, size: int, source: BlobSource) -> bool:
        """Store the blob; True when its bytes were sent (False: mounted, or held)."""
    def supports_referrers(self) -> bool: ...


class RegistryStore:
    """A repository on a registry; the client is shared and owned by the caller."""

    def __init__(self, client: RegistryClient, repository: str, *, push: bool = False) -> None:
        self.client, self.repository = client, repository
        self.name, self.place = f"{client.host}/{repository}", client.host
        client.auth.want(f"repository:{repository}:{'pull,push' if push else 'pull'}")

    def head_manifest(self, reference: str) -> Found | None:
        """What `reference` names, or None. A 403 (Artifactory answers a HEAD of a missing
        manifest so, RTFACT-13797) is asked again with a GET, whose body says which it is:
        missing (None), or a real refusal (AuthError)."""
        reply = self.client.request("HEAD", urls.manifest_path(self.repository, reference),
                                    ok=(200, 403, 404), headers={"Accept": ACCEPT},
                                    what=f"checking {self.name}:{reference}")
        said = reply.headers.get("Docker-Content-Digest", "")
        if reply.status_code == 404:
            return None
        if reply.status_code == 403 or not Digest.is_valid(said):  # ask with a GET
            try:
                raw, kind = self.get_manifest(reference)
            except NotFound:
                return None
            return Found(Digest.of(raw), kind, len(raw))
        kind = reply.headers.get("Content-Type", "").split(";")[0].strip()
        return Found(Digest.parse(said), kind, int(reply.headers.get("Content-Length") or 0))

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        fetched = fetch_manifest(self.client, self.repository, reference,
                                 f"{self.name}:{reference}")
        return fetched.raw, fetched.media_type or declared_type(fetched.raw)

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Stored:
        reply = self.client.request(
            "PUT", urls.manifest_path(self.repository, reference), ok=(200, 201, 202),
            headers={"Content-Type": media_type}, content=raw,
            what=f"pushing the manifest {self.name}:{reference}")
        subject = reply.headers.get("OCI-Subject", "")
        return Stored(Digest.of(raw), Digest.parse(subject) if Digest.is_valid(subject) else None)

    def has_blob(self, digest: Digest) -> bool:
        if self.repository in self._holders(digest):
            return True  # this run put it there, or saw it there
        reply = self.client.request("HEAD", urls.blob_path(self.repository, digest),
                                    ok=(200, 404), follow_redirects=True,
                                    what=f"checking blob {digest.short}")
        if reply.status_code == 200:
            self._placed(digest)
        return reply.status_code == 200

    def open_blob(self, digest: Digest) -> BinaryIO:
        from freight.sources.registry import RegistryReader

        return RegistryReader(self.client, self.repository).open_blob(digest)  # type: ignore[return-value]

    def put_blob(self, digest: Digest, size: int, source: BlobSource) -> bool:
        """Mount from `source` when it is another repository here (or one this run put
        the blob in), else POST then one PUT of the verified stream (re-sent from the start
        on a retry). True when the bytes were sent."""
        reply = None
        sibling = self._sibling(digest, source)
        if sibling is not None:
            reply = self._mount(digest, sibling)
            if reply is not None and reply.status_code == 201:
                self._placed(digest)
                return False
        if reply is None or reply.status_code != 202:  # a refused mount opens no session
            reply = self.client.request("POST", urls.uploads_path(self.repository),
                                        ok=(202,), headers={"Content-Length": "0"},
                                        what="starting a blob upload")
        location = reply.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.client.host} opened an upload without a Location")
        url = urls.with_digest(urls.resolve_location(location, str(reply.request.url)), digest)
        self.client.request(
            "PUT", url, ok=(201, 204), body=lambda: verified(source.open_blob(digest), digest,
                                                             size, source),
            headers={"Content-Type": "application/octet-stream",
                     "Content-Length": str(size)},
            what=f"uploading blob {digest.short} to {self.name}")
        self._placed(digest)
        return True

    def _sibling(self, digest: Digest, source: BlobSource) -> str | None:
        """A repository of this registry to mount `digest` from: the source's, when it is
        here, else one we put it in during this run."""
        if isinstance(source, RegistryStore) and source.client.host == self.client.host:
            return source.repository
        others = sorted(self._holders(digest) - {self.repository})
        return others[0] if others else None

    def _holders(self, digest: Digest) -> set[str]:
        with _API_LOCK:
            return set(_PLACED.get(self.client, {}).get(digest, ()))

    def _placed(self, digest: Digest) -> None:
        with _API_LOCK:
            _PLACED.setdefault(self.client, {}).setdefault(digest, set()).add(self.repository)

    def supports_referrers(self) -> bool:
        """Whether the registry answers the referrers API (asked once per client)."""
        with _API_LOCK:
            known = _API.get(self.client)
        if known is None:
            path = urls.referrers_path(self.repository, EMPTY_SHA256)
            reply = self.client.request("GET", path, ok=(200, 400, 404, 405),
                                        headers={"Accept": mt.OCI_INDEX},
                                        what="asking whether the registry has a referrers API")
            kind = reply.headers.get("Content-Type", "").split(";")[0].strip()
            known = reply.status_code == 200 and kind == mt.OCI_INDEX
            with _API_LOCK:
                _API[self.client] = known
        return known

    def _mount(self, digest: Digest, repository: str) -> httpx.Response | None:
        """POST a cross-repository mount: 201 mounted, 202 an upload session to use
        instead (the registry would not mount), None refused."""
        path = f"{urls.uploads_path(self.repository)}?mount={digest}&from={repository}"
        try:
            return self.client.request("POST", path, ok=(201, 202), what="mounting a blob",
                                       headers={"Content-Length": "0"})
        except RegistryError:
            return None


def verified(stream: BinaryIO, digest: Digest, size: int, source: BlobSource) -> Iterator[bytes]:
    """The bytes of `stream`, checked against `digest` and `size` before the last chunk
    leaves (unlike `freight.digest.verified`): a damaged blob fails the upload instead of
    being committed. Wrong bytes from a registry are its error (exit 4), not bad input."""
    hasher, pending = Hasher(digest.algorithm), b""
    try:
        while chunk := stream.read(READ_BLOCK):
            if pending:
                yield pending
            hasher.update(chunk)
            pending = chunk
        if hasher.digest != digest or hasher.size != size:
            mismatch = DigestMismatch(f"blob {digest.short} from {source.name}", str(digest),
                                      str(hasher.digest))
            if isinstance(source, RegistryStore):
                raise registry_sent_wrong_bytes(source.client.host, mismatch)
            raise mismatch
        if pending:
            yield pending
    finally:
        stream.close()


def declared_type(raw: bytes) -> str:
    """The `mediaType` a manifest declares itself, or OCI manifest when it says none."""
    try:
        value = jsontext.parse(raw).get("mediaType")
    except (ValueError, AttributeError):
        return mt.OCI_MANIFEST
    return value if isinstance(value, str) and value else mt.OCI_MANIFEST


def require(found: Found | None, what: str) -> Found:
    if found is None:
        raise NotFound(f"{what} does not exist")
    return found
