"""skopeo's `dir:` transport (also `podman save --format docker-dir` and `oci-dir`'s cousin).

A directory with a `version` file ("Directory Transport Version: 1.1"), the image's own
manifest (or index) as `manifest.json`, each blob named by its hex digest (version 1.0
named layers `<hex>.tar`), and, for an index copied with `--all`, each instance's manifest
as `<hex>.manifest.json`. The directory records no name: push it to REGISTRY/REPO:TAG.

skopeo keeps the media types it was given, so a layer labelled gzip may be a plain tar
(skopeo's docker-archive → dir does that); layers are sniffed, never trusted, on the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError
from freight.manifest import Descriptor, Platform, load_json
from freight.sources.files import Files, read_small
from freight.sources.model import SourceImage
from freight.sources.oci_layout import LayoutReader, Missing, narrow

VERSION_FILE = "version"
VERSION_PREFIX = b"Directory Transport Version:"
MANIFEST = "manifest.json"


def is_skopeo_dir(files: Files) -> bool:
    size = files.size(VERSION_FILE)
    if size is None or size > 256 or files.size(MANIFEST) is None:
        return False
    return read_small(files, VERSION_FILE, "version file").startswith(VERSION_PREFIX)


@dataclass
class _DirReader(LayoutReader):
    root: Digest | None = None

    def blob_path(self, digest: Digest) -> str:
        if digest == self.root:
            return MANIFEST
        for name in (f"{digest.encoded}.manifest.json", digest.encoded, f"{digest.encoded}.tar"):
            if self.files.size(name) is not None:
                return name
        return digest.encoded


def read_skopeo_dir(files: Files, *, platform: Platform | None = None) -> list[SourceImage]:
    """The one image (or index) of the directory, unnamed."""
    raw = read_small(files, MANIFEST, "manifest")
    media_type = _media_type(load_json(raw, f"{files.label}/{MANIFEST}"), files.label)
    root = Descriptor(media_type, Digest.of(raw), len(raw))
    reader = _DirReader(files, root.digest)
    label = f"image {root.digest.short}"
    if mt.is_index(media_type):
        node, notes = narrow(reader, root, label, platform)
        return [SourceImage(node, (), label, (), notes + reader.take_notes())]
    try:
        node = reader.node(root, label)
        return [SourceImage(node, (), label, (), reader.take_notes())]
    except Missing as exc:
        raise SourceError(f"{files.label}: {exc} is not in the directory") from None


def _media_type(doc: dict[str, Any], label: str) -> str:
    declared = doc.get("mediaType")
    if isinstance(declared, str) and (mt.is_manifest(declared) or mt.is_index(declared)):
        return declared
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc and "layers" in doc:
        return mt.OCI_MANIFEST
    raise SourceError(f"{label}: {MANIFEST} is neither an image manifest nor an index "
                      f"(schema {doc.get('schemaVersion')!r}: only schema 2 and OCI are read)")
