"""Writing images to disk in the formats freight reads: `docker save` archives (legacy and
Docker 25+), OCI image layout directories and OCI archives.

The writers take `Prepared` images (config and layer blobs already made) and lay them out
the way the tool named in each docstring does; see protocol.md §5 for the formats.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from freight import mediatypes as mt
from freight.testing.layers import Blob, sha256

Format = Literal["docker", "docker25", "oci", "oci-archive"]
FORMATS: tuple[Format, ...] = ("docker", "docker25", "oci", "oci-archive")

IMAGE_NAME = "io.containerd.image.name"  # a full reference: docker 25 and containerd write it
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'

Member = tuple[str, bytes]  # a file of an archive or layout: name, content


@dataclass(frozen=True)
class Prepared:
    """One image ready to write: its tags, config, layer blobs (in order) and OCI manifest."""

    tags: tuple[str, ...]
    config: bytes
    layers: tuple[Blob, ...]
    manifest: bytes


def oci_manifest(config: bytes, layers: Sequence[Blob]) -> bytes:
    """The OCI image manifest listing `config` and `layers` as they are stored."""
    return _json({
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": b.media_type, "digest": b.digest, "size": b.size}
                   for b in layers],
    })


def write(path: Path, images: Sequence[Prepared], format: Format, *,
          symlink_duplicates: bool = True) -> None:
    """Write `images` to `path` (a file, or a directory for `oci`) in `format`."""
    if format == "docker":
        _write_tar(path, _legacy(images, symlink_duplicates=symlink_duplicates))
    elif format == "docker25":
        _write_tar(path, _dirs() + _layout(images, docker=True) + _docker25_extras(images))
    elif format == "oci-archive":
        _write_tar(path, _dirs() + _layout(images, docker=False))
    elif format == "oci":
        _write_directory(path, _layout(images, docker=False))
    else:
        raise ValueError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")


def docker_name(tag: str) -> str:
    """`app:1` → `docker.io/library/app:1`, as docker 25 names images in index.json."""
    first, _, rest = tag.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return tag
    return f"docker.io/{tag}" if rest else f"docker.io/library/{tag}"


# -- docker save, legacy format (docker ≤ 24): <v1 id>/layer.tar, symlinked duplicates

def _legacy(images: Sequence[Prepared], *, symlink_duplicates: bool) -> list[_Entry]:
    entries: list[_Entry] = []
    written: dict[str, str] = {}  # layer blob digest, or v1 ID → the layer.tar holding it
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for image in images:
        config_name = sha256(image.config).removeprefix("sha256:") + ".json"
        entries.append(_Entry(config_name, image.config))
        names, top = _legacy_layers(image, entries, written, symlink_duplicates)
        manifest.append({"Config": config_name, "RepoTags": list(image.tags) or None,
                         "Layers": names})
        for tag in image.tags:
            repo, _, name = tag.rpartition(":")
            repositories.setdefault(repo, {})[name] = top
    entries.append(_Entry("manifest.json", _json(manifest)))
    if repositories:
        entries.append(_Entry("repositories", _json(repositories)))
    return entries


def _legacy_layers(image: Prepared, entries: list[_Entry], written: dict[str, str],
                   symlink_duplicates: bool) -> tuple[list[str], str]:
    """Each layer in a directory named by its v1 ID, a chain over its parents like docker's:
    a layer shared at the same depth is one directory, a repeat elsewhere a symlink."""
    names, parent = [], ""
    for blob in image.layers:
        parent_id = parent or None
        v1_id = sha256(f"{parent} {blob.diff_id}".encode()).removeprefix("sha256:")
        name = f"{v1_id}/layer.tar"
        names.append(name)
        parent = v1_id
        if v1_id in written:  # the same layer over the same parents: docker writes it once
            continue
        written[v1_id] = name
        entries.append(_Entry(v1_id, None, tarfile.DIRTYPE))
        entries.append(_Entry(f"{v1_id}/VERSION", b"1.0"))
        entries.append(_Entry(f"{v1_id}/json", _json({"id": v1_id, "parent": parent_id})))
        first = written.get(blob.digest)
        if first is not None and symlink_duplicates:
            entries.append(_Entry(name, None, tarfile.SYMTYPE, f"../{first}"))
        else:
            entries.append(_Entry(name, blob.data))
            written.setdefault(blob.digest, name)
    return names, parent


# -- OCI image layout (in a directory, an OCI archive, or inside a Docker 25 archive)

def _layout(images: Sequence[Prepared], *, docker: bool) -> list[_Entry]:
    blobs: dict[str, bytes] = {}
    index: list[dict[str, Any]] = []
    for image in images:
        for data in (image.config, *(b.data for b in image.layers), image.manifest):
            blobs.setdefault(sha256(data).removeprefix("sha256:"), data)
        index.extend(_index_entries(image, docker=docker))
    entries = [_Entry(f"blobs/sha256/{name}", data) for name, data in blobs.items()]
    entries.append(_Entry("oci-layout", LAYOUT_VERSION))
    entries.append(_Entry("index.json", _json(
        {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index})))
    return entries


def _index_entries(image: Prepared, *, docker: bool) -> list[dict[str, Any]]:
    descriptor = {"mediaType": mt.OCI_MANIFEST, "digest": sha256(image.manifest),
                  "size": len(image.manifest)}
    if docker:  # moby v25: the full name, and the tag alone as ref.name
        return [{**descriptor, "annotations": {IMAGE_NAME: docker_name(tag),
                                               REF_NAME: tag.rpartition(":")[2]}}
                for tag in image.tags] or [descriptor]
    return [{**descriptor, "annotations": {REF_NAME: tag}} for tag in image.tags] or [descriptor]


def _docker25_extras(images: Sequence[Prepared]) -> list[_Entry]:
    """manifest.json pointing into blobs/, as `docker save` of Docker 25+ writes it."""
    manifest = [{
        "Config": f"blobs/sha256/{sha256(image.config).removeprefix('sha256:')}",
        "RepoTags": list(image.tags) or None,
        "Layers": [f"blobs/sha256/{b.digest.removeprefix('sha256:')}" for b in image.layers],
    } for image in images]
    return [_Entry("manifest.json", _json(manifest))]


def _dirs() -> list[_Entry]:
    return [_Entry("blobs", None, tarfile.DIRTYPE), _Entry("blobs/sha256", None, tarfile.DIRTYPE)]


# -- writing

@dataclass(frozen=True)
class _Entry:
    name: str
    data: bytes | None
    kind: bytes = tarfile.REGTYPE
    link: str = ""


def _write_tar(path: Path, entries: Iterable[_Entry]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.linkname, info.mtime = entry.kind, entry.link, 0
            info.mode = 0o755 if entry.kind == tarfile.DIRTYPE else 0o644
            info.size = len(entry.data) if entry.data is not None else 0
            tar.addfile(info, io.BytesIO(entry.data) if entry.data is not None else None)


def _write_directory(path: Path, entries: Iterable[_Entry]) -> None:
    for entry in entries:
        target = path / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(entry.data or b"")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
