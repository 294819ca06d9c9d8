"""A repository on a registry as a sink: blob existence, mounts, uploads, manifests.

Uploads follow protocol.md §2: POST then one PUT by default; chunked PATCH when asked
(`chunk_size`), when the registry sets `OCI-Chunk-Min-Length`, or when a whole-blob PUT is
refused as too large (413). Every `Location` is resolved against the URL that returned it,
and `digest` is merged into its query (distribution/urls.py), never appended by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

import httpx

from freight.digest import Digest, Hasher
from freight.distribution import headers as h
from freight.distribution import urls
from freight.errors import DigestMismatch, RegistryError
from freight.transport.client import RegistryClient

READ_BLOCK = 1 << 20  # bytes read from the source per body chunk
FALLBACK_CHUNK = 8 << 20  # chunk size when a registry refuses a whole blob (413); over ECR's 5 MB
OCTET = {"Content-Type": "application/octet-stream"}
Progress = Callable[[int], None]


def _noop(_: int) -> None:
    pass


class RegistrySink:
    """One repository on one registry."""

    def __init__(self, client: RegistryClient, repository: str, *,
                 chunk_size: int | None = None) -> None:
        self.client, self.repository, self.chunk_size = client, repository, chunk_size
        self._min_chunk = 0  # OCI-Chunk-Min-Length, once the registry has said it
        client.auth.want(f"repository:{repository}:pull,push")

    def has_blob(self, digest: Digest) -> bool:
        reply = self.client.request("HEAD", urls.blob_path(self.repository, digest),
                                    ok=(200, 404), what=f"checking blob {digest.short}",
                                    follow_redirects=True)
        return reply.status_code == 200

    def mount(self, digest: Digest, source: str) -> str | None:
        """Mount from `source`: None when mounted, else the upload URL of a fresh session."""
        self.client.auth.want(f"repository:{source}:pull")
        path = f"{urls.uploads_path(self.repository)}?mount={digest}&from={source}"
        try:
            reply = self.client.request("POST", path, ok=(201, 202), what="mounting a blob",
                                        headers={"Content-Length": "0"})
        except RegistryError:
            return self.start()  # registries refuse mounts in many ways; upload instead
        if reply.status_code == 201:
            return None
        return self._location(reply)

    def start(self) -> str:
        """Open an upload session; return its absolute URL."""
        reply = self.client.request("POST", urls.uploads_path(self.repository), ok=(202,),
                                    what="starting a blob upload",
                                    headers={"Content-Length": "0"})
        self._min_chunk = int(reply.headers.get("OCI-Chunk-Min-Length", "0") or 0)
        return self._location(reply)

    def _location(self, reply: httpx.Response) -> str:
        location = reply.headers.get("Location")
        if not location:
            raise RegistryError(f"{self.client.host} opened an upload without a Location header")
        return urls.resolve_location(location, str(reply.request.url))

    def upload(self, digest: Digest, size: int, opener: Callable[[], BinaryIO], *,
               session: str | None = None, verify: bool = True,
               progress: Progress = _noop, what: str = "blob") -> None:
        """Upload a blob of known digest and size, verifying the bytes as they go."""
        try:
            self._upload(digest, size, opener, session, verify, progress)
        except DigestMismatch as exc:
            raise DigestMismatch(what, exc.expected, exc.actual) from None

    def _upload(self, digest: Digest, size: int, opener: Callable[[], BinaryIO],
                session: str | None, verify: bool, progress: Progress) -> None:
        url = session or self.start()
        chunk = self.chunk_size or (FALLBACK_CHUNK if self._min_chunk else None)
        if chunk:
            chunk = max(chunk, self._min_chunk)
        try:
            if chunk is None:
                self._whole(url, digest, size, opener, verify, progress)
            else:
                self._chunked(url, digest, size, opener, chunk, verify, progress)
        except RegistryError as exc:
            self.cancel(url)
            if exc.status != 413 or chunk is not None:
                raise
            self._chunked(self.start(), digest, size, opener, FALLBACK_CHUNK, verify, progress)
        except BaseException:
            self.cancel(url)
            raise

    def _whole(self, url: str, digest: Digest, size: int, opener: Callable[[], BinaryIO],
               verify: bool, progress: Progress) -> None:
        with opener() as f:
            body = _body(f, size, digest if verify else None, progress)
            self.client.request("PUT", urls.with_digest(url, digest), ok=(201, 204),
                                headers={**OCTET, "Content-Length": str(size)}, content=body,
                                what=f"uploading blob {digest.short}")

    def _chunked(self, url: str, digest: Digest, size: int, opener: Callable[[], BinaryIO],
                 chunk: int, verify: bool, progress: Progress) -> None:
        hasher = Hasher(digest.algorithm)
        with opener() as f:
            offset = 0
            while offset < size:
                n = min(chunk, size - offset)
                headers = {**OCTET, "Content-Length": str(n),
                           "Content-Range": h.content_range(offset, offset + n - 1)}
                reply = self.client.request("PATCH", url, ok=(201, 202, 204), headers=headers,
                                            content=_read(f, n, hasher, progress),
                                            what=f"uploading a chunk of blob {digest.short}")
                url = self._location(reply) if reply.headers.get("Location") else url
                offset += n
        if verify:
            hasher.check(digest, f"blob {digest}")
        self.client.request("PUT", urls.with_digest(url, digest), ok=(201, 204),
                            headers={"Content-Length": "0"},
                            what=f"completing blob {digest.short}")

    def cancel(self, url: str) -> None:
        """Abandon an upload session; failures are ignored (the registry expires it anyway)."""
        with contextlib.suppress(httpx.HTTPError):
            self.client.http.delete(url, timeout=10)

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Digest:
        """PUT a manifest under a tag or digest; return its digest (checked against the reply)."""
        digest = Digest.of(raw)
        reply = self.client.request(
            "PUT", urls.manifest_path(self.repository, reference), ok=(200, 201, 202),
            headers={"Content-Type": media_type}, content=raw,
            what=f"pushing the manifest {self.repository}:{reference}")
        said = reply.headers.get("Docker-Content-Digest")
        if said and Digest.is_valid(said) and Digest.parse(said).algorithm == digest.algorithm \
                and Digest.parse(said) != digest:
            raise RegistryError(f"{self.client.host} stored manifest {said}, but we sent {digest}")
        return digest


def _body(f: BinaryIO, size: int, expected: Digest | None, progress: Progress) -> Iterator[bytes]:
    """The blob's bytes; raises DigestMismatch before the last block if they are wrong."""
    hasher = Hasher(expected.algorithm if expected else "sha256")
    pending = b""
    while block := f.read(READ_BLOCK):
        if pending:
            yield pending
            progress(len(pending))
        hasher.update(block)
        pending = block
    if expected is not None and (hasher.digest != expected or hasher.size != size):
        raise DigestMismatch("blob", str(expected), str(hasher.digest))
    if pending:
        yield pending
        progress(len(pending))


def _read(f: BinaryIO, n: int, hasher: Hasher, progress: Progress) -> Iterator[bytes]:
    left = n
    while left:
        block = f.read(min(READ_BLOCK, left))
        if not block:
            raise DigestMismatch("blob (source ended early)", "more bytes", "truncated")
        hasher.update(block)
        left -= len(block)
        yield block
        progress(len(block))
