"""Opening a location as a source: the images it holds, narrowed to what the user picked."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from freight import jsontext
from freight import mediatypes as mt
from freight.connect import Connection
from freight.digest import Digest
from freight.errors import NotFound, UsageError
from freight.locations import LocalLocation, Location, RegistryLocation
from freight.manifest import Platform
from freight.reference import Reference
from freight.sources.model import ImageNode, IndexNode, Node, SourceImage
from freight.sources.registry import RegistryReader
from freight.transport.client import RegistryClient

_IMAGE_ID_PREFIX = re.compile(r"[0-9a-f]{6,64}")  # an image may be named by an ID, as docker does
MAX_CONFIG_SIZE = 4 << 20  # a config is JSON of a few KiB; read at most this to check a platform


@dataclass
class OpenedSource:
    """The images to move, where they come from (for mounts), and how to let go of them."""

    images: list[SourceImage]
    origin: tuple[str, str] | None = None  # (registry, repository) of a registry source
    closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()


def open_source(location: Location, *, connection: Connection, platform: Platform | None,
                image: str | None, all_tags: bool, jobs: int,
                explicit_platform: bool = True) -> OpenedSource:
    """Open `location` and pick its images; the caller closes the result. A `platform` the
    user asked for must match single-platform images too; an implicit one only narrows."""
    checked = platform if explicit_platform else None
    if isinstance(location, RegistryLocation):
        return _registry(location, connection, platform, checked, all_tags, jobs)
    if all_tags:
        raise UsageError("--all-tags copies a whole repository of a registry, not an archive")
    return _local(location, platform, checked, image or location.image)


def _local(location: LocalLocation, platform: Platform | None, checked: Platform | None,
           wanted: str | None) -> OpenedSource:
    from freight.sources.archives import open_archive  # loaded for local sources only

    opened = open_archive(location.path, platform=platform)
    try:
        images = select(opened.images, wanted, str(location.path))
        for img in images:
            check_platform(img, checked)
    except BaseException:
        opened.close()
        raise
    return OpenedSource(images, closers=[opened.close])


def _registry(location: RegistryLocation, connection: Connection, platform: Platform | None,
              checked: Platform | None, all_tags: bool, jobs: int) -> OpenedSource:
    ref = location.reference
    if ref is None:
        raise UsageError(f"{location.host} is a registry, not an image: give REGISTRY/REPO[:TAG]")
    if all_tags and (ref.tag or ref.digest):
        raise UsageError("--all-tags copies a whole repository: give REPO, not REPO:TAG")
    client = connection.client(ref.registry, jobs=jobs)
    try:
        reader = RegistryReader(client, ref.repository)
        refs = [ref.with_tag(t) for t in reader.tags()] if all_tags else [ref]
        images = [_image(reader, client, r, platform) for r in refs]
        for img in images:
            check_platform(img, checked)
    except BaseException:
        client.close()
        raise
    return OpenedSource(images, (ref.registry, ref.repository), [client.close])


def _image(reader: RegistryReader, client: RegistryClient, ref: Reference,
           platform: Platform | None) -> SourceImage:
    try:
        root = reader.manifest(ref.reference)
    except NotFound as exc:  # the tag itself: say which tags there are
        if ref.digest is not None:
            raise
        from freight.listings import missing_tag

        raise missing_tag(client, ref, exc) from None
    return reader.image(ref, platform=platform, fetched=root)  # a missing child says which


def select(images: list[SourceImage], wanted: str | None,
           where: str = "the archive") -> list[SourceImage]:
    """The image `wanted` names (a name, a short name, a tag or an image ID), or all;
    `where` names the archive or layout in the error."""
    if wanted is None:
        return images
    chosen = [i for i in images if matches(i, wanted)]
    if not chosen:
        names = ", ".join(i.label for i in images)
        raise UsageError(f"no image {wanted!r} in {where} (it holds: {names})")
    return chosen[:1]


def matches(image: SourceImage, wanted: str) -> bool:
    """Whether `wanted` names `image`, as docker matches: `app:1` matches
    `localhost:5000/team/app:1`, an ID prefix matches the image ID."""
    hex_part = wanted.removeprefix("sha256:")
    if image.image_id is not None and _IMAGE_ID_PREFIX.fullmatch(hex_part) \
            and image.image_id.encoded.startswith(hex_part):
        return True
    if wanted in image.bare_tags:
        return True
    try:
        want = Reference.parse(wanted)
    except UsageError:
        return False
    explicit_host = want.registry != "docker.io" or wanted.startswith("docker.io/")
    short = want.repository.removeprefix("library/")
    for name in image.names:
        have = Reference.parse(name)
        if want.tag is not None and want.tag != have.tag:
            continue
        if have.name == want.name:
            return True
        if not explicit_host and (have.repository == short
                                  or have.repository.endswith(f"/{short}")):
            return True
    return False


def check_platform(image: SourceImage, wanted: Platform | None) -> None:
    """A single-platform image that is not `wanted` is a usage error, never ignored."""
    if wanted is None:
        return
    node = image.root
    if isinstance(node, IndexNode):
        return  # the source narrowed it already (or said why it could not)
    have = node.platform or _config_platform(node)
    if have is not None and not wanted.matches(have):
        raise UsageError(f"{image.label} is for {have} only, not {wanted}; drop --platform "
                         f"or pick {have}")


def _config_platform(node: ImageNode) -> Platform | None:
    if node.config.size > MAX_CONFIG_SIZE or node.config.media_type not in (
            mt.DOCKER_CONFIG, mt.OCI_CONFIG):
        return None
    with node.config.open() as f:
        raw = f.read(MAX_CONFIG_SIZE + 1)
    try:
        data = jsontext.parse(raw)
        os_, arch = data["os"], data["architecture"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(os_, str) or not isinstance(arch, str):
        return None
    variant = data.get("variant")
    return Platform(os_, arch, variant if isinstance(variant, str) else None)


def blob_digests(node: Node) -> list[Digest]:
    """Every blob digest a tree names (mount candidates for a copy within a registry)."""
    if isinstance(node, IndexNode):
        return [d for _, child in node.children for d in blob_digests(child)]
    return [b.digest for b in (node.config, *node.layers) if b.digest is not None]
