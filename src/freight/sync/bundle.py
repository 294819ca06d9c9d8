"""Bundles: one tar carrying images, tags and referrers across an air gap.

A bundle is an OCI image layout in a tar (`oci-layout`, `index.json`, `blobs/sha256/…`),
every blob once however many images share it. `index.json` lists each tag (annotations
`org.opencontainers.image.ref.name` = tag, `io.containerd.image.name` = REPO:TAG, and
`dev.freight.repository`) and each untagged root: referrers (manifests with a `subject`,
as image-spec 1.1 stores them) and images synced by digest. Cosign's `.sig`/`.att`/`.sbom`
tags and referrers tags are tags like any other. A `manifest.json` makes the images
`docker load`-able (for an index, its linux/amd64 image, else its first), and
`freight-inventory.json` says what the far side holds once the bundle is restored, so the
next bundle can be made `--since` this one.

Written to `PATH.part` and renamed at the end: a failed run leaves no half bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO

from freight import jsontext
from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import FreightError, NotFound, SourceError
from freight.manifest import Descriptor, Index, Manifest, dump_json, load_json
from freight.sync.inventory import Holdings, Inventory
from freight.sync.store import BlobSource, Found, Stored, declared_type, verified

REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"
REPOSITORY = "dev.freight.repository"
INVENTORY = "freight-inventory.json"
LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'
DOCKER_PLATFORM = ("linux", "amd64")  # the image `docker load` gets from an index


def blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.encoded}"


@dataclass(frozen=True)
class _Put:
    repository: str
    reference: str
    descriptor: Descriptor


class BundleWriter:
    """Content arriving from any thread, appended to one tar (one writer at a time)."""

    name = "bundle"

    def __init__(self, path: str, base: Inventory | None = None) -> None:
        self.path, self.base = path, base or Inventory()
        self._part = f"{path}.part"
        try:  # closed by finish() or abort(): the writer lives across the whole sync
            self._tar = tarfile.open(self._part, "w", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        except OSError as exc:
            raise SourceError(f"cannot write the bundle {path}: {exc.strerror}") from None
        self._spool = tempfile.mkdtemp(prefix="freight-bundle-")
        self._lock = threading.Lock()
        self._blobs: set[Digest] = set()
        self._manifests: dict[Digest, tuple[bytes, str]] = {}
        self._puts: list[_Put] = []
        self._add("oci-layout", LAYOUT)

    def store(self, repository: str) -> BundleRepository:
        return BundleRepository(self, repository)

    def _add(self, name: str, data: bytes) -> None:
        import io

        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        self._tar.addfile(info, io.BytesIO(data))

    def has_blob(self, digest: Digest) -> bool:
        with self._lock:
            return digest in self._blobs

    def add_blob(self, digest: Digest, size: int, source: BlobSource) -> bool:
        """Verify into a spool file (in parallel), then append it (one at a time); True
        when it was added (False: the bundle had it)."""
        if self.has_blob(digest):
            return False
        fd, spool = tempfile.mkstemp(dir=self._spool)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in verified(source.open_blob(digest), digest, size, source):
                    f.write(chunk)
            with self._lock:
                if digest not in self._blobs:
                    info = tarfile.TarInfo(blob_path(digest))
                    info.size, info.mtime, info.mode = size, 0, 0o644
                    with open(spool, "rb") as f:
                        self._tar.addfile(info, f)
                    self._blobs.add(digest)
                    return True
            return False
        finally:
            os.unlink(spool)

    def add_manifest(self, put: _Put, raw: bytes, kind: str) -> None:
        with self._lock:
            if put.descriptor.digest not in self._blobs:
                self._add(blob_path(put.descriptor.digest), raw)
                self._blobs.add(put.descriptor.digest)
            self._manifests[put.descriptor.digest] = (raw, kind)
            self._puts.append(put)

    def manifest(self, digest: Digest) -> tuple[bytes, str] | None:
        with self._lock:
            return self._manifests.get(digest)

    def tagged(self, repository: str, tag: str) -> Digest | None:
        with self._lock:
            for put in reversed(self._puts):
                if (put.repository, put.reference) == (repository, tag):
                    return put.descriptor.digest
        return self.base.of(repository).tags.get(tag)

    def holds(self, repository: str, digest: Digest) -> bool:
        with self._lock:
            if any(p.repository == repository and p.descriptor.digest == digest
                   for p in self._puts):
                return True
        return digest in self.base.of(repository).manifests

    def finish(self) -> Inventory:
        """Write index.json, manifest.json and the inventory; rename into place."""
        entries, docker = self._index_entries(), self._docker_entries()
        written = self._written()
        self._add("index.json", dump_json({"schemaVersion": 2, "mediaType": mt.OCI_INDEX,
                                           "manifests": entries}))
        self._add("manifest.json", json.dumps(docker).encode())
        after = self.base.merged(written)
        self._add(INVENTORY, json.dumps(after.to_json()).encode())
        self._tar.close()
        os.replace(self._part, self.path)
        shutil.rmtree(self._spool, ignore_errors=True)
        return after

    def abort(self) -> None:
        self._tar.close()
        for leftover in (self._part,):
            if os.path.exists(leftover):
                os.unlink(leftover)
        shutil.rmtree(self._spool, ignore_errors=True)

    def _children(self) -> set[Digest]:
        """What indexes hold as content (not listed in index.json on their own); a
        referrers tag's index lists referrers, which are listed (image-spec 1.1)."""
        from freight.referrer_tags import is_referrer_tag

        out: set[Digest] = set()
        for put in self._puts:
            if is_referrer_tag(put.reference) and "." not in put.reference:
                continue
            raw, kind = self._manifests[put.descriptor.digest]
            if mt.is_index(kind):
                out.update(d.digest for d in Index.parse(raw, kind).manifests)
        return out

    def _index_entries(self) -> list[dict[str, Any]]:
        children, out, seen = self._children(), [], set()
        for put in self._puts:
            key = (put.repository, put.reference)
            is_tag = ":" not in put.reference
            if key in seen or (not is_tag and put.descriptor.digest in children):
                continue
            seen.add(key)
            notes = {REPOSITORY: put.repository}
            if is_tag:
                notes |= {REF_NAME: put.reference,
                          IMAGE_NAME: f"{put.repository}:{put.reference}"}
            d = put.descriptor
            out.append(Descriptor(d.media_type, d.digest, d.size, None, notes,
                                  d.extra).to_json())
        return out

    def _docker_entries(self) -> list[dict[str, Any]]:
        out = []
        for put in self._puts:
            if ":" in put.reference or put.reference.startswith("sha256-"):
                continue
            image = self._docker_image(put.descriptor.digest)
            if image is not None:
                out.append({"Config": blob_path(image.config.digest),
                            "RepoTags": [f"{put.repository}:{put.reference}"],
                            "Layers": [blob_path(d.digest) for d in image.layers]})
        return out

    def _docker_image(self, digest: Digest) -> Manifest | None:
        """The image docker would load for `digest`, if every blob of it is here."""
        raw, kind = self._manifests[digest]
        if mt.is_index(kind):
            children = Index.parse(raw, kind).manifests
            pick = [c for c in children if c.platform and
                    (c.platform.os, c.platform.architecture) == DOCKER_PLATFORM] or children
            return self._docker_image(pick[0].digest) if pick and \
                pick[0].digest in self._manifests else None
        if not mt.is_manifest(kind):
            return None
        image = Manifest.parse(raw, kind)
        if not mt.is_image_config(image.config.media_type) or not all(
                mt.is_tar_layer(d.media_type) for d in image.layers):
            return None
        needed = [image.config.digest, *(d.digest for d in image.layers)]
        return image if all(d in self._blobs for d in needed) else None

    def _written(self) -> Inventory:
        repos: dict[str, Holdings] = {}
        for put in self._puts:
            raw, kind = self._manifests[put.descriptor.digest]
            blobs: frozenset[Digest] = frozenset()
            if mt.is_manifest(kind):
                image = Manifest.parse(raw, kind)
                blobs = frozenset(d.digest for d in (image.config, *image.layers))
            tags = {} if ":" in put.reference else {put.reference: put.descriptor.digest}
            held = Holdings(tags, frozenset({put.descriptor.digest}), blobs)
            repos[put.repository] = repos.get(put.repository, Holdings()).merged(held)
        return Inventory(repos)


class BundleRepository:
    """One repository's view of a bundle being written (the `Store` calls)."""

    def __init__(self, writer: BundleWriter, repository: str) -> None:
        self.writer, self.repository = writer, repository
        self.name, self.place = f"bundle:{repository}", f"bundle:{writer.path}"

    def head_manifest(self, reference: str) -> Found | None:
        if Digest.is_valid(reference):
            digest = Digest.parse(reference)
            return Found(digest, "", 0) if self.writer.holds(self.repository, digest) else None
        tagged = self.writer.tagged(self.repository, reference)
        return Found(tagged, "", 0) if tagged is not None else None

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        found = self.head_manifest(reference)
        held = self.writer.manifest(found.digest) if found else None
        if held is None:
            raise NotFound(f"{self.name}:{reference} is not in this bundle")
        return held

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Stored:
        digest = Digest.of(raw)
        extra = {}
        document = load_json(raw, "manifest")
        if document.get("artifactType"):
            extra["artifactType"] = document["artifactType"]
        put = _Put(self.repository, reference,
                   Descriptor(media_type, digest, len(raw), None, {}, extra))
        self.writer.add_manifest(put, raw, media_type)
        subject = document.get("subject")
        return Stored(digest, Descriptor.from_json(subject, "subject").digest
                      if isinstance(subject, dict) else None)

    def has_blob(self, digest: Digest) -> bool:
        return self.writer.has_blob(digest) or digest in self.writer.base.of(
            self.repository).blobs

    def open_blob(self, digest: Digest) -> BinaryIO:
        raise NotFound(f"{self.name}: a bundle being written is not read from")

    def put_blob(self, digest: Digest, size: int, source: BlobSource) -> bool:
        return self.writer.add_blob(digest, size, source)

    def supports_referrers(self) -> bool:
        return True  # a layout stores referrers as manifests with a subject


class BundleReader:
    """A bundle read back: its index entries, and one `Store` view per repository."""

    def __init__(self, path: str, *, legacy: bool = False) -> None:
        from freight.sources.files import open_files, read_small
        from freight.sync.legacy import layout_files

        # a bundle, any OCI archive, or a layout directory; with `legacy`, a legacy docker
        # save too (seen as a layout: sync/legacy.py)
        self.files = layout_files(path) if legacy else open_files(path)
        self.path = path
        if self.files.size("oci-layout") is None or self.files.size("index.json") is None:
            self.files.close()
            raise SourceError(f"{path}: not a bundle (no oci-layout or index.json)")
        index = Index.parse(read_small(self.files, "index.json", "index.json"), mt.OCI_INDEX,
                            f"{path} index.json")
        self.entries = index.manifests

    def repository(self, entry: Descriptor) -> str | None:
        """The repository an index entry belongs to: freight's annotation, else the one in
        containerd's full name (what docker 25+ and `freight pull` write)."""
        named = entry.annotations.get(REPOSITORY)
        if named:
            return named
        full = entry.annotations.get(IMAGE_NAME)
        if not full:
            return None
        from freight.reference import Reference

        try:
            return Reference.parse(full).repository
        except FreightError:
            return None

    def tag(self, entry: Descriptor) -> str | None:
        """The entry's tag: `ref.name` when it is a plain tag, else the full name's."""
        ref = entry.annotations.get(REF_NAME)
        if ref and "/" not in ref and ":" not in ref:
            return ref
        full = ref or entry.annotations.get(IMAGE_NAME)
        if not full:
            return None
        from freight.reference import Reference

        try:
            return Reference.parse(full).tag
        except FreightError:
            return None

    def inventory(self) -> Inventory:
        from freight.sources.files import read_small

        if self.files.size(INVENTORY) is None:
            raise SourceError(f"{self.path}: has no {INVENTORY}; not made by freight sync")
        try:
            data = jsontext.parse(read_small(self.files, INVENTORY, INVENTORY))
        except ValueError as exc:
            raise SourceError(f"{self.path}: {INVENTORY} is not valid JSON ({exc})") from None
        return Inventory.from_json(data, f"{self.path} {INVENTORY}")

    def store(self, repository: str) -> BundleSource:
        return BundleSource(self, repository)

    def close(self) -> None:
        self.files.close()


class BundleSource:
    """Reading one repository's content out of a bundle, verified."""

    def __init__(self, reader: BundleReader, repository: str) -> None:
        self.reader, self.repository = reader, repository
        self.name = f"{reader.path}"

    def get_manifest(self, reference: str) -> tuple[bytes, str]:
        digest = Digest.parse(reference)
        with self.open_blob(digest) as f:
            raw = f.read()
        if Digest.of(raw) != digest:
            raise SourceError(f"{self.name}: manifest {digest} is damaged")
        return raw, declared_type(raw)

    def open_blob(self, digest: Digest) -> BinaryIO:
        if self.reader.files.size(blob_path(digest)) is None:
            raise SourceError(f"{self.name} lacks {digest} and the registry does not have "
                              "it either: restore the earlier bundles first, or make a "
                              "full bundle")
        return self.reader.files.open(blob_path(digest))


def bundle_inventory(path: str) -> Inventory:
    reader = BundleReader(path)
    try:
        return reader.inventory()
    finally:
        reader.close()
