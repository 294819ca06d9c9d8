"""A repository on a registry as a sink: blob existence, mounts, uploads, manifests.

Uploads follow protocol.md §2: POST then one PUT by default; chunked PATCH when asked
(`chunk_size`), when the registry sets `OCI-Chunk-Min-Length`, or when a whole-blob PUT is
refused as too large (413); one PATCH per blob, then an empty PUT, when a registry answers
a whole-blob PUT with 404 BLOB_UNKNOWN (older Artifactory wants the bytes in a PATCH).
Every `Location` is resolved against the URL that returned it, and `digest` is merged into
its query (distribution/urls.py), never appended by hand.

Failures cost the failing request or chunk, never the whole image (§2.3 to §2.6): a 5xx/429
answer is retried in place (the client honours Retry-After); after a cut connection or a
416 the upload status (GET on the upload URL → 204 + Range) says where to go on from; a
lost session (404 BLOB_UPLOAD_UNKNOWN/INVALID, DIGEST_INVALID at close, an ambiguous
`Range: 0-0`) restarts that blob from POST; an abandoned session is cancelled with DELETE.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import BinaryIO

import httpx

from freight.digest import Digest, Hasher
from freight.distribution import headers as h
from freight.distribution import urls
from freight.engine.streaming import StreamingSink
from freight.errors import AuthError, DigestMismatch, FreightError, NetworkError, RegistryError
from freight.results import Action
from freight.sinks.resume import UploadJournal
from freight.transport.client import RegistryClient

READ_BLOCK = 1 << 20  # bytes read from the source per body chunk
FALLBACK_CHUNK = 8 << 20  # chunk size when a registry refuses a whole blob (413); over ECR's 5 MB
MIN_CHUNK = 1 << 20  # a 413 on a chunk halves the chunk size, down to this
MAX_FAILURES = 8  # failures in a row, with no byte making it, before a blob's upload gives up
# Failures of one blob's upload in all, progress or not: a registry that accepts every chunk
# and refuses every close (or a proxy that corrupts bytes) must not make freight re-upload
# forever. No success resets this count.
MAX_TOTAL_FAILURES = 3 * MAX_FAILURES
OCTET = {"Content-Type": "application/octet-stream"}
LOST_CODES = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "DIGEST_INVALID"})
Progress = Callable[[int], None]


def _noop(_: int) -> None:
    pass


class _Lost(Exception):
    """The registry no longer has the upload session: start the blob again from POST."""


class RegistrySink:
    """One repository on one registry."""

    stored = Action.UPLOADED
    holds_external = True  # registries store no non-distributable layer
    images_only = False

    def __init__(self, client: RegistryClient, repository: str, *,
                 chunk_size: int | None = None, journal: UploadJournal | None = None,
                 stream: bool = False) -> None:
        self.client, self.repository, self.chunk_size = client, repository, chunk_size
        self.registry: str | None = client.host
        self.stream_layers = stream
        self.journal = journal or UploadJournal.default(client.host)
        self._min_chunk = 0  # OCI-Chunk-Min-Length, once the registry has said it
        # the registry refused a whole-blob PUT as if its bytes had never come (Artifactory
        # before 7: 404 BLOB_UNKNOWN, RTFACT-19344): send each blob in a PATCH, as docker does
        self.wants_patch = False
        self._stats_lock = threading.Lock()
        self._opened: dict[Digest, str] = {}  # sessions a refused mount opened, per blob
        self.bytes_sent = 0  # blob bytes put on the wire, re-sent ones included
        self.bytes_resent = 0  # of which sent more than once (after a failure)
        self.bytes_resumed = 0  # not sent at all: a previous run had already uploaded them
        client.auth.want(f"repository:{repository}:pull,push")

    def has_blob(self, digest: Digest) -> bool:
        reply = self.client.request("HEAD", urls.blob_path(self.repository, digest),
                                    ok=(200, 404), what=f"checking blob {digest.short}",
                                    follow_redirects=True)
        return reply.status_code == 200

    def mount(self, digest: Digest, source: str) -> bool:
        """Mount from `source`; True when mounted. A registry that does not mount (202, or
        a 400/404/405 refusal) gets False and an upload; a 401/403 is an AuthError: the
        credentials lack pull on `source` or push here, and an upload would hide that."""
        path = f"{urls.uploads_path(self.repository)}?mount={digest}&from={source}"
        try:
            reply = self.client.request("POST", path, ok=(201, 202), what="mounting a blob",
                                        headers={"Content-Length": "0"})
        except AuthError as exc:
            raise AuthError(f"{self.client.host} refused to mount blob {digest.short} from "
                            f"{source} into {self.repository} ({exc.status}): the credentials "
                            f"need pull on {source} and push on {self.repository}",
                            status=exc.status, code=exc.code) from None
        except RegistryError:
            return False  # registries refuse mounts in many ways; upload instead
        if reply.status_code == 201:
            return True
        if reply.headers.get("Location"):  # the upload goes on in this session (§2.7)
            with self._stats_lock:
                self._opened[digest] = self._location(reply)
        return False

    def streamer(self) -> StreamingSink | None:
        return self if self.can_stream else None

    def start(self) -> str:
        """Open an upload session; return its absolute URL."""
        reply = self.client.request("POST", urls.uploads_path(self.repository), ok=(202,),
                                    what="starting a blob upload",
                                    headers={"Content-Length": "0"})
        self._min_chunk = int(reply.headers.get("OCI-Chunk-Min-Length", "0") or 0)
        return self._location(reply)

    def _location(self, reply: httpx.Response, default: str | None = None) -> str:
        location = reply.headers.get("Location")
        if not location:
            if default is not None:
                return default
            raise RegistryError(f"{self.client.host} opened an upload without a Location header")
        return urls.resolve_location(location, str(reply.request.url))

    def upload(self, digest: Digest, size: int, opener: Callable[[], BinaryIO], *,
               session: str | None = None, verify: bool = True,
               progress: Progress = _noop, what: str = "blob") -> None:
        """Upload a blob of known digest and size, verifying the bytes as they go."""
        source = _Source(opener, digest, size, verify, progress)
        with self._stats_lock:
            session = session or self._opened.pop(digest, None)
        try:
            _Upload(self, source).run(session)
        except DigestMismatch as exc:
            raise DigestMismatch(what, exc.expected, exc.actual) from None
        finally:
            source.close()
            with self._stats_lock:
                self.bytes_sent += source.sent
                self.bytes_resent += source.resent
                self.bytes_resumed += source.resumed

    @property
    def can_stream(self) -> bool:
        """Whether a layer may go up in one streamed PATCH while it is converted (as docker
        does): when asked to, and not when the user or the registry wants bounded chunks."""
        return self.stream_layers and self.chunk_size is None and not self._min_chunk

    def stop_streaming(self) -> None:
        """A stream failed: send the remaining layers the ordinary, retried way (a registry
        or proxy that refuses streamed bodies would refuse every one)."""
        self.stream_layers = False

    def stream(self, url: str, chunks: Iterable[bytes]) -> str:
        """Send bytes whose digest is not known yet to the session `url` in one streamed
        PATCH; return the URL that `close_upload` closes. Never retried: the caller keeps
        the bytes to upload again the ordinary way."""
        reply = self.client.request("PATCH", url, ok=(201, 202, 204), headers=OCTET,
                                    content=self._counted(chunks), what="streaming a layer")
        return self._location(reply, default=url)

    def _counted(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            with self._stats_lock:
                self.bytes_sent += len(chunk)
            yield chunk

    def close_upload(self, url: str, digest: Digest) -> None:
        """Close an upload whose bytes are all sent, as `digest` (the registry checks them)."""
        self.client.request("PUT", urls.with_digest(url, digest), ok=(201, 204),
                            headers={"Content-Length": "0"},
                            what=f"completing blob {digest.short}")

    def status(self, url: str) -> tuple[str, int]:
        """GET the upload status: (newest URL, bytes the registry holds). Raises _Lost when
        the session is gone or its `Range` is the ambiguous `0-0` (0 or 1 byte held)."""
        try:
            reply = self.client.request("GET", url, ok=(204, 200),
                                        what="asking how much of an upload arrived")
        except RegistryError as exc:
            if exc.status in (400, 404, 410):
                raise _Lost() from None
            raise
        end = h.parse_range_end(reply.headers.get("Range"))
        if not end:
            raise _Lost()  # no Range, or 0-0: cheaper to start again than to guess
        return self._location(reply, default=url), end + 1

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


class _Upload:
    """One blob's upload: the session URL, how much the registry holds, and recovery."""

    def __init__(self, sink: RegistrySink, source: _Source) -> None:
        self.sink, self.source = sink, source
        self.client = sink.client
        self.url = ""
        self.offset = 0  # bytes the registry is known to hold in this session
        self.chunk: int | None = None
        # the transport's one retry policy, with this blob's limits: an accepted chunk
        # resets the failures in a row, never the total
        self.budget = replace(self.client.retry, attempts=MAX_FAILURES,
                              max_total_failures=MAX_TOTAL_FAILURES).budget()

    def run(self, session: str | None) -> None:
        self.url = session or self._resume() or self.sink.start()
        # after the session opened: the first POST is where the registry tells its minimum
        self.chunk = self._chunk_size(self.sink.chunk_size) or self.chunk
        if self.chunk is None and self.sink.wants_patch:
            self.chunk = max(self.source.size, 1)  # the whole blob in one PATCH
        try:
            self._loop()
        except DigestMismatch:
            self._abandon()
            raise
        except BaseException:
            if self.offset == 0 or self.sink.journal.root is None:
                self._abandon()
            # else: keep the session and its journal entry: the next run goes on from here
            raise
        self.sink.journal.forget(self.sink.repository, self.source.digest)

    def _abandon(self) -> None:
        self.sink.cancel(self.url)
        self.sink.journal.forget(self.sink.repository, self.source.digest)

    def _resume(self) -> str | None:
        """The URL of this blob's upload left unfinished by an earlier run, if the registry
        still holds some of it; `offset` is set to what it holds."""
        pending = self.sink.journal.get(self.sink.repository, self.source.digest)
        if pending is None:
            return None
        try:
            url, offset = self.sink.status(pending.url)
        except (_Lost, FreightError):
            self.sink.journal.forget(self.sink.repository, self.source.digest)
            return None
        if offset > self.source.size:
            self.sink.cancel(url)
            return None
        self.offset, self.chunk = offset, FALLBACK_CHUNK
        self.source.resumed = offset
        return url

    def _chunk_size(self, wanted: int | None) -> int | None:
        minimum = self.sink._min_chunk
        chunk = wanted or (FALLBACK_CHUNK if minimum else None)
        return max(chunk, minimum) if chunk else None

    def _loop(self) -> None:
        while True:
            try:
                if self.chunk is None and self.offset == 0:
                    self._whole()
                else:
                    self._chunks()
                return
            except NetworkError as exc:
                self._resync(exc)
            except RegistryError as exc:
                self._on_refusal(exc)

    def _on_refusal(self, exc: RegistryError) -> None:
        if exc.status == 413:  # too large for a proxy: smaller requests (field-notes §C)
            if self.chunk is not None and self.chunk <= MIN_CHUNK:
                raise exc
            self.chunk = FALLBACK_CHUNK if self.chunk is None else max(MIN_CHUNK,
                                                                        self.chunk // 2)
            self._resync(exc)
        elif exc.status == 416:
            self._resync(exc)
        elif exc.code == "BLOB_UNKNOWN" and self.chunk is None:  # the whole PUT refused
            self.sink.wants_patch = True
            self.chunk = max(self.source.size, 1)
            self._restart(exc)
        elif exc.code in LOST_CODES or exc.status == 404:
            self._restart(exc)
        else:
            raise exc

    def _failed(self, cause: FreightError) -> None:
        if self.budget.failed():
            return  # waited; try again
        if self.budget.total >= MAX_TOTAL_FAILURES:
            raise RegistryError(f"{self.client.host} failed the upload of blob "
                                f"{self.source.digest.short} {self.budget.total} times "
                                f"(last: {cause}); giving up", retryable=False)
        raise cause

    def _resync(self, cause: FreightError) -> None:
        """After a cut or a 416: ask the registry how much it holds, go on from there."""
        self._failed(cause)
        try:
            self.url, self.offset = self.sink.status(self.url)
        except _Lost:
            self._new_session()

    def _restart(self, cause: FreightError) -> None:
        self._failed(cause)
        self._new_session()

    def _new_session(self) -> None:
        self.sink.cancel(self.url)
        self.url, self.offset = self.sink.start(), 0

    def _whole(self) -> None:
        size, digest = self.source.size, self.source.digest
        self.client.request(
            "PUT", urls.with_digest(self.url, digest), ok=(201, 204),
            headers={**OCTET, "Content-Length": str(size)},
            body=lambda: self.source.read(0, size, final=True), resend_after_cut=False,
            what=f"uploading blob {digest.short}")

    def _chunks(self) -> None:
        chunk = self.chunk or FALLBACK_CHUNK  # a whole PUT cut short, part of it kept
        size, digest = self.source.size, self.source.digest
        while self.offset < size:
            start, n = self.offset, min(chunk, size - self.offset)
            headers = {**OCTET, "Content-Length": str(n),
                       "Content-Range": h.content_range(start, start + n - 1)}
            reply = self.client.request(
                "PATCH", self.url, ok=(201, 202, 204), headers=headers,
                body=lambda s=start, k=n: self.source.read(s, k),  # type: ignore[misc]
                resend_after_cut=False, what=f"uploading a chunk of blob {digest.short}")
            self.url = self.sink._location(reply, default=self.url)
            self.offset = start + n
            self.budget.progress()
            self.sink.journal.save(self.sink.repository, digest, self.url, self.offset)
        self.source.hash_through(size)
        self.source.check()
        self.sink.close_upload(self.url, digest)


class _Source:
    """The blob's bytes from any offset, hashed once each however often they are sent."""

    def __init__(self, opener: Callable[[], BinaryIO], digest: Digest, size: int,
                 verify: bool, progress: Progress) -> None:
        self.opener, self.digest, self.size, self.verify = opener, digest, size, verify
        self.progress = progress
        # a spool file we wrote and hashed ourselves need not be hashed again, only counted
        self.hasher: Hasher | _Counter = Hasher(digest.algorithm) if verify else _Counter()
        self.file: BinaryIO | None = None
        self.pos = 0
        self.high = 0  # furthest byte ever sent: progress is reported once per byte
        self.sent = self.resent = self.resumed = 0

    def read(self, start: int, n: int, *, final: bool = False) -> Iterator[bytes]:
        """Bytes [start, start+n); with `final`, the hash is checked before the last block
        leaves, so a registry never stores a wrong blob under our digest."""
        self._seek(start)
        pending, pending_start, left = b"", start, n
        while left:
            block = self._next(min(READ_BLOCK, left))
            left -= len(block)
            if pending:
                yield self._count(pending_start, pending)
            pending, pending_start = block, self.pos - len(block)
        if final:
            self.check()
        if pending:
            yield self._count(pending_start, pending)

    def _next(self, n: int) -> bytes:
        assert self.file is not None
        block = self.file.read(n)
        if not block:
            raise DigestMismatch("blob (source ended early)", str(self.digest), "truncated")
        if self.pos + len(block) > self.hasher.size:
            self.hasher.update(block[self.hasher.size - self.pos:])
        self.pos += len(block)
        return block

    def _count(self, start: int, block: bytes) -> bytes:
        end = start + len(block)
        again = max(0, min(end, self.high) - start)
        self.sent += len(block)
        self.resent += again
        if end > self.high:
            self.progress(end - self.high)
            self.high = end
        return block

    def _seek(self, start: int) -> None:
        if self.file is None or (start < self.pos and not _seekable(self.file)):
            self.close()
            self.file, self.pos = self.opener(), 0
        elif start != self.pos and start <= self.hasher.size and _seekable(self.file):
            self.file.seek(start)
            self.pos = start
        while self.pos < start:  # skip forward, hashing what was never hashed
            self._next(min(READ_BLOCK, start - self.pos))

    def hash_through(self, end: int) -> None:
        """Hash up to `end` even if those bytes are not sent (a resumed upload's prefix)."""
        if self.hasher.size < end:
            self._seek(end)

    def check(self) -> None:
        hasher = self.hasher
        if isinstance(hasher, Hasher) and (hasher.size != self.size or
                                           hasher.digest != self.digest):
            raise DigestMismatch("blob", str(self.digest), str(hasher.digest))

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None


class _Counter:
    """Counts bytes like a Hasher, for sources that need no verifying."""

    def __init__(self) -> None:
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)


def _seekable(f: BinaryIO) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, OSError, ValueError):
        return False
