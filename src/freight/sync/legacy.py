"""A legacy `docker save` archive (dockerd 20.10: `<id>/layer.tar`, `<id>.json`,
`manifest.json`, no `index.json`) seen as an OCI layout, so that sync reads it like any
other layout (freight.sync.bundle.BundleReader).

Sync copies bytes unchanged, so the layout it sees is the archive's own bytes: the config
as saved, each layer as saved (uncompressed in this format: its digest is its diff_id,
which the config lists; a compressed one is hashed once), and per image one OCI manifest
built deterministically from those, the same on every run. So a re-sync of the same
archive finds every digest unchanged. Layers travel uncompressed, as docker saved them;
`freight push` is the command that compresses.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO

from freight import mediatypes as mt
from freight.digest import Digest, Hasher
from freight.errors import FreightError
from freight.manifest import Descriptor, ImageConfig, Index, Manifest
from freight.reference import familiar_to_reference
from freight.sources.docker_archive import layer_file, read_manifest_json, repo_tags
from freight.sources.files import Files, clean_path, read_small

LAYOUT = b'{"imageLayoutVersion": "1.0.0"}'
IMAGE_NAME = "io.containerd.image.name"
REF_NAME = "org.opencontainers.image.ref.name"
READ_BLOCK = 1 << 20


def blob_path(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.encoded}"


@dataclass(frozen=True)
class _Member:
    path: str  # where the bytes are in the archive
    size: int


class LegacyLayout:
    """`Files` that present a legacy docker archive as an OCI layout (see the module)."""

    def __init__(self, files: Files) -> None:
        self.files, self.label = files, files.label
        self._memory: dict[str, bytes] = {"oci-layout": LAYOUT}
        self._members: dict[str, _Member] = {}
        entries: list[Descriptor] = []
        for i, entry in enumerate(read_manifest_json(files)):
            manifest = self._image(entry, f"{files.label}: image {i}")
            for name in repo_tags(entry):
                try:
                    ref = familiar_to_reference(name)
                except FreightError:
                    continue  # docker writes what it accepted; anything else is not a name
                notes = {IMAGE_NAME: str(ref), REF_NAME: ref.tag or "latest"}
                entries.append(manifest.descriptor(annotations=notes))
        self._memory["index.json"] = Index.build(mt.OCI_INDEX, entries).raw

    def _image(self, entry: dict[str, object], where: str) -> Manifest:
        config_path = clean_path(str(entry["Config"]), where)
        config_raw = read_small(self.files, config_path, "image config")
        config = ImageConfig.parse(config_raw, f"{where} config {config_path}")
        config_desc = Descriptor(mt.OCI_CONFIG, config.digest, len(config_raw))
        self._members[blob_path(config.digest)] = _Member(config_path, len(config_raw))
        paths = entry["Layers"]
        assert isinstance(paths, list)
        layers = [self._layer(clean_path(p, where), diff_id)
                  for p, diff_id in zip(paths, config.diff_ids, strict=False)]
        manifest = Manifest.build(mt.OCI_MANIFEST, config_desc, layers)
        self._memory[blob_path(manifest.digest)] = manifest.raw
        return manifest

    def _layer(self, path: str, diff_id: Digest) -> Descriptor:
        size, compression = layer_file(self.files, path)
        digest = diff_id if compression == mt.NONE else self._hash(path)
        self._members[blob_path(digest)] = _Member(path, size)
        return Descriptor(mt.layer_type(compression, docker=False), digest, size)

    def _hash(self, path: str) -> Digest:
        hasher = Hasher("sha256")
        with self.files.open(path) as f:
            while block := f.read(READ_BLOCK):
                hasher.update(block)
        return hasher.digest

    def size(self, path: str) -> int | None:
        if path in self._memory:
            return len(self._memory[path])
        member = self._members.get(path)
        return member.size if member is not None else None

    def open(self, path: str) -> BinaryIO:
        if path in self._memory:
            return io.BytesIO(self._memory[path])
        member = self._members.get(path)
        if member is None:
            raise FileNotFoundError(path)
        return self.files.open(member.path)

    def close(self) -> None:
        self.files.close()


def layout_files(path: str) -> Files:
    """The files of `path`; a legacy docker archive is presented as an OCI layout."""
    from freight.sources.files import open_files
    from freight.sources.oci_layout import is_layout

    files = open_files(path)
    try:
        if is_layout(files) or files.size("manifest.json") is None:
            return files
        return LegacyLayout(files)
    except BaseException:
        files.close()
        raise
