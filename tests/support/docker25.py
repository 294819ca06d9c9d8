"""A Docker 25+ ``docker save`` archive (graphdriver image store), rewritten from a legacy one.

No Docker 25 engine is installable here (Debian bookworm ships 20.10), so this lays out the
same files moby v25's ``image/tarexport/save.go`` writes (protocol.md §5.2): an OCI layout
whose manifest lists uncompressed layers by DiffID, the image config labelled as an OCI
config, the legacy per-layer v1 JSON kept as unreferenced blobs, plus ``manifest.json``
pointing into ``blobs/sha256`` and ``repositories``. ``shuffle_layers`` reproduces the
v25.0.0 bug (OCI manifest layers in random order; ``manifest.json`` still in order).
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
from pathlib import Path
from typing import Any

from .badarchives import Member, read_members, write_members

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file(name: str, data: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.mode, info.size = 0o644, len(data)
    return info, data


def _directory(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def _resolved(members: list[Member]) -> dict[str, bytes]:
    """File contents by name, following the legacy format's relative layer symlinks."""
    files = {info.name: data for info, data in members if data is not None}
    for info, _ in members:
        if info.issym():
            target = posixpath.normpath(posixpath.join(posixpath.dirname(info.name), info.linkname))
            files[info.name] = files[target]
    return files


def convert(legacy: Path, out: Path, *, shuffle_layers: bool = False) -> Path:
    """Write the Docker 25 form of a single- or multi-image legacy archive to ``out``."""
    members = read_members(legacy)
    files = _resolved(members)
    entries: list[dict[str, Any]] = json.loads(files["manifest.json"])
    blobs: dict[str, bytes] = {}
    index: list[dict[str, Any]] = []
    new_entries = []
    for entry in entries:
        config = files[entry["Config"]]
        layers = [files[name] for name in entry["Layers"]]
        for data in [config, *layers]:
            blobs[_hex(data)] = data
        for name in entry["Layers"]:  # the v1 JSON: kept, unreferenced, like save.go
            v1 = files[posixpath.join(posixpath.dirname(name), "json")]
            blobs[_hex(v1)] = v1
        descriptors = [{"mediaType": OCI_LAYER, "digest": f"sha256:{_hex(d)}", "size": len(d)}
                       for d in layers]  # fmt: skip
        if shuffle_layers:
            descriptors.reverse()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": f"sha256:{_hex(config)}",
                       "size": len(config)},
            "layers": descriptors,
        }).encode()  # fmt: skip
        blobs[_hex(manifest)] = manifest
        index.extend(_index_entries(manifest, entry.get("RepoTags") or []))
        new_entries.append({
            "Config": f"blobs/sha256/{_hex(config)}",
            "RepoTags": entry.get("RepoTags"),
            "Layers": [f"blobs/sha256/{_hex(d)}" for d in layers],
        })  # fmt: skip
    return write_members(_layout(blobs, index, new_entries, files.get("repositories")), out)


def _index_entries(manifest: bytes, repo_tags: list[str]) -> list[dict[str, Any]]:
    descriptor = {"mediaType": OCI_MANIFEST, "digest": f"sha256:{_hex(manifest)}",
                  "size": len(manifest)}  # fmt: skip
    if not repo_tags:  # untagged: one descriptor without annotations (fixed in v25.0.3)
        return [descriptor]
    return [
        {**descriptor, "annotations": {
            "io.containerd.image.name": f"docker.io/{tag}",
            "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[1],
        }}
        for tag in repo_tags
    ]  # fmt: skip


def _layout(
    blobs: dict[str, bytes],
    index: list[dict[str, Any]],
    entries: list[dict[str, Any]],
    repositories: bytes | None,
) -> list[Member]:
    members = [_directory("blobs"), _directory("blobs/sha256")]
    members += [_file(f"blobs/sha256/{name}", data) for name, data in sorted(blobs.items())]
    index_json = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index}
    members += [
        _file("index.json", json.dumps(index_json).encode()),
        _file("manifest.json", json.dumps(entries).encode()),
        _file("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
    ]
    if repositories is not None:
        members.append(_file("repositories", repositories))
    return members
