"""Opening a location as a destination: the sinks each image goes to, and its names there.

A registry destination has a sink per repository and writes tags (or a digest) once the
image is complete; a local destination is one layout or archive for the whole run,
written by `commit()` at the end, and removed by `abort()` on failure, so nothing
half-done is ever visible at the path the user gave.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from freight.connect import Connection
from freight.digest import Digest
from freight.errors import UsageError
from freight.locations import STDOUT, Kind, LocalLocation, Location, RegistryLocation
from freight.manifest import Descriptor
from freight.reference import DOCKER_HUB, Reference
from freight.results import Action
from freight.sinks import Sink
from freight.sources.model import SourceImage
from freight.transport.client import RegistryClient

if TYPE_CHECKING:  # each sink loads when a destination of its kind opens (start-up)
    from freight.sinks.docker_tar import DockerTarSink
    from freight.sinks.layout import LayoutSink
    from freight.sinks.registry import RegistrySink


@dataclass(frozen=True)
class Placement:
    """One image into one sink, under these names (tags, or a digest when empty)."""

    sink: Sink
    names: tuple[Reference, ...]


class Destination:
    """What every destination offers the transfer."""

    registry: str | None = None  # the host, for a registry destination
    local = False
    location: Location

    def __str__(self) -> str:
        return str(self.location)

    def placements(self, image: SourceImage) -> list[Placement]:
        raise NotImplementedError

    def write_root(self, placement: Placement, digest: str, raw: bytes,
                   media_type: str) -> list[Reference | str]:
        """Store the root manifest and its names; return what was written."""
        raise NotImplementedError

    def ping(self) -> None:
        """Fail early (credentials, TLS) before any source is read; local: nothing to do."""

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class RegistryDestination(Destination):
    location: RegistryLocation
    client: RegistryClient
    chunk_size: int | None
    _sinks: dict[str, RegistrySink] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.registry = self.location.host

    def placements(self, image: SourceImage) -> list[Placement]:
        refs = _targets(image, self.location)
        by_repo: dict[str, list[Reference]] = {}
        for ref in refs:
            by_repo.setdefault(ref.repository, []).append(ref)
        return [Placement(self._sink(repo), tuple(names)) for repo, names in by_repo.items()]

    def _sink(self, repository: str) -> RegistrySink:
        from freight.sinks.registry import RegistrySink

        if repository not in self._sinks:
            # streaming is decided per run (Target.stream); the sink only refuses it when
            # chunks are wanted or a stream failed
            self._sinks[repository] = RegistrySink(self.client, repository,
                                                   chunk_size=self.chunk_size, stream=True)
        return self._sinks[repository]

    def write_root(self, placement: Placement, digest: str, raw: bytes,
                   media_type: str) -> list[Reference | str]:
        written: list[Reference | str] = []
        for name in placement.names:
            if name.digest is not None:  # untagged: stored under the digest it has now
                name = name.with_digest(Digest.parse(digest))
            placement.sink.put_manifest(name.reference, raw, media_type)
            written.append(name)
        return written

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()


@dataclass
class LocalDestination(Destination):
    location: LocalLocation
    sink: LayoutSink | DockerTarSink
    created: bool = False  # the path did not exist before: a failed run removes it again
    local = True

    def placements(self, image: SourceImage) -> list[Placement]:
        oci = local_kind(self.location) is not Kind.DOCKER_ARCHIVE
        names = _local_names(image, self.location.image, oci=oci)
        return [Placement(self.sink, names)]

    def write_root(self, placement: Placement, digest: str, raw: bytes,
                   media_type: str) -> list[Reference | str]:
        root = Descriptor(media_type, self.sink.put_manifest(digest, raw, media_type), len(raw))
        for name in placement.names or (None,):
            self.sink.add_root(root, name)
        return list(placement.names) or [str(self.location)]

    def commit(self) -> None:
        self.sink.finish()

    def abort(self) -> None:
        from freight.sinks.layout import LayoutSink

        self.sink.abort()
        if self.created and isinstance(self.sink, LayoutSink):
            shutil.rmtree(self.sink.root, ignore_errors=True)


def open_destination(location: Location, *, connection: Connection, chunk_size: int | None,
                     jobs: int, force: bool, stored: Action) -> Destination:
    if isinstance(location, RegistryLocation):
        if location.reference is not None and location.reference.digest is not None:
            raise UsageError("a destination takes a tag, not a digest")
        client = connection.client(location.host, jobs=jobs)
        return RegistryDestination(location, client, chunk_size)
    created = location.path != STDOUT and not os.path.lexists(location.path)
    return LocalDestination(location, _local_sink(location, force=force, stored=stored),
                            created)


def local_kind(location: LocalLocation) -> Kind:
    """What a local destination is to be: a directory is a layout, anything else a tar."""
    if location.kind is not Kind.SNIFFED:
        return location.kind
    path = Path(location.path)
    if path.is_dir() or location.path.endswith("/"):
        return Kind.OCI_LAYOUT
    return Kind.DOCKER_ARCHIVE


def _local_sink(location: LocalLocation, *, force: bool,
                stored: Action) -> LayoutSink | DockerTarSink:
    from freight.sinks.docker_tar import DockerTarSink
    from freight.sinks.layout import LayoutSink

    kind, path = local_kind(location), Path(location.path)
    if location.path == STDOUT:
        if sys.stdout.isatty():
            raise UsageError("refusing to write a tar to a terminal: redirect it (> app.tar) "
                             "or pipe it (| docker load)")
        return DockerTarSink(None, docker=kind is Kind.DOCKER_ARCHIVE, stored=stored)
    if kind is Kind.SKOPEO_DIR:
        raise UsageError("freight reads skopeo dir: directories but does not write them: "
                         f"write oci:{path} (an OCI layout) or an archive instead")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{parent} does not exist: create it first (freight never creates "
                         "parent directories)")
    if kind is Kind.OCI_LAYOUT:
        if path.is_symlink() and not path.exists():
            raise UsageError(f"{path} is a symbolic link to {os.readlink(path)}, which does "
                             "not exist: create that directory, or give another path")
        if path.exists() and not path.is_dir():
            raise UsageError(f"{path} exists and is not a directory (an OCI layout is one)")
        if path.is_dir() and any(path.iterdir()) and not (path / "oci-layout").exists() \
                and not force:
            raise UsageError(f"{path} is a directory that holds no OCI layout; give an empty "
                             "or new directory, or --force to write into it")
        return LayoutSink(path, stored=stored)
    if path.is_dir():
        raise UsageError(f"{path} is a directory: give a file name for the tar")
    if os.path.lexists(path) and not force:  # a dangling symbolic link is there too
        raise UsageError(f"{path} exists: give another name, or --force to replace it")
    return DockerTarSink(path, docker=kind is Kind.DOCKER_ARCHIVE, stored=stored)


def _local_names(image: SourceImage, wanted: str | None, *,
                 oci: bool) -> tuple[Reference, ...]:
    """The names an image gets in a layout or archive. In `oci:DIR:v1` (and oci-archive)
    a plain word is the tag, as skopeo reads it: the image's own name with that tag (its
    `ref.name` is `v1`); in `docker-archive:FILE:REF`, REF is a docker reference."""
    if wanted and oci and _is_tag(wanted):
        own = _local_names(image, None, oci=oci)
        return (own[0].with_tag(wanted),) if own else (
            Reference(DOCKER_HUB, "library/image", wanted),)
    if wanted:
        return (Reference.parse(wanted),)
    names = [Reference.parse(n) for n in image.names]
    names += [Reference(DOCKER_HUB, "library/image", t) for t in image.bare_tags
              if not names]
    return tuple(dict.fromkeys(names))


def _is_tag(word: str) -> bool:
    return "/" not in word and ":" not in word and "@" not in word


def _targets(image: SourceImage, location: RegistryLocation) -> list[Reference]:
    target = location.reference
    if target is not None:
        if target.tag:
            return [target]
        tags = [t for t in (Reference.parse(n).tag for n in image.names) if t]
        tags += list(image.bare_tags)
        if not tags and (pinned := _source_digest(image)) is not None:
            return [target.with_digest(pinned)]
        return [target.with_tag(t) for t in dict.fromkeys(tags or ["latest"])]
    if not image.names:
        raise UsageError(f"{image.label} has no name in the source: push it to "
                         "REGISTRY/REPO:TAG (with --image if the archive holds several)")
    return [_rehome(name, location.host) for name in image.names]


def _source_digest(image: SourceImage) -> Digest | None:
    """The digest a registry source was asked for by (names are empty then)."""
    label = image.label
    if "@" in label:
        return Reference.parse(label).digest
    return None


def _rehome(name: str, registry: str) -> Reference:
    """`busybox:1` on `localhost:5000` is `localhost:5000/busybox:1`, as docker tags it."""
    ref = Reference.parse(name)
    repository = ref.repository
    implicit_library = ref.registry == DOCKER_HUB and not name.startswith(("docker.io/",
                                                                            "library/"))
    if implicit_library and repository.startswith("library/"):
        repository = repository.removeprefix("library/")
    return Reference(registry, repository, ref.tag or "latest")

