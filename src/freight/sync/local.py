"""OCI layouts as sync sources: a layout directory, an OCI archive, a bundle.

Images are the `index.json` entries that carry a name (`io.containerd.image.name`, or a
bundle's `dev.freight.repository` with `ref.name`); their referrers are the untagged
entries whose manifest has them as `subject` (how image-spec 1.1 layouts keep referrers,
and how bundles do), the cosign tags `sha256-<hex>.sig|.att|.sbom`, and a referrers tag
`sha256-<hex>` kept verbatim.
"""

from __future__ import annotations

import threading

from freight import mediatypes as mt
from freight.digest import Digest
from freight.manifest import Descriptor, load_json
from freight.referrers import (
    API,
    COSIGN,
    COSIGN_SUFFIXES,
    MAX_DEPTH,
    Listing,
    Referrer,
    cosign_tag,
    descriptor_for,
    referrers_tag,
)
from freight.sync.bundle import BundleReader, BundleSource, blob_path
from freight.sync.store import Found, declared_type


class LocalStore(BundleSource):
    """One repository of a layout, read as a sync source (HEADs answered from index.json)."""

    def head_manifest(self, reference: str) -> Found | None:
        if Digest.is_valid(reference):
            digest = Digest.parse(reference)
            size = self.reader.files.size(blob_path(digest))
            if size is None:
                return None
            return Found(digest, self.get_manifest(reference)[1], size)
        for entry in self.reader.entries:
            if self.reader.repository(entry) == self.repository and \
                    self.reader.tag(entry) == reference:
                return Found(entry.digest, entry.media_type, entry.size)
        return None


class Referrers:
    """The referrers a layout holds, indexed once (subjects read from the manifests);
    `repository` "" is the entries that name none (a layout another tool wrote)."""

    def __init__(self, reader: BundleReader) -> None:
        self.reader = reader
        self._by_subject: dict[tuple[str, Digest], list[Descriptor]] | None = None
        self._lock = threading.Lock()

    def listing(self, repository: str, subject: Digest, depth: int = 0) -> Listing:
        found = [Referrer(d, str(d.extra.get("artifactType", "")), API)
                 for d in self._index().get((repository, subject), [])]
        tags = {self.reader.tag(e): e for e in self.reader.entries
                if (self.reader.repository(e) or "") == repository and self.reader.tag(e)}
        for suffix in COSIGN_SUFFIXES:
            entry = tags.get(cosign_tag(subject, suffix))
            if entry is not None:
                found.append(Referrer(entry, f"cosign{suffix}", COSIGN,
                                      cosign_tag(subject, suffix)))
        if depth < MAX_DEPTH:
            found = [Referrer(r.descriptor, r.artifact_type, r.via, r.tag,
                              self.listing(repository, r.descriptor.digest, depth + 1))
                     for r in found]
        index = tags.get(referrers_tag(subject))
        return Listing(subject, tuple(found),
                       Found(index.digest, index.media_type, index.size) if index else None)

    def _index(self) -> dict[tuple[str, Digest], list[Descriptor]]:
        with self._lock:
            if self._by_subject is None:
                self._by_subject = self._read()
            return self._by_subject

    def _read(self) -> dict[tuple[str, Digest], list[Descriptor]]:
        out: dict[tuple[str, Digest], list[Descriptor]] = {}
        for entry in self.reader.entries:
            repository = self.reader.repository(entry) or ""  # "": a layout without names
            if self.reader.tag(entry) or not mt.is_manifest(entry.media_type):
                continue
            raw, kind = LocalStore(self.reader, repository).get_manifest(str(entry.digest))
            subject = load_json(raw, "manifest").get("subject")
            if isinstance(subject, dict):
                digest = Descriptor.from_json(subject, "subject").digest
                out.setdefault((repository, digest), []).append(
                    descriptor_for(raw, kind or declared_type(raw)))
        return out
