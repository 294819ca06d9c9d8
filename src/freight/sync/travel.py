"""Referrers travelling with `freight.transfer`: what pull, push and copy carry.

Once the images are moved, and before the destination is committed, each image's
referrers (signatures, SBOMs, attestations, recursively) are found where it came from and
written where it went, byte for byte:

* from a registry: the referrers API, else the tag schema, and cosign's tags (`Finder`);
  from an OCI layout, OCI archive or bundle: the entries whose manifest has the image as
  `subject`, cosign's tags and a kept referrers tag (`sync.local.Referrers`, which reads
  bundles too);
* to a registry, in the form it supports (`sync.carry`); to an OCI layout or OCI archive,
  as `index.json` entries (`sync.layout_store`), which `sync.local` reads back when the layout
  is pushed again. A docker archive cannot hold them (docker load knows no referrers):
  a note says so and the pull goes on.

Referrers name their subject by digest: an image whose digest changed on the way (layers
recompressed by a push) cannot take them along; a note says so.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from freight.connect import Connection
from freight.digest import Digest
from freight.engine.destinations import Destination, LocalDestination, RegistryDestination
from freight.engine.run import MovedImage
from freight.engine.workers import all_of
from freight.errors import FreightError, SourceError
from freight.locations import Kind, LocalLocation, Location, RegistryLocation
from freight.progress import Progress, Silent
from freight.reference import Reference
from freight.referrers import PLATFORM_LOOKUPS, Finder, Listing
from freight.results import ImageResult
from freight.sources.model import IndexNode, Node, SourceImage
from freight.sync.carry import carry
from freight.sync.store import RegistryStore, Source, Store
from freight.transport.client import RegistryClient

if TYPE_CHECKING:
    from freight.sync.layout_store import LayoutStore

# manifests (images, and each platform of an index) of one source above which its tag
# list is read once, instead of a HEAD of each possible signature tag per manifest (4 per
# manifest on a registry without the referrers API): one image from a repository of
# thousands of tags should not page through them
TAG_HEADS = 4


def subjects(node: Node) -> list[Digest]:
    """The manifests whose referrers go with an image: its own, and for an index each
    platform's (`cosign sign --recursive` signs every one), depth first."""
    if isinstance(node, IndexNode):
        found = [node.index.digest]
        for _, child in node.children:
            found += subjects(child)
        return found
    return [node.manifest.digest] if node.manifest is not None else []


@dataclass
class _Side:
    """Where an image came from, opened for its referrers."""

    listing: Callable[[SourceImage, Digest], Listing]
    store: Callable[[SourceImage], Source]
    close: Callable[[], None]


@dataclass
class CarryReferrers:
    """An `after` hook for `freight.transfer` (see the module docstring)."""

    connection: Connection = field(default_factory=Connection)
    progress: Progress = field(default_factory=Silent)

    def __call__(self, destination: Destination, moved: list[MovedImage]) -> None:
        sides: dict[str, _Side | None] = {}
        layouts: dict[str, LayoutStore] = {}
        done: set[tuple[str, Digest]] = set()  # (target, subject): two tags, one carry
        counts = Counter[str]()  # subjects to look up per source
        for item in moved:
            counts[str(item.source)] += len(subjects(item.image.root))
        try:
            for item in moved:
                key = str(item.source)
                if key not in sides:
                    sides[key] = self._open(item.source, list_tags=counts[key] > TAG_HEADS)
                side = sides[key]
                if side is not None:
                    self._one(side, destination, item, layouts, done)
            for layout in layouts.values():
                layout.flush()
        finally:
            for opened in sides.values():
                if opened is not None:
                    opened.close()

    def _one(self, side: _Side, destination: Destination, item: MovedImage,
             layouts: dict[str, LayoutStore], done: set[tuple[str, Digest]]) -> None:
        root = item.image.root_digest
        if root is None:
            return
        found = all_of([partial(side.listing, item.image, subject)
                        for subject in subjects(item.image.root)], at_once=PLATFORM_LOOKUPS)
        listings = [listing for listing in found if listing.referrers]
        if not listings:
            return
        count = sum(1 for listing in listings for _ in listing.walk())
        if isinstance(destination, LocalDestination) and destination.sink.images_only:
            self.progress.note(f"{item.image.label}: {count} referrer(s) (signatures, SBOMs, "
                               "attestations) not stored: a docker archive cannot hold them; "
                               "write oci-archive:FILE or oci:DIR to keep them")
            return
        for result in item.results:
            target = _target(destination, result, item.image, layouts)
            if target is None:
                continue
            kept = listings if result.digest == root else _still_there(listings, target)
            left = count - sum(1 for listing in kept for _ in listing.walk())
            if left:
                self.progress.note(
                    f"{item.image.label}: {left} of its {count} referrer(s) name manifests "
                    f"that were not written as they were (it became {result.digest.short}: "
                    "layers changed on the way), so they were left behind; use "
                    "--compression keep to keep the digests")
            for listing in kept:
                if (target.name, listing.subject) not in done:
                    done.add((target.name, listing.subject))
                    carry(listing, side.store(item.image), target)

    def _open(self, location: Location, *, list_tags: bool) -> _Side | None:
        if isinstance(location, RegistryLocation):
            return self._registry(location, list_tags) if location.reference is not None \
                else None
        return _layout(location)

    def _registry(self, location: RegistryLocation, list_tags: bool) -> _Side:
        ref = location.reference
        assert ref is not None
        client = self.connection.client(ref.registry)
        try:
            known = _tags(client, ref.repository) if list_tags else None
            finder = Finder(client, ref.repository, known_tags=known)
        except BaseException:
            client.close()
            raise
        store = RegistryStore(client, ref.repository)
        return _Side(lambda _image, digest: finder.find(digest), lambda _image: store,
                     client.close)


def _tags(client: RegistryClient, repository: str) -> frozenset[str] | None:
    """The repository's tags, listed once: cosign and referrers tags not among them are
    not asked for one by one. None (ask each) when the registry will not list them."""
    from freight.sources.registry import RegistryReader

    try:
        return frozenset(RegistryReader(client, repository).tags())
    except FreightError:
        return None


def _layout(location: LocalLocation) -> _Side | None:
    """A local source that is an OCI layout (a directory, an OCI archive, a bundle, a
    docker 25+ save); None for anything else (a legacy docker archive holds no referrers)."""
    from freight.sources.files import STDIN
    from freight.sync.bundle import BundleReader
    from freight.sync.local import LocalStore, Referrers

    if location.path == STDIN or location.kind is Kind.DOCKER_ARCHIVE \
            or _compressed(location.path):
        return None  # read once already (a pipe), or would be unpacked again for nothing
    try:
        reader = BundleReader(location.path)
    except SourceError:
        return None
    referrers = Referrers(reader)

    def repository(image: SourceImage) -> str:
        """The repository the layout files the image under ("" when it names none): its
        index.json entry's (a bundle's own annotation, else the full name's)."""
        digest = image.root_digest
        for entry in reader.entries:
            if entry.digest == digest and reader.tag(entry):
                return reader.repository(entry) or ""
        return ""

    return _Side(lambda image, digest: referrers.listing(repository(image), digest),
                 lambda image: LocalStore(reader, repository(image)), reader.close)


def _compressed(path: str) -> bool:
    """A gzip/zstd-wrapped tar: reading it again means unpacking it again; those are
    docker saves (`docker save | gzip`), which hold no referrers."""
    from freight.mediatypes import NONE, sniff_compression

    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return sniff_compression(f.read(4)) != NONE


def _still_there(listings: list[Listing], target: Store) -> list[Listing]:
    """The listings whose subject the destination holds as it was: an index rebuilt on the
    way (one platform's layers compressed) keeps its other platforms' manifests, and with
    them their signatures."""
    held = all_of([partial(target.head_manifest, str(listing.subject)) for listing in listings],
                  at_once=PLATFORM_LOOKUPS)
    return [listing for listing, found in zip(listings, held, strict=True) if found is not None]


def _target(destination: Destination, result: ImageResult, image: SourceImage,
            layouts: dict[str, LayoutStore]) -> Store | None:
    if isinstance(destination, RegistryDestination):
        if not isinstance(result.reference, Reference):
            return None
        return RegistryStore(destination.client, result.reference.repository, push=True)
    if isinstance(destination, LocalDestination):
        from freight.sync.layout_store import LayoutStore  # only for a local destination

        name = result.reference if isinstance(result.reference, Reference) else None
        name = name or _first_name(image)
        key = name.name if name is not None else ""
        if key not in layouts:
            layouts[key] = LayoutStore(destination.sink, name)
        return layouts[key]
    return None


def _first_name(image: SourceImage) -> Reference | None:
    for name in image.names:
        try:
            return Reference.parse(name)
        except FreightError:
            continue
    return None
