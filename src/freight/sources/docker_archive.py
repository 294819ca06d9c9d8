"""`docker save` archives read through their `manifest.json` (every format docker writes).

Layers are read where they lie (following docker's symlinks to duplicate layers); their
compression is sniffed from their first bytes, since nothing in the legacy format says it.
An uncompressed layer must hash to its diff_id; that is checked while it streams.
"""

from __future__ import annotations

import posixpath
from typing import Any

from freight import jsontext
from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError
from freight.manifest import ImageConfig
from freight.sources.files import Files, clean_path, compression_of, read_small
from freight.sources.model import Blob, ImageNode, Opener, SourceImage

MANIFEST_JSON = "manifest.json"


def read_manifest_json(files: Files) -> list[dict[str, Any]]:
    """The entries of `manifest.json`, checked for shape."""
    raw = read_small(files, MANIFEST_JSON, "manifest")
    try:
        entries = jsontext.parse(raw)
    except ValueError as exc:
        raise SourceError(f"{files.label}: manifest.json is not valid JSON ({exc})") from None
    if not isinstance(entries, list) or not entries:
        raise SourceError(f"{files.label}: manifest.json must be a non-empty list of images")
    for i, entry in enumerate(entries):
        ok = isinstance(entry, dict) and isinstance(entry.get("Config"), str)
        if not ok or not isinstance(entry.get("Layers"), list):
            raise SourceError(f"{files.label}: manifest.json entry {i} has no Config or Layers")
        if not all(isinstance(p, str) for p in entry["Layers"]):
            raise SourceError(f"{files.label}: manifest.json entry {i} has a bad Layers list")
    return entries


def repo_tags(entry: dict[str, Any]) -> tuple[str, ...]:
    tags = entry.get("RepoTags") or []
    return tuple(t for t in tags if isinstance(t, str))


def read_docker_archive(files: Files) -> list[SourceImage]:
    """One SourceImage per `manifest.json` entry, in archive order."""
    return [_image(files, entry, i) for i, entry in enumerate(read_manifest_json(files))]


def _image(files: Files, entry: dict[str, Any], index: int) -> SourceImage:
    where = f"{files.label}: image {index}"
    config_path = clean_path(entry["Config"], where)
    config_raw = read_small(files, config_path, "image config")
    config = ImageConfig.parse(config_raw, f"{where} config {config_path}")
    paths = [clean_path(p, where) for p in entry["Layers"]]
    if len(paths) != len(config.diff_ids):
        raise SourceError(
            f"{where}: manifest.json lists {len(paths)} layers but the config has "
            f"{len(config.diff_ids)} diff_ids"
        )
    names = repo_tags(entry)
    label = names[0] if names else f"image {config.digest.short}"
    layers = tuple(
        _layer(files, path, diff_id, f"layer {i + 1} of {label} ({path})")
        for i, (path, diff_id) in enumerate(zip(paths, config.diff_ids, strict=True))
    )
    config_blob = Blob(mt.DOCKER_CONFIG, len(config_raw), _opener(files, config_path),
                       config.digest, what=f"config of {label}")
    node = ImageNode(config_blob, layers, platform=config.platform)
    return SourceImage(node, names, label)


def layer_file(files: Files, path: str) -> tuple[int, str]:
    """Size and compression (sniffed: the legacy format does not say) of a layer file that
    manifest.json names; SourceError if the archive lacks it."""
    size = files.size(path)
    if size is None:
        raise SourceError(
            f"{files.label}: manifest.json names {path!r}, which is not in the archive"
        )
    return size, compression_of(files, path)


def _layer(files: Files, path: str, diff_id: Digest, what: str) -> Blob:
    size, compression = layer_file(files, path)
    digest = diff_id if compression == mt.NONE else _digest_from_name(path)
    media_type = mt.layer_type(compression, docker=False)
    return Blob(media_type, size, _opener(files, path), digest, diff_id, what)


def _digest_from_name(path: str) -> Digest | None:
    """`blobs/sha256/<hex>` names its own digest (Docker 25+ and containerd archives)."""
    parent, encoded = posixpath.split(path)
    algorithm = posixpath.basename(parent)
    text = f"{algorithm}:{encoded}"
    return Digest.parse(text) if Digest.is_valid(text) else None


def _opener(files: Files, path: str) -> Opener:
    return lambda: files.open(path)
