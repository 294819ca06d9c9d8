"""What a registry (or the far side of an air gap) holds: per repository, its tags, its
manifests and its blobs. `freight inventory REGISTRY` writes one; `freight sync --to
BUNDLE --since INVENTORY` leaves out what it lists; every bundle carries the inventory
the far side will have once the bundle is restored, so the next bundle can be `--since`
the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight import jsontext
from freight import mediatypes as mt
from freight.connect import Connection
from freight.digest import Digest
from freight.distribution import urls
from freight.engine.workers import all_of
from freight.errors import SourceError
from freight.manifest import Index, Manifest
from freight.referrers import Finder
from freight.remote import as_registry
from freight.sources.listing import list_all
from freight.sources.registry import RegistryReader
from freight.sync.store import RegistryStore
from freight.transport.client import RegistryClient

FORMAT = "freight-inventory/1"
CATALOG_PAGE = 1000


@dataclass(frozen=True)
class Holdings:
    """One repository: tag -> digest, and every manifest and blob digest it has."""

    tags: dict[str, Digest] = field(default_factory=dict)
    manifests: frozenset[Digest] = frozenset()
    blobs: frozenset[Digest] = frozenset()

    def to_json(self) -> dict[str, Any]:
        return {"tags": {t: str(d) for t, d in sorted(self.tags.items())},
                "manifests": sorted(map(str, self.manifests)),
                "blobs": sorted(map(str, self.blobs))}

    def merged(self, other: Holdings) -> Holdings:
        return Holdings({**self.tags, **other.tags}, self.manifests | other.manifests,
                        self.blobs | other.blobs)


@dataclass(frozen=True)
class Inventory:
    repositories: dict[str, Holdings] = field(default_factory=dict)

    def of(self, repository: str) -> Holdings:
        return self.repositories.get(repository, Holdings())

    def merged(self, other: Inventory) -> Inventory:
        names = set(self.repositories) | set(other.repositories)
        return Inventory({n: self.of(n).merged(other.of(n)) for n in sorted(names)})

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT,
                "repositories": {n: h.to_json() for n, h in sorted(self.repositories.items())}}

    @classmethod
    def from_json(cls, data: Any, where: str) -> Inventory:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SourceError(f"{where}: not a freight inventory (no format {FORMAT!r})")
        try:
            return cls({name: Holdings(
                {t: Digest.parse(d) for t, d in h["tags"].items()},
                frozenset(map(Digest.parse, h["manifests"])),
                frozenset(map(Digest.parse, h["blobs"])))
                for name, h in data["repositories"].items()})
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SourceError(f"{where}: malformed inventory ({exc})") from None
        except Exception as exc:  # a bad digest
            raise SourceError(f"{where}: {exc}") from None


def load_since(path: str) -> Inventory:
    """The inventory in a file: an inventory JSON, or the one inside a previous bundle."""
    if not Path(path).is_file():
        raise SourceError(f"{path}: no such file (give a previous bundle or an inventory)")
    with open(path, "rb") as f:
        head = f.read(1)
    if head == b"{":
        try:
            data = jsontext.parse(Path(path).read_text())
        except ValueError as exc:
            raise SourceError(f"{path}: not valid JSON ({exc})") from None
        return Inventory.from_json(data, path)
    from freight.sync.bundle import bundle_inventory

    return bundle_inventory(path)


def take_inventory(registry: str, *, jobs: int = 4,
                   connection: Connection | None = None) -> Inventory:
    """Read what `registry` holds: every repository of its catalog, every tag, and every
    manifest, blob and referrer reachable from them."""
    registry = as_registry(registry)  # a repository here would be listed as a web page
    client = (connection or Connection()).client(registry, jobs=jobs)
    try:
        names, _ = list_all(client, urls.catalog_path(), "repositories", limit=None,
                            page_size=CATALOG_PAGE, what=f"listing the catalog of {registry}")
        held = all_of([lambda n=name: _repository(client, n) for name in names],  # type: ignore[misc]
                      at_once=jobs, name="freight-inventory")
        return Inventory(dict(zip(names, held, strict=True)))
    finally:
        client.close()


def _repository(client: RegistryClient, name: str) -> Holdings:
    store, finder = RegistryStore(client, name), Finder(client, name)
    tags: dict[str, Digest] = {}
    for tag in RegistryReader(client, name).tags():
        found = store.head_manifest(tag)
        if found is not None:
            tags[tag] = found.digest
    manifests: set[Digest] = set()
    blobs: set[Digest] = set()
    for digest in set(tags.values()):
        _walk(store, finder, digest, manifests, blobs)
    return Holdings(tags, frozenset(manifests), frozenset(blobs))


def _walk(store: RegistryStore, finder: Finder, digest: Digest, manifests: set[Digest],
          blobs: set[Digest]) -> None:
    if digest in manifests:
        return
    manifests.add(digest)
    raw, kind = store.get_manifest(str(digest))
    if mt.is_index(kind):
        for child in Index.parse(raw, kind).manifests:
            _walk(store, finder, child.digest, manifests, blobs)
    elif mt.is_manifest(kind):
        image = Manifest.parse(raw, kind)
        blobs.update(d.digest for d in (image.config, *image.layers) if "urls" not in d.extra)
    for referrer in finder.find(digest).walk():
        _walk(store, finder, referrer.descriptor.digest, manifests, blobs)
