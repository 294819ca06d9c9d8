"""An OCI image layout directory as a sink.

Blobs go to `blobs/<alg>/<hex>` through a temporary file that is verified (digest and size)
before it is renamed into place, so a blob that exists is a blob that is right: pulling into
an existing layout downloads only what is missing. Tagged manifests are collected and
written to `index.json` by `finish()`, with the annotations docker and containerd read.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freight import mediatypes as mt
from freight.atomic import write_atomically
from freight.digest import Digest, Hasher
from freight.engine.streaming import StreamingSink
from freight.errors import DigestMismatch, SourceError
from freight.manifest import Descriptor, Index, load_json
from freight.reference import Reference
from freight.results import Action

READ_BLOCK = 1 << 20
IMAGE_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_HEADER = b'{"imageLayoutVersion": "1.0.0"}'


@dataclass(frozen=True)
class Tagged:
    """A root written to the layout, and the reference it was pulled as."""

    descriptor: Descriptor
    reference: Reference | None  # None: an untagged root


class LayoutSink:
    """Writes blobs and manifests into `root`; `finish()` writes `index.json`."""

    registry: str | None = None
    holds_external = True  # the image-layout spec lets blobs be fetched from elsewhere
    images_only = False

    def __init__(self, root: Path, repository: str = "", *,
                 stored: Action = Action.DOWNLOADED) -> None:
        self.root, self.repository, self.stored = root, repository, stored
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        self.tagged: list[Tagged] = []
        self._lock = threading.Lock()

    def blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.encoded

    def has_blob(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    def mount(self, digest: Digest, source: str) -> bool:
        return False  # a layout has no repositories to mount from

    def streamer(self) -> StreamingSink | None:
        return None

    def upload(self, digest: Digest, size: int, opener: Callable[[], Any], *,
               verify: bool = True,
               progress: Callable[[int], None] = lambda n: None, what: str = "blob") -> None:
        path = self.blob_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            hasher = Hasher(digest.algorithm)
            with os.fdopen(fd, "wb") as out, opener() as src:
                while block := src.read(READ_BLOCK):
                    hasher.update(block)
                    out.write(block)
                    progress(len(block))
            if hasher.digest != digest or hasher.size != size:
                raise DigestMismatch(f"{what} ({hasher.size} bytes, expected {size})",
                                     str(digest), str(hasher.digest))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Digest:
        digest = Digest.of(raw)
        self.upload(digest, len(raw), lambda: io.BytesIO(raw), what="manifest")
        return digest

    def add_root(self, descriptor: Descriptor, reference: Reference | None) -> None:
        """Record a pulled root for `index.json` (call after its manifest is stored)."""
        with self._lock:
            self.tagged.append(Tagged(descriptor, reference))

    def abort(self) -> None:
        """A failed run: the blobs stored stay (each is verified and content-addressed);
        `index.json` is left as it was."""

    def finish(self) -> None:
        """Write `oci-layout` and `index.json`, keeping entries of a layout we pulled into."""
        names = {str(t.reference) for t in self.tagged if t.reference is not None}
        entries = [d for d in self._existing() if d.annotations.get(IMAGE_NAME) not in names]
        entries += root_entries(self.tagged)
        _write(self.root / "oci-layout", LAYOUT_HEADER + b"\n")
        _write(self.root / "index.json", Index.build(mt.OCI_INDEX, entries).raw)

    def _existing(self) -> list[Descriptor]:
        path = self.root / "index.json"
        if not path.is_file():
            return []
        raw = path.read_bytes()
        load_json(raw, str(path))  # a file that is not JSON is an error, as it was
        try:
            return list(Index.parse(raw, mt.OCI_INDEX, str(path)).manifests)
        except SourceError:
            return []


def root_entries(tagged: list[Tagged]) -> list[Descriptor]:
    """`index.json` entries for the roots written, with the annotations docker and
    containerd read (the full name) and the image spec's ref.name (the tag)."""
    entries = []
    for t in tagged:
        annotations = {}
        if t.reference is not None:
            annotations[IMAGE_NAME] = str(t.reference)
            if t.reference.tag:
                annotations[REF_NAME] = t.reference.tag
        d = t.descriptor
        entries.append(Descriptor(d.media_type, d.digest, d.size, d.platform, annotations))
    return entries


def _write(path: Path, data: bytes) -> None:
    write_atomically(path, data)  # a full disk, an interrupt: no .tmp-* left in the layout
