"""An OCI layout (or OCI archive) being written, as a `Store` that referrers travelling
with a transfer are written to (see `sync.travel`); loaded only for a local destination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import NotFound
from freight.manifest import Descriptor, Index, load_json
from freight.reference import Reference
from freight.referrer_tags import is_referrer_tag
from freight.sinks.docker_tar import DockerTarSink
from freight.sinks.layout import LayoutSink
from freight.sync.store import BlobSource, Found, Stored


@dataclass(frozen=True)
class _Put:
    descriptor: Descriptor
    raw: bytes
    children: tuple[Digest, ...]


LocalSink = LayoutSink | DockerTarSink


class LayoutStore:
    """An OCI layout being written, as a `Store` for referrers. Blobs and manifests go
    through the sink (verified); `flush()` lists the manifests in `index.json`: a referrer
    untagged, named `REPO@DIGEST` after its image (so the layout says whose it is), the
    cosign and referrers tags as tags of the image's repository. An index's children are
    not listed (they are content of the index, as an image's are)."""

    def __init__(self, sink: LocalSink, image: Reference | None) -> None:
        self.sink, self.image = sink, image
        self.place = str(sink.root if isinstance(sink, LayoutSink) else sink.output)
        self.name = f"{self.place}:{image.name if image else ''}"
        self._puts: dict[str, _Put] = {}

    def head_manifest(self, reference: str) -> Found | None:
        put = self._puts.get(reference)
        if put is None:
            return None  # not yet listed here: written again (blobs that exist are kept)
        d = put.descriptor
        return Found(d.digest, d.media_type, d.size)

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        put = self._puts.get(reference)
        if put is None:
            raise NotFound(f"{self.name}: no manifest {reference}")
        return put.raw, put.descriptor.media_type

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Stored:
        digest = self.sink.put_manifest(reference, raw, media_type)
        children: tuple[Digest, ...] = ()
        listing = is_referrer_tag(reference) and "." not in reference  # a referrers tag
        if mt.is_index(media_type) and not listing:  # its entries are referrers, not content
            children = tuple(d.digest for d in Index.parse(raw, media_type).manifests)
        self._puts[reference] = _Put(Descriptor(media_type, digest, len(raw)), raw, children)
        subject = load_json(raw, "manifest").get("subject")
        return Stored(digest, Descriptor.from_json(subject, "subject").digest
                      if isinstance(subject, dict) else None)

    def has_blob(self, digest: Digest) -> bool:
        return self.sink.has_blob(digest)

    def open_blob(self, digest: Digest) -> BinaryIO:
        raise NotFound(f"{self.name}: a layout being written is not read from")

    def put_blob(self, digest: Digest, size: int, source: BlobSource) -> bool:
        self.sink.upload(digest, size, lambda: source.open_blob(digest),
                         what=f"blob {digest.short} of a referrer")
        return True

    def supports_referrers(self) -> bool:
        return True  # a layout lists referrers as manifests with a subject

    def flush(self) -> None:
        """Add every manifest written to the layout's `index.json` entries."""
        children = {c for put in self._puts.values() for c in put.children}
        for reference, put in self._puts.items():
            by_digest = Digest.is_valid(reference)
            if by_digest and put.descriptor.digest in children:
                continue
            self.sink.add_root(put.descriptor, self._name(reference, put, by_digest))

    def _name(self, reference: str, put: _Put, by_digest: bool) -> Reference | None:
        if self.image is None:
            return None
        if by_digest:
            return self.image.with_digest(put.descriptor.digest)
        return self.image.with_tag(reference)
