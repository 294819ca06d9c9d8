"""The engine: move image trees from any source into any sink, blobs first, manifests after.

A run has three phases, each with a producer that is sure to run for every wait:

1. **probe**: every blob whose final digest is known before any work (configs, layers sent
   as they are, layers whose conversion the cache remembers) is looked up at its sink in
   parallel; what is there is skipped (or mounted) and never read;
2. **convert**: the conversions still needed run on the converter's own thread, in the
   planned order (converter.py);
3. **move**: worker threads send what is missing, converted layers as their conversion
   completes, and each manifest once all it refers to is stored, children before their
   index. The caller writes tags last, so no tag points at an incomplete image.

`close()` cancels whatever is still running (Ctrl-C, an error elsewhere): every loop checks
the cancel token at its next block, so an interrupted run stops within a second.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import BinaryIO, cast

from freight import mediatypes as mt
from freight.cache import Cache
from freight.digest import Digest, Hasher
from freight.engine.attestations import attested, kept_steps, left_out
from freight.engine.converter import CheckedReader, Converter
from freight.engine.fits import check_fits
from freight.engine.mover import Mover
from freight.engine.plan import (
    ImageStep,
    LayerStep,
    MemoKey,
    blob_key,
    conversion_order,
    distinct_blobs,
    images_in,
    plan_image,
)
from freight.engine.readahead import ReadAhead
from freight.engine.streaming import StreamingSink
from freight.engine.tally import Tally
from freight.engine.workers import CancelToken, Workers
from freight.errors import DigestMismatch, RegistryError, SourceError, registry_sent_wrong_bytes
from freight.manifest import Descriptor, Index, Manifest
from freight.progress import Plan, Progress
from freight.results import Action, BlobResult
from freight.sinks import Sink
from freight.sources.model import Blob, ImageNode, IndexNode, Node

STOP_WAIT = 1.0  # seconds a cancelled run waits for its threads before returning
STREAM_CANCEL_WAIT = 10.0  # seconds dropped streams may take, in all, to cancel their sessions


@dataclass(frozen=True)
class Target:
    """One root image tree into one sink."""

    node: Node
    sink: Sink
    stream: bool = False  # upload converted layers while they are converted


@dataclass(frozen=True)
class Moved:
    """A root moved: its (possibly new) manifest, not yet stored, and what each blob took."""

    descriptor: Descriptor
    raw: bytes
    blobs: tuple[BlobResult, ...]


class Engine:
    """One run over `targets`; use as a context manager, then `move` each target in turn."""

    def __init__(self, targets: list[Target], *, setting: str, jobs: int, cache: Cache,
                 progress: Progress, spool_dir: str, verb: str,
                 cancel: CancelToken | None = None, dry_run: bool = False,
                 oci: bool = False) -> None:
        self.targets, self.cache, self.progress, self.verb = targets, cache, progress, verb
        self.cancel = cancel or CancelToken()
        self.mover = Mover(cache=cache, progress=progress, cancel=self.cancel)
        self.workers = Workers(jobs)
        self.oci = oci  # OCI manifests and indexes wherever the source has Docker's
        self._steps = {id(t): [plan_image(i, setting, oci=oci) for i in images_in(t.node)]
                       for t in targets}
        self._present: dict[tuple[int, object], Action] = {}
        self._tally = Tally(progress)
        self._first_use: dict[MemoKey, tuple[int, object]] = {}
        self._spool_dir = spool_dir
        self._converter: Converter | None = None
        self.dry_run = dry_run
        self._hashed: dict[Blob, Digest] = {}
        self._hash_lock = threading.Lock()
        self._cached_conversions: dict[MemoKey, tuple[Digest, int] | None] = {}

    # -- set-up -------------------------------------------------------------------------

    def start(self) -> None:
        """Plan, report the plan, probe the destination and start the conversions."""
        blobs = 0
        for n, target in enumerate(self.targets):
            check_fits(self._steps[id(target)], target.sink)
            for blob in distinct_blobs(self._steps[id(target)]):
                self._tally.sizes[(n, blob_key(blob))] = blob.size
                blobs += 1
        self.progress.begin(Plan(self.verb, len(self.targets), blobs,
                                 sum(self._tally.sizes.values())))
        self._probe()
        if self.dry_run:
            return
        self._converter = Converter(
            self._needed(), spool_dir=self._spool_dir, cache=self.cache,
            progress=self.progress, cancel=self.cancel, stream_to=self._stream_to,
            on_read=lambda memo, n: self._tally.advance(self._first_use[memo], n))
        self._converter.start()

    def _probe(self) -> None:
        """Look up every blob whose final digest can be known now, all in parallel (a local
        blob that names no digest is hashed for it: it is sent as it is, so its digest is
        final)."""
        asks: dict[tuple[int, object], Future[Action | None]] = {}
        for n, target in enumerate(self.targets):
            for step in self._steps[id(target)]:
                for key, find in self._known(step):
                    if (n, key) not in asks:
                        asks[(n, key)] = self.workers.submit(
                            lambda s=target.sink, f=find:  # type: ignore[misc]
                            self.mover.reuse(s, f(), mount=not self.dry_run))
        for key, future in asks.items():
            action = future.result()
            if action is not None:
                self._present[key] = action

    def _known(self, step: ImageStep) -> list[tuple[object, Callable[[], Digest]]]:
        config = step.node.config
        found: list[tuple[object, Callable[[], Digest]]] = [
            (blob_key(config), lambda: self._digest_of(config))]
        for layer in step.layers:
            blob = layer.blob
            if layer.external:
                continue  # never sent: nothing to look up
            if layer.target is None:
                found.append((blob_key(blob),
                              lambda b=blob: self._digest_of(b)))  # type: ignore[misc]
            elif layer.memo is not None and (known := self._cached(layer)) is not None:
                found.append((layer.memo, lambda d=known[0]: d))  # type: ignore[misc]
        return found

    def _digest_of(self, blob: Blob) -> Digest:
        """The blob's digest: as the source says, else hashed once (and remembered)."""
        if blob.digest is not None:
            return blob.digest
        with self._hash_lock:
            known = self._hashed.get(blob)
        if known is None:
            known = self._hash(blob)
            with self._hash_lock:
                self._hashed[blob] = known
        return known

    def _cached(self, layer: LayerStep) -> tuple[Digest, int] | None:
        """What the cache says the layer becomes (digest, size), if it knows."""
        key = layer.blob.diff_id or layer.blob.digest
        if key is None or layer.target is None or layer.memo is None:
            return None
        if layer.memo not in self._cached_conversions:
            known = self.cache.converted(key, layer.target, layer.blob.size)
            self._cached_conversions[layer.memo] = known
        return self._cached_conversions[layer.memo]

    def _needed(self) -> list[LayerStep]:
        """The conversions some target still needs, in the planned order."""
        order: list[LayerStep] = []
        for step in conversion_order(s for t in self.targets for s in self._steps[id(t)]):
            assert step.memo is not None
            users = [n for n, t in enumerate(self.targets)
                     if step.memo in self._memos(t) and (n, step.memo) not in self._present]
            if users:
                self._first_use[step.memo] = (users[0], blob_key(step.blob))
                order.append(step)
        return order

    def _memos(self, target: Target) -> set[MemoKey]:
        return {layer.memo for step in self._steps[id(target)] for layer in step.layers
                if layer.memo is not None}

    def _stream_to(self, layer: LayerStep) -> StreamingSink | None:
        n = self._first_use[layer.memo][0] if layer.memo in self._first_use else None
        if n is None or not self.targets[n].stream:
            return None
        return self.targets[n].sink.streamer()

    # -- the run ------------------------------------------------------------------------

    def move(self, target: Target) -> Moved:
        """Store everything `target` refers to (not its root manifest); return that."""
        n = self.targets.index(target)
        steps = iter(self._steps[id(target)])
        return self._node(n, target.node, target.sink, steps)

    def _node(self, n: int, node: Node, sink: Sink, steps: Iterator[ImageStep]) -> Moved:
        if isinstance(node, IndexNode):
            return self._index(n, node, sink, steps)
        return self._image(n, next(steps), sink)

    def _index(self, n: int, node: IndexNode, sink: Sink, steps: Iterator[ImageStep]) -> Moved:
        """Children in index order; attestations after the images they describe, and left
        out when that image was rewritten (engine/attestations.py)."""
        placed: dict[int, Moved] = {}
        later: list[tuple[int, ImageStep, Digest]] = []
        for i, (desc, child) in enumerate(node.children):
            named = attested(desc)
            if named is not None and isinstance(child, ImageNode):
                later.append((i, next(steps), named))  # its steps, in tree order
            else:
                placed[i] = self._stored(sink, self._node(n, child, sink, steps))
        became = {node.children[i][0].digest: m.descriptor.digest for i, m in placed.items()}
        for i, step, named in later:
            if became.get(named, named) != named:
                self._skip(n, step)
                self.progress.note(left_out(node.children[i][0].digest, named, became[named]))
            else:
                placed[i] = self._stored(sink, self._image(n, step, sink))
        children: list[Descriptor] = []
        results: list[BlobResult] = []
        for i in sorted(placed):
            desc, d = node.children[i][0], placed[i].descriptor
            results.extend(placed[i].blobs)
            children.append(Descriptor(d.media_type, d.digest, d.size, desc.platform,
                                       desc.annotations, desc.extra))
        converted = self.oci and node.index.media_type != mt.OCI_INDEX
        if children == list(node.index.manifests) and not converted:
            return Moved(node.index.descriptor(), node.index.raw, tuple(results))
        kind = node.index.media_type
        if self.oci or any(c.media_type == mt.OCI_MANIFEST for c in children):
            kind = mt.OCI_INDEX
        index = Index.build(kind, children, node.index.annotations or None)
        return Moved(index.descriptor(), index.raw, tuple(results))

    @staticmethod
    def _stored(sink: Sink, moved: Moved) -> Moved:
        sink.put_manifest(str(moved.descriptor.digest), moved.raw, moved.descriptor.media_type)
        return moved

    def _skip(self, n: int, step: ImageStep) -> None:
        """An image planned but not moved: its blobs count as done in the overall bar."""
        for blob in (step.node.config, *step.node.layers):
            self._tally.finish((n, blob_key(blob)))

    def _image(self, n: int, step: ImageStep, sink: Sink) -> Moved:
        order = sorted(range(len(step.layers)), key=lambda i: -step.layers[i].blob.size)
        futures = {i: self.workers.submit(
            lambda layer=step.layers[i]: self._layer(n, layer, sink))  # type: ignore[misc]
            for i in order}
        config = self._config(n, step, sink)
        layers = [futures[i].result() for i in range(len(step.layers))]
        manifest = self._manifest(step, config.descriptor, [r.descriptor for r in layers])
        blobs = (config.result, *(r.result for r in layers))
        return Moved(manifest.descriptor(), manifest.raw, blobs)

    def _manifest(self, step: ImageStep, config: Descriptor,
                  layers: list[Descriptor]) -> Manifest:
        if step.kind is None and step.node.manifest is not None:
            return step.node.manifest  # nothing changed: the original bytes, the same digest
        return Manifest.build(step.kind or mt.OCI_MANIFEST, config, layers)

    def _config(self, n: int, step: ImageStep, sink: Sink) -> _Placed:
        blob = step.node.config
        digest = self._digest_of(blob)
        action = self._as_is(n, blob, digest, sink)
        return _Placed(_unchanged(step.config_type, digest, blob), action)

    def _layer(self, n: int, layer: LayerStep, sink: Sink) -> _Placed:
        blob = layer.blob
        if layer.external:
            return self._external(layer)
        if layer.memo is None:
            digest = self._digest_of(blob)
            action = self._as_is(n, blob, digest, sink)
            return _Placed(_unchanged(layer.media_type, digest, blob), action)
        present, known = self._present.get((n, layer.memo)), self._cached(layer)
        if present is not None and known is not None:
            self._tally.finish((n, blob_key(blob)))
            return _Placed(Descriptor(layer.media_type, known[0], known[1]), present)
        assert self._converter is not None
        with _blamed(blob):
            converted = self._converter.result(layer.memo)
        action = self.mover.place_converted(sink, converted, blob.what)
        self._tally.finish((n, blob_key(blob)))
        return _Placed(Descriptor(layer.media_type, converted.digest, converted.size), action)

    def _external(self, layer: LayerStep) -> _Placed:
        """A layer left at its URLs: its descriptor, URLs included, and nothing moved."""
        blob = layer.blob
        desc = replace(_unchanged(layer.media_type, self._digest_of(blob), blob),
                       extra={"urls": list(blob.urls)})
        return _Placed(desc, Action.EXTERNAL)

    def _as_is(self, n: int, blob: Blob, digest: Digest, sink: Sink) -> Action:
        key = (n, blob_key(blob))
        action = self._present.get(key)
        if action is None:
            what = f"{blob.what} (against its diff_id)" if digest == blob.diff_id else blob.what
            remote_to_remote = blob.origin is not None and sink.registry is not None
            opener = _read_ahead(blob) if remote_to_remote else blob.open
            with _blamed(blob):
                action = self.mover.ensure(sink, digest, blob.size, opener, what,
                                           counted=lambda k: self._tally.advance(key, k))
        self._tally.finish(key)
        return action

    def _hash(self, blob: Blob) -> Digest:
        hasher = Hasher()
        with CheckedReader(blob.open(), self.cancel, _ignore) as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
        return hasher.digest

    def preview(self, target: Target) -> Moved:
        """A dry run: what `move` would do, from the probe alone; nothing is read or sent.
        The manifest is the one `move` would write where every layer's final digest is
        known (sent as is, or remembered by the cache); else the source's."""
        n = self.targets.index(target)
        results: list[BlobResult] = []
        manifests: list[Manifest | None] = []
        for step in kept_steps(target.node, iter(self._steps[id(target)]), self.progress.note):
            placed = [self._planned(n, step.node.config, None, step.config_type)]
            placed += [self._planned(n, layer.blob, layer, layer.media_type)
                       for layer in step.layers]
            results.extend(p.result for p in placed)
            known = all(p.descriptor.digest != _UNKNOWN for p in placed)
            manifests.append(self._manifest(step, placed[0].descriptor,
                                            [p.descriptor for p in placed[1:]])
                             if known else None)
        node = target.node
        if isinstance(node, ImageNode) and manifests[0] is not None:
            return Moved(manifests[0].descriptor(), manifests[0].raw, tuple(results))
        root = node.index if isinstance(node, IndexNode) else node.manifest
        if root is None:  # a legacy archive whose layers would be converted
            return Moved(Descriptor(mt.OCI_MANIFEST, _UNKNOWN, 0), b"", tuple(results))
        return Moved(root.descriptor(), root.raw, tuple(results))

    def _planned(self, n: int, blob: Blob, layer: LayerStep | None, media_type: str) -> _Placed:
        key: object
        if layer is not None and layer.external:
            return self._external(layer)
        if layer is not None and layer.memo is not None:
            known, key = self._cached(layer), layer.memo
            digest, size = known if known else (None, blob.size)
        else:
            digest, size, key = self._digest_of(blob), blob.size, blob_key(blob)
        action = self._present.get((n, key), Action.PLANNED)
        return _Placed(Descriptor(media_type, digest or _UNKNOWN, size), action)

    # -- tear-down ----------------------------------------------------------------------

    def close(self, *, failed: bool) -> None:
        """Stop every thread of the run; after a failure, as fast as possible. Streams
        nobody finished are dropped (their sessions cancelled in the background)."""
        if failed:
            self.cancel.cancel()
        self.workers.shutdown(STOP_WAIT if failed else STREAM_CANCEL_WAIT)
        if self._converter is not None:
            self._converter.join(STOP_WAIT)
            self._converter.drop_streams(STOP_WAIT if failed else STREAM_CANCEL_WAIT)

    def __enter__(self) -> Engine:
        try:
            self.start()
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self.close(failed=kind is not None)


@dataclass(frozen=True)
class _Placed:
    descriptor: Descriptor
    action: Action

    @property
    def result(self) -> BlobResult:
        d = self.descriptor
        return BlobResult(d.media_type, d.digest, d.size, self.action)


def _unchanged(media_type: str, digest: Digest, blob: Blob) -> Descriptor:
    """The descriptor of a blob sent as it is: its annotations still describe its bytes
    (a converted blob gets none: they described the bytes it replaced)."""
    return Descriptor(media_type, digest, blob.size, annotations=dict(blob.annotations))


def _read_ahead(blob: Blob) -> Callable[[], BinaryIO]:
    """A download read ahead on a thread of its own, so it overlaps its upload: 25% off a
    registry-to-registry copy here (bench/README.md). A local write keeps pace with the
    download anyway, and the extra thread made pulls slower. (ReadAhead reads and closes
    as a binary file does.)"""
    return lambda: cast(BinaryIO, ReadAhead(blob.open()))


@contextlib.contextmanager
def _blamed(blob: Blob) -> Iterator[None]:
    """A registry's blob that does not match its digest, or that does not decompress as
    its media type says (the decompressor fails before the digest is checked), is a
    registry error, not bad input."""
    try:
        yield
    except DigestMismatch as exc:
        if blob.origin is None:
            raise
        raise registry_sent_wrong_bytes(blob.origin, exc) from None
    except SourceError as exc:
        if blob.origin is None:
            raise
        raise RegistryError(f"{blob.origin} sent {blob.what} that cannot be read as its "
                            f"media type says: {exc}") from None


_UNKNOWN = Digest.parse("sha256:" + "0" * 64)  # a dry run cannot know a conversion's digest


def _ignore(_: int) -> None:
    pass

