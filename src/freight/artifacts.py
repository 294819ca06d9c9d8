"""Artifacts (image-spec 1.1): files pushed as a manifest with an empty config and an
`artifactType`, optionally attached to an image through `subject` (what `oras attach`
does). Helm charts and WASM modules are artifacts whose config and layer types say so.
"""

from __future__ import annotations

import base64
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from freight import mediatypes as mt
from freight.connect import Connection
from freight.digest import Digest, Hasher
from freight.errors import SourceError, UsageError
from freight.manifest import Descriptor, Manifest, dump_json
from freight.reference import Reference
from freight.referrers import descriptor_for
from freight.sync.carry import add_to_index
from freight.sync.store import RegistryStore, require, verified

EMPTY_JSON = b"{}"  # the empty descriptor's content (image-spec: application/vnd.oci.empty.v1+json)
EMPTY = Descriptor(mt.OCI_EMPTY, Digest.of(EMPTY_JSON), len(EMPTY_JSON),
                   extra={"data": base64.b64encode(EMPTY_JSON).decode()})
DEFAULT_ARTIFACT_TYPE = "application/vnd.unknown.artifact.v1"  # oras's default, for tools
DEFAULT_FILE_TYPE = "application/octet-stream"
TITLE = "org.opencontainers.image.title"  # the file name a puller writes
READ_BLOCK = 1 << 20
# layer types chosen from the name when the user gives none (TYPE after FILE: overrides)
_SUFFIX_TYPES = {
    ".wasm": "application/vnd.wasm.content.layer.v1+wasm",
    ".json": "application/json",
    ".tar": mt.OCI_LAYER,
    ".tar.gz": mt.OCI_LAYER_GZIP,
}


@dataclass(frozen=True)
class FileSpec:
    """`PATH[:MEDIATYPE]` from the command line, hashed once."""

    path: Path
    media_type: str
    digest: Digest
    size: int

    @classmethod
    def parse(cls, text: str) -> FileSpec:
        path, media_type = text, ""
        head, sep, tail = text.rpartition(":")
        if sep and "/" in tail and not Path(text).exists():
            path, media_type = head, tail
        where = Path(path)
        if not where.is_file():
            raise SourceError(f"{path}: no such file")
        digest, size = _hash_file(where)
        return cls(where, media_type or _guess(where.name), digest, size)

    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, self.size,
                          annotations={TITLE: self.path.name})


@dataclass(frozen=True)
class ArtifactResult:
    reference: str
    digest: Digest
    size: int
    artifact_type: str
    subject: Digest | None = None
    referrers_api: bool = True  # False: the referrers tag was updated instead

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "digest": str(self.digest), "size": self.size,
                "artifactType": self.artifact_type,
                "subject": str(self.subject) if self.subject else None,
                "referrersApi": self.referrers_api}


class _Files:
    """Local files as a blob source, for uploads."""

    name = "local files"

    def __init__(self, specs: list[FileSpec]) -> None:
        self._paths = {s.digest: s.path for s in specs}

    def open_blob(self, digest: Digest) -> BinaryIO:
        if digest == EMPTY.digest:
            import io
            return io.BytesIO(EMPTY_JSON)
        return open(self._paths[digest], "rb")


def build(artifact_type: str, files: list[FileSpec], *, config: FileSpec | None = None,
          subject: Descriptor | None = None,
          annotations: dict[str, str] | None = None) -> Manifest:
    """The artifact manifest (deterministic bytes: same files, same digest)."""
    layers = [f.descriptor() for f in files] or [EMPTY]
    data: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                            "artifactType": artifact_type,
                            "config": (config.descriptor() if config else EMPTY).to_json(),
                            "layers": [d.to_json() for d in layers]}
    if config is not None:
        data["config"].pop("annotations", None)
    if subject is not None:
        data["subject"] = Descriptor(subject.media_type, subject.digest, subject.size).to_json()
    if annotations:
        data["annotations"] = dict(annotations)
    return Manifest.parse(dump_json(data), mt.OCI_MANIFEST, "artifact manifest")


def attach(reference: str, artifact_type: str, files: list[str], *,
           annotations: dict[str, str] | None = None,
           connection: Connection | None = None) -> ArtifactResult:
    """Push `files` as an artifact whose subject is the image `reference`."""
    if not artifact_type:
        raise UsageError("attach needs an --artifact-type (e.g. application/spdx+json)")
    ref = Reference.parse(reference)
    specs = [FileSpec.parse(f) for f in files]
    with _store(ref, connection) as store:
        found = require(store.head_manifest(ref.reference), str(ref))
        subject = Descriptor(found.media_type, found.digest, found.size)
        manifest = build(artifact_type, specs, subject=subject, annotations=annotations)
        _upload(store, specs, None)
        stored = store.put_manifest(str(manifest.digest), manifest.raw, mt.OCI_MANIFEST)
        if stored.subject is None:
            add_to_index(store, found.digest, [descriptor_for(manifest.raw, mt.OCI_MANIFEST)])
    return ArtifactResult(str(ref.with_digest(manifest.digest)), manifest.digest,
                          len(manifest.raw), artifact_type, found.digest,
                          stored.subject is not None)


def push_artifact(reference: str, files: list[str], *, artifact_type: str | None = None,
                  config: str | None = None, annotations: dict[str, str] | None = None,
                  connection: Connection | None = None) -> ArtifactResult:
    """Push `files` as a tagged artifact (plain files, a Helm chart, a WASM module)."""
    ref = Reference.parse(reference)
    specs = [FileSpec.parse(f) for f in files]
    config_spec = FileSpec.parse(config) if config else None
    kind = artifact_type or (None if config_spec else DEFAULT_ARTIFACT_TYPE)
    manifest = build(kind or "", specs, config=config_spec, annotations=annotations)
    if not kind:  # a typed config says what it is (Helm): no artifactType needed
        manifest = _without_artifact_type(manifest)
    with _store(ref, connection) as store:
        _upload(store, specs, config_spec)
        store.put_manifest(ref.tag or str(manifest.digest), manifest.raw, mt.OCI_MANIFEST)
    return ArtifactResult(str(ref), manifest.digest, len(manifest.raw), kind or
                          (config_spec.media_type if config_spec else ""))


def pull_artifact(reference: str, directory: str, *,
                  connection: Connection | None = None) -> list[Path]:
    """Write each layer of the artifact `reference` into `directory` under its title."""
    ref = Reference.parse(reference)
    out = Path(directory)
    with _store(ref, connection) as store:
        raw, kind = store.get_manifest(ref.reference)
        if not mt.is_manifest(kind):
            raise UsageError(f"{ref} is an index, not an artifact; pick one by digest")
        manifest = Manifest.parse(raw, kind, f"manifest of {ref}")
        names = [_file_name(d) for d in manifest.layers if d.media_type != mt.OCI_EMPTY]
        if len(set(names)) != len(names):
            raise SourceError(f"{ref} has two layers with the same file name")
        out.mkdir(parents=True, exist_ok=True)
        layers = [d for d in manifest.layers if d.media_type != mt.OCI_EMPTY]
        return [_download(store, d, out / name) for d, name in zip(layers, names, strict=True)]


def _without_artifact_type(manifest: Manifest) -> Manifest:
    import json

    data = json.loads(manifest.raw)
    data.pop("artifactType", None)
    return Manifest.parse(dump_json(data), mt.OCI_MANIFEST, "artifact manifest")


@contextlib.contextmanager
def _store(ref: Reference, connection: Connection | None) -> Any:
    client = (connection or Connection()).client(ref.registry)
    try:
        yield RegistryStore(client, ref.repository, push=True)
    finally:
        client.close()


def _upload(store: RegistryStore, specs: list[FileSpec], config: FileSpec | None) -> None:
    blobs = {s.digest: s.size for s in specs}
    if config is not None:
        blobs[config.digest] = config.size
    else:
        blobs[EMPTY.digest] = EMPTY.size
    if not specs:
        blobs[EMPTY.digest] = EMPTY.size
    source = _Files([*specs, *([config] if config else [])])
    for digest, size in blobs.items():
        if not store.has_blob(digest):
            store.put_blob(digest, size, source)


def _file_name(desc: Descriptor) -> str:
    """The layer's title, checked to be a plain file name; else its digest."""
    name = desc.annotations.get(TITLE) or desc.digest.encoded
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise SourceError(f"refusing the layer file name {name!r}: not a plain file name")
    return name


def _download(store: RegistryStore, desc: Descriptor, path: Path) -> Path:
    part = path.with_name(f".{path.name}.part")
    try:
        with open(part, "wb") as f:
            for chunk in verified(store.open_blob(desc.digest), desc.digest, desc.size,
                                  store):
                f.write(chunk)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


def _hash_file(path: Path) -> tuple[Digest, int]:
    hasher = Hasher()
    with open(path, "rb") as f:
        while chunk := f.read(READ_BLOCK):
            hasher.update(chunk)
    return hasher.digest, hasher.size


def _guess(name: str) -> str:
    for suffix, kind in _SUFFIX_TYPES.items():
        if name.endswith(suffix):
            return kind
    return DEFAULT_FILE_TYPE
