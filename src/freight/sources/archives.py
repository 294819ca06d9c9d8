"""Local sources: `open_archive` takes any local input: a `docker save` archive in any
format docker writes (optionally gzip/zstd-wrapped), an OCI archive, an OCI layout
directory, or a skopeo `dir:` directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from freight.errors import SourceError
from freight.manifest import Platform
from freight.sources.docker_archive import MANIFEST_JSON, read_docker_archive, read_manifest_json
from freight.sources.docker_archive import repo_tags as _repo_tags
from freight.sources.files import Files, open_files
from freight.sources.model import ImageNode, IndexNode, SourceImage
from freight.sources.oci_layout import is_layout, read_layout
from freight.sources.skopeo_dir import is_skopeo_dir, read_skopeo_dir


@dataclass
class LocalSource:
    """An opened archive or layout; `close()` removes any temporary files."""

    files: Files
    images: list[SourceImage]

    def close(self) -> None:
        self.files.close()

    def __enter__(self) -> LocalSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_archive(path: str | os.PathLike[str], *,
                 platform: Platform | None = None) -> LocalSource:
    """Open and index `path`; SourceError with a plain reason if it is not an image archive."""
    files = open_files(os.fspath(path))
    try:
        return LocalSource(files, _images(files, platform))
    except BaseException:
        files.close()
        raise


def _images(files: Files, platform: Platform | None) -> list[SourceImage]:
    has_manifest_json = files.size(MANIFEST_JSON) is not None
    if is_layout(files):
        images = read_layout(files, platform=platform)
        return _names_from_manifest_json(files, images) if has_manifest_json else images
    if is_skopeo_dir(files):
        return read_skopeo_dir(files, platform=platform)
    if has_manifest_json:
        return read_docker_archive(files)
    raise SourceError(
        f"{files.label}: not an image archive (no manifest.json and no OCI index.json); "
        "expected the output of `docker save`, an OCI layout, or a skopeo dir: directory"
    )


def _names_from_manifest_json(files: Files, images: list[SourceImage]) -> list[SourceImage]:
    """Give untagged layout entries the RepoTags that manifest.json records for their config."""
    tags = {entry["Config"].rsplit("/", 1)[-1]: _repo_tags(entry)
            for entry in read_manifest_json(files)}
    out = []
    for image in images:
        if not image.names:
            found = tags.get(_config_hex(image), ())
            if found:
                image = replace(image, names=found, label=found[0])
        out.append(image)
    return out


def _config_hex(image: SourceImage) -> str:
    root = image.root
    while isinstance(root, IndexNode) and len(root.children) == 1:
        root = root.children[0][1]
    if isinstance(root, ImageNode) and root.config.digest is not None:
        return root.config.digest.encoded
    return ""
