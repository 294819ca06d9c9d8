"""The engine: move an image tree from any source into any sink (registry or layout).

Order of work: blobs first (in parallel, each checked for presence, mounted when another
repository of the registry is known to hold it, else sent), then each manifest once all it
refers to is present, children before their index; the caller writes tags last of all, so
no tag ever points at an image that is not complete. Layers are converted at most once per
run, and a manifest whose content did not change is written with its original bytes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from freight import mediatypes as mt
from freight.cache import Cache
from freight.convert import Converted, convert, target_compression
from freight.digest import Digest, Hasher
from freight.manifest import Descriptor, Index, Manifest
from freight.progress import Phase, Progress
from freight.results import Action, BlobResult
from freight.sinks import Sink
from freight.sources.model import Blob, ImageNode, IndexNode, Node
from freight.streaming import SpoolStream, StreamingSink
from freight.turns import Ticket, Turnstile

UPLOADED, SKIPPED, MOUNTED = Action.UPLOADED, Action.SKIPPED, Action.MOUNTED
STREAM_CANCEL_WAIT = 10.0  # seconds dropped streams may take, in all, to cancel their sessions


Transferred = tuple[Descriptor, bytes, list[BlobResult]]  # the node's new manifest and its blobs


@dataclass
class Engine:
    """Shared by all images of one push: thread pool, conversion memo, known blob locations."""

    registry: str | None  # the destination registry (mounts, cached locations); None if local
    setting: str
    jobs: int
    cache: Cache
    progress: Progress
    spool_dir: str
    pool: ThreadPoolExecutor = field(init=False)
    _converted: dict[tuple[Digest | int, str], tuple[Digest, int, str]] = field(
        default_factory=dict, init=False)
    _locks: dict[object, threading.Lock] = field(default_factory=dict, init=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, init=False)
    _where: dict[Digest, list[str]] = field(default_factory=dict, init=False)
    _compressions: Turnstile = field(default_factory=Turnstile, init=False)
    _streams: list[SpoolStream] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="freight-blob")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        deadline = time.monotonic() + STREAM_CANCEL_WAIT
        for stream in self._streams:  # dropped streams cancel their sessions meanwhile
            stream.wait(max(0.0, deadline - time.monotonic()))

    def known_in(self, digest: Digest, repository: str) -> None:
        """Note that `repository` on the destination registry holds `digest` (mount source)."""
        with self._guard:
            self._where.setdefault(digest, []).append(repository)

    def _locations(self, digest: Digest) -> list[str]:
        if self.registry is None:
            return []
        with self._guard:
            found = list(self._where.get(digest, ()))
        return found + self.cache.locations(self.registry, digest)

    def lock(self, key: object) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def transfer(self, node: Node, sink: Sink) -> Transferred:
        """Push everything `node` refers to (not the node itself); return its new manifest."""
        if isinstance(node, IndexNode):
            return self._index(node, sink)
        return self._image(node, sink)

    def _index(self, node: IndexNode, sink: Sink) -> Transferred:
        children, results = [], []
        for desc, child in node.children:
            child_desc, raw, blobs = self.transfer(child, sink)
            sink.put_manifest(str(child_desc.digest), raw, child_desc.media_type)
            results.extend(blobs)
            children.append(Descriptor(child_desc.media_type, child_desc.digest, child_desc.size,
                                       desc.platform, desc.annotations, desc.extra))
        if children == list(node.index.manifests):
            return node.index.descriptor(), node.index.raw, results
        kind = node.index.media_type
        if any(c.media_type == mt.OCI_MANIFEST for c in children):
            kind = mt.OCI_INDEX
        index = Index.build(kind, children, node.index.annotations or None)
        return index.descriptor(), index.raw, results

    def _image(self, node: ImageNode, sink: Sink) -> Transferred:
        kind = self._kind(node)
        # biggest first: its upload then overlaps the compression of the smaller ones;
        # identical layers share a ticket (one of them converts, the other reuses that)
        order = sorted(range(len(node.layers)), key=lambda i: -node.layers[i].size)
        tickets: dict[object, Ticket] = {}
        for i in order:
            if self._compresses(node.layers[i]):
                tickets.setdefault(self._memo_key(node.layers[i]), self._compressions.ticket())
        futures: dict[int, Future[tuple[Descriptor, Action]]] = {
            i: self.pool.submit(self._layer, node.layers[i], sink, kind,
                                tickets.get(self._memo_key(node.layers[i]))) for i in order}
        config = self._config(node, sink, kind)
        layers = [futures[i].result() for i in range(len(node.layers))]
        results = [_result(config), *(_result(r) for r in layers)]
        manifest = self._manifest(node, config[0], [d for d, _ in layers], kind)
        return manifest.descriptor(), manifest.raw, results

    def _kind(self, node: ImageNode) -> str | None:
        """The manifest type to write; None keeps the source's manifest (nothing converted).

        Docker schema2 when the source is Docker (or a legacy archive) and every layer ends
        up gzip, since schema2 has no standard type for other layers; OCI otherwise.
        """
        targets = [target_compression(self.setting, b.media_type) for b in node.layers]
        in_order = node.manifest is not None and [d.digest for d in node.manifest.layers] == [
            b.digest for b in node.layers]  # Docker 25.0.0 wrote layers out of order
        if in_order and not any(targets):
            return None
        finals = [t or mt.layer_compression(b.media_type) for t, b in zip(targets, node.layers,
                                                                           strict=True)]
        docker_source = node.manifest is None or node.manifest.media_type == mt.DOCKER_MANIFEST
        docker = docker_source and all(c == mt.GZIP for c in finals)
        return mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST

    def _manifest(self, node: ImageNode, config: Descriptor, layers: list[Descriptor],
                  kind: str | None) -> Manifest:
        source = node.manifest
        if kind is None and source is not None:
            return source  # nothing changed: the original bytes keep the original digest
        return Manifest.build(kind or mt.OCI_MANIFEST, config, layers)

    def _config(self, node: ImageNode, sink: Sink, kind: str | None) -> tuple[Descriptor, Action]:
        blob = node.config
        media_type = blob.media_type
        if kind is not None and media_type in (mt.DOCKER_CONFIG, mt.OCI_CONFIG):
            media_type = mt.DOCKER_CONFIG if kind == mt.DOCKER_MANIFEST else mt.OCI_CONFIG
        digest = blob.digest or self._hash(blob)
        action = self._ensure(sink, digest, blob.size, blob, blob.what or "config")
        return Descriptor(media_type, digest, blob.size), action

    def _memo_key(self, blob: Blob) -> tuple[object, str | None]:
        """What identifies a layer's conversion within this push."""
        key = blob.diff_id or blob.digest or id(blob)
        return key, target_compression(self.setting, blob.media_type)

    def _compresses(self, blob: Blob) -> bool:
        """True if the layer is to be compressed (and so waits for its turn to be)."""
        return target_compression(self.setting, blob.media_type) not in (None, mt.NONE)

    def _layer(self, blob: Blob, sink: Sink, kind: str | None,
               ticket: Ticket | None) -> tuple[Descriptor, Action]:
        try:
            return self._layer_in_turn(blob, sink, kind, ticket)
        finally:
            if ticket is not None:
                ticket.release()  # if no compression used it (the layer was cached)

    def _layer_in_turn(self, blob: Blob, sink: Sink, kind: str | None,
                       ticket: Ticket | None) -> tuple[Descriptor, Action]:
        target = target_compression(self.setting, blob.media_type)
        final = target or mt.layer_compression(blob.media_type)
        media_type = blob.media_type
        if kind is not None and final is not None:  # a filesystem layer in a new manifest
            media_type = mt.layer_type(final, docker=kind == mt.DOCKER_MANIFEST)
        if target is None:
            digest = blob.digest or self._hash(blob)
            what = f"{blob.what} (against its diff_id)" if digest == blob.diff_id else blob.what
            action = self._ensure(sink, digest, blob.size, blob, what)
            return Descriptor(media_type, digest, blob.size), action
        digest, size, action = self._converted_layer(blob, target, sink, ticket)
        return Descriptor(media_type, digest, size), action

    def _converted_layer(self, blob: Blob, target: str, sink: Sink,
                         ticket: Ticket | None) -> tuple[Digest, int, Action]:
        key = blob.diff_id or blob.digest
        with self.lock(("convert", key or id(blob), target)):
            known = self.cache.converted(key, self.setting, blob.size) if key else None
            if known is not None:
                with self.lock(("blob", sink.repository, known[0])):
                    action = self._reuse(sink, known[0], blob.what)
                if action is not None:
                    return known[0], known[1], action
            digest, size, path, action = self._convert(blob, target, key, sink, ticket)
        if action is not None:
            return digest, size, action
        # the opener is called, and its file closed, by the upload
        source = Blob(blob.media_type, size, lambda: open(path, "rb"),  # noqa: SIM115
                      digest, what=blob.what)
        return digest, size, self._ensure(sink, digest, size, source, blob.what, verify=False)

    def _convert(self, blob: Blob, target: str, key: Digest | None, sink: Sink,
                 ticket: Ticket | None) -> tuple[Digest, int, str, Action | None]:
        """Convert into a spool file, once per push. A registry gets the bytes streamed
        meanwhile; the action is then what became of them (None: upload the spool file)."""
        memo = self._converted.get((key or id(blob), target))
        if memo is not None:
            return (*memo, None)
        bar_up = _LateBar(self.progress, blob.what, f"upload {blob.what}")
        # compressors use every core already: one at a time finishes the first layer soonest
        with ticket.turn() if ticket is not None else contextlib.nullcontext():
            stream = None
            if isinstance(sink, StreamingSink) and sink.can_stream:
                stream = SpoolStream(sink, bar_up.advance)
                self._streams.append(stream)
            try:
                out = self._transcode(blob, target, stream)
            except BaseException:
                if stream is not None:
                    stream.abort()
                raise
        self._converted[(key or id(blob), target)] = (out.digest, out.size, out.path)
        if key is not None:
            self.cache.remember_converted(key, self.setting, out.digest, out.size, blob.size)
        action = self._close_stream(stream, sink, out.digest, blob.what,
                                    lambda: bar_up.show(out.size))
        return out.digest, out.size, out.path, action

    def _transcode(self, blob: Blob, target: str, stream: SpoolStream | None) -> Converted:
        verb = "decompress" if target == mt.NONE else "compress"
        bar = f"{blob.what}#convert"
        self.progress.blob_start(bar, f"{verb} {blob.what}", blob.size,
                                 Phase.DECOMPRESS if target == mt.NONE else Phase.COMPRESS)
        source = mt.layer_compression(blob.media_type) or mt.NONE
        with blob.open() as raw:
            counted = _Counting(raw, lambda n: self.progress.blob_advance(bar, n))
            out = convert(counted, source_compression=source, target=target,
                          spool_dir=self.spool_dir, expected=blob.digest,
                          diff_id=blob.diff_id, what=blob.what,
                          tap=stream.wrote if stream else None)
        self.progress.blob_done(bar, None)
        return out

    def _close_stream(self, stream: SpoolStream | None, sink: Sink, digest: Digest, what: str,
                      show: Callable[[], None]) -> Action | None:
        """Drop the stream if the repository had the blob all along, else complete it."""
        if stream is None:
            return None
        with self.lock(("blob", sink.repository, digest)):
            action = self._reuse(sink, digest, what)
            if action is not None:
                stream.abort()
                return action
            show()  # the rest of the upload, while the stream catches up
            if not stream.finish(digest):
                if isinstance(sink, StreamingSink):
                    sink.stop_streaming()
                return None
            self._remember(sink, digest)
        self.progress.blob_done(what, UPLOADED)
        return UPLOADED

    def _hash(self, blob: Blob) -> Digest:
        hasher = Hasher()
        with blob.open() as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
        return hasher.digest

    def _reuse(self, sink: Sink, digest: Digest, what: str) -> Action | None:
        """SKIPPED if the repository has the blob, MOUNTED if a mount worked, else None."""
        if sink.has_blob(digest):
            self._remember(sink, digest)
            self.progress.blob_done(what, SKIPPED)
            return SKIPPED
        for other in self._locations(digest):
            if other == sink.repository:
                continue
            session = sink.mount(digest, other)
            if session is None:
                self._remember(sink, digest)
                self.progress.blob_done(what, MOUNTED)
                return MOUNTED
            sink.cancel(session)
            break
        return None

    def _ensure(self, sink: Sink, digest: Digest, size: int, blob: Blob, what: str,
                *, verify: bool = True) -> Action:
        """Make sure the repository holds the blob: skip, mount or upload it."""
        with self.lock(("blob", sink.repository, digest)):
            action = self._reuse(sink, digest, what)
            if action is not None:
                return action
            self.progress.blob_start(what, f"upload {what}", size, Phase.UPLOAD)
            sink.upload(digest, size, blob.open, verify=verify, what=what,
                        progress=lambda n: self.progress.blob_advance(what, n))
            self._remember(sink, digest)
            action = Action(getattr(sink, "stored_action", UPLOADED))
            self.progress.blob_done(what, action)
            return action

    def _remember(self, sink: Sink, digest: Digest) -> None:
        if self.registry is not None:
            self.cache.remember_location(self.registry, digest, sink.repository)


def _result(item: tuple[Descriptor, Action]) -> BlobResult:
    desc, action = item
    return BlobResult(desc.media_type, desc.digest, desc.size, action)


class _Counting:
    """Reports how many bytes were read from `inner`."""

    def __init__(self, inner: BinaryIO, report: Callable[[int], None]) -> None:
        self._inner, self._report = inner, report

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._inner.read(n)
        self._report(len(data))
        return data


class _LateBar:
    """A progress bar for bytes that start moving before their total is known."""

    def __init__(self, progress: Progress, key: str, label: str) -> None:
        self._progress, self._key, self._label = progress, key, label
        self._lock = threading.Lock()
        self._sent: int | None = 0  # None once shown

    def advance(self, n: int) -> None:
        with self._lock:
            if self._sent is not None:
                self._sent += n
                return
        self._progress.blob_advance(self._key, n)

    def show(self, total: int) -> None:
        with self._lock:
            sent, self._sent = self._sent or 0, None
            self._progress.blob_start(self._key, self._label, total, Phase.UPLOAD)
            self._progress.blob_advance(self._key, sent)
