"""Inspecting an archive or layout on this machine with the registry commands' words:
`freight manifest docker-archive:app.tar`, `freight config oci:dir:v1`, `freight ls app.tar`.

Nothing is uploaded and nothing is extracted: the archive is indexed (sources/) and only
the small JSON blobs are read. An image from a `docker save` in the legacy format has no
manifest of its own; its manifest is then the one built from its blobs as the archive
holds them (`built=True`), which is what a registry would store for it with
`--compression keep`. The image ID (the config's digest) is docker's own name for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError, UsageError
from freight.inspect import (
    MAX_CONFIG_SIZE,
    ConfigInfo,
    DigestInfo,
    ManifestInfo,
    check_platform,
)
from freight.locations import LocalLocation
from freight.manifest import Descriptor, Manifest, Platform, host_platform
from freight.sources.archives import LocalSource, open_archive
from freight.sources.model import Blob, ImageNode, IndexNode, Node, SourceImage


@dataclass(frozen=True)
class ListedPlatform:
    """One single-platform image inside an archive entry."""

    platform: str | None
    manifest: Digest
    config: Digest | None
    layers: tuple[Descriptor, ...]

    @property
    def size(self) -> int:
        return sum(d.size for d in self.layers)


@dataclass(frozen=True)
class ListedImage:
    """An image of an archive: its names, image ID, digest and platforms."""

    label: str
    names: tuple[str, ...]
    tags: tuple[str, ...]  # bare tags (an OCI layout's ref.name)
    image_id: Digest | None
    digest: Digest
    media_type: str
    built: bool  # no manifest in the archive: built from its blobs
    platforms: tuple[ListedPlatform, ...]


@dataclass(frozen=True)
class Listing:
    """Every image in the archive or layout at `path`."""

    path: str
    images: tuple[ListedImage, ...]


def listing(path: str) -> Listing:
    with open_archive(path) as source:
        return Listing(path, tuple(_listed(image) for image in source.images))


def local_manifest(where: LocalLocation, *, platform: Platform | None = None) -> ManifestInfo:
    with _open(where) as source:
        image = select(source.images, where)
        return _manifest(where, image.root, platform)


def local_digest(where: LocalLocation, *, platform: Platform | None = None) -> DigestInfo:
    found = local_manifest(where, platform=platform)
    return DigestInfo(found.reference, found.digest, found.media_type, found.platform)


def local_config(where: LocalLocation, *, platform: Platform | None = None) -> ConfigInfo:
    with _open(where) as source:
        image = select(source.images, where)
        found = _manifest(where, image.root, platform or host_platform(), default=True)
        node = _image_node(image.root, found.platform)
        raw = _read_small(node.config)
        assert isinstance(found.content, Manifest)
        desc = found.content.config
        return ConfigInfo(where, found.digest, desc.digest, desc.media_type, raw, found.platform)


def select(images: list[SourceImage], where: LocalLocation) -> SourceImage:
    """The image `where.image` names (name, tag or image-ID prefix); the only one if none."""
    labels = ", ".join(i.label for i in images) or "nothing"
    if where.image is None:
        if len(images) != 1:
            raise UsageError(f"{where.path} holds {len(images)} images ({labels}); pick one: "
                             f"{where.path}:NAME (e.g. docker-archive:{where.path}:"
                             f"{images[0].label if images else 'app:1'})")
        return images[0]
    from freight.engine.sources import matches  # the one way an image is named

    chosen = [i for i in images if matches(i, where.image)]
    if not chosen:
        raise UsageError(f"no image {where.image!r} in {where.path} (it holds: {labels})")
    return chosen[0]


def _open(where: LocalLocation) -> LocalSource:
    return open_archive(where.path)


def _manifest(where: LocalLocation, root: Node, platform: Platform | None, *,
              default: bool = False) -> ManifestInfo:
    """The manifest of `root`; with `platform`, an index's child for it (UsageError listing
    the platforms there are when none matches, unless `default` lets one image stand)."""
    if isinstance(root, IndexNode):
        if platform is None:
            return ManifestInfo(where, root.index.digest, root.index.media_type,
                                root.index.raw, root.index)
        for desc, child in root.children:
            if desc.platform is not None and platform.matches(desc.platform):
                found = _manifest(where, child, None)
                return ManifestInfo(where, found.digest, found.media_type, found.raw,
                                    found.content, desc.platform, root.index.digest)
        have = [str(d.platform) for d, _ in root.children if d.platform]
        raise UsageError(f"{where} has no image for {platform} (it has: "
                         f"{', '.join(have) or 'no platforms'}); choose one with --platform")
    manifest = root.manifest or _built(root)
    if platform is not None and not default:
        check_platform(str(where), platform, root.platform)
    return ManifestInfo(where, manifest.digest, manifest.media_type, manifest.raw, manifest,
                        root.platform, built=root.manifest is None)


def _built(node: ImageNode) -> Manifest:
    """The manifest a registry would store for `node`'s blobs as they are."""
    docker = node.config.media_type == mt.DOCKER_CONFIG
    kind = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
    return Manifest.build(kind, _descriptor(node.config), [_descriptor(b) for b in node.layers])


def _descriptor(blob: Blob) -> Descriptor:
    if blob.digest is None:
        raise SourceError(f"{blob.what}: the archive does not say its digest")
    return Descriptor(blob.media_type, blob.digest, blob.size)


def _image_node(root: Node, platform: Platform | None) -> ImageNode:
    if isinstance(root, ImageNode):
        return root
    for desc, child in root.children:
        if platform is None or (desc.platform is not None and platform.matches(desc.platform)):
            return _image_node(child, None)
    raise UsageError(f"no image for {platform} in the index")


def _read_small(blob: Blob) -> bytes:
    if blob.size > MAX_CONFIG_SIZE:
        raise SourceError(f"{blob.what} is {blob.size} bytes: not an image config")
    with blob.open() as stream:
        data = stream.read(MAX_CONFIG_SIZE + 1)
    if blob.digest is not None and Digest.of(data) != blob.digest:
        raise SourceError(f"{blob.what}: the content does not match its digest")
    return data


def _listed(image: SourceImage) -> ListedImage:
    root = image.root
    if isinstance(root, IndexNode):
        digest, kind, built = root.index.digest, root.index.media_type, False
        platforms = tuple(_platform_row(child, desc.platform) for desc, child in root.children)
    else:
        manifest = root.manifest or _built(root)
        digest, kind, built = manifest.digest, manifest.media_type, root.manifest is None
        platforms = (_platform_row(root, root.platform),)
    return ListedImage(image.label, image.names, image.bare_tags, image.image_id, digest,
                       kind, built, platforms)


def _platform_row(node: Node, platform: Platform | None) -> ListedPlatform:
    if isinstance(node, IndexNode):  # nested index: list its first image
        desc, child = node.children[0]
        return _platform_row(child, desc.platform)
    manifest = node.manifest or _built(node)
    return ListedPlatform(str(platform) if platform else None, manifest.digest,
                          node.config.digest, manifest.layers)


__all__ = ["ListedImage", "ListedPlatform", "Listing", "listing", "local_config",
           "local_digest", "local_manifest", "select"]
