"""`freight.transfer`: any sources to any destination, the one function push, pull and copy
name. It opens the locations, plans and runs the engine, writes names last and cleans up:
on any failure or interrupt nothing is tagged, no partial output appears, and every
temporary file it made is gone."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from freight import mediatypes as mt
from freight.cache import Cache, default_cache_dir
from freight.connect import Connection
from freight.convert import AUTO, KEEP, SETTINGS
from freight.engine.core import Engine, Target
from freight.engine.destinations import (
    Destination,
    Placement,
    local_kind,
    open_destination,
)
from freight.engine.sources import OpenedSource, blob_digests, open_source
from freight.engine.workers import CancelToken
from freight.errors import UsageError
from freight.locations import (
    STDOUT,
    Kind,
    LocalLocation,
    Location,
    RegistryLocation,
    parse_location,
)
from freight.manifest import Platform, host_platform
from freight.progress import Progress, Silent, Summary
from freight.reference import Reference, is_loopback
from freight.results import Action, BlobResult, ImageResult
from freight.sources.model import SourceImage

DEFAULT_JOBS = 4  # like crane; more does not help on 2 cores, fewer leaves the link idle


@dataclass(frozen=True)
class MovedImage:
    """One image a transfer moved: the location it came from, the source's image, and the
    names written for it (what an `after` hook needs to carry the image's referrers)."""

    source: Location
    image: SourceImage
    results: tuple[ImageResult, ...]


# called with the destination and every image moved, after the last image and before the
# destination is committed (a local layout or archive is still open for more content)
AfterHook = Callable[[Destination, list[MovedImage]], None]


@dataclass(frozen=True)
class TransferOptions:
    """How to move images; every field has the default a user would expect."""

    compression: str | None = None  # None: default_compression
    jobs: int = DEFAULT_JOBS
    chunk_size: int | None = None  # chunked uploads of this size (None: whole blobs)
    stream: bool | None = None  # upload layers while converting (None: streams_by_default)
    platform: str | None = None  # one platform of a multi-platform image
    all_platforms: bool = False  # never narrow an index (the default narrows for docker tars)
    host_platform: bool | None = None  # narrow indexes to this machine's (None: for docker tars)
    image: str | None = None  # one image of a multi-image source
    all_tags: bool = False  # every tag of a registry repository
    force: bool = False  # replace an existing output file
    dry_run: bool = False  # only say what would be sent, skipped (nothing mounted or written)
    manifest_format: str | None = None  # "oci": OCI manifests for Docker ones (skopeo's --format)


def streams_by_default(registry: str, cache: Cache) -> bool:
    """Whether to upload layers while compressing them when the caller did not say.

    Streaming hides the upload of a new layer behind its compression, but a layer's digest
    is known only once it is compressed: a layer the registry already holds is sent (in
    part) for nothing before that is known. So freight streams only where it pays: not to
    a registry on this machine (no network to hide; it shares the CPU), and only once this
    cache has pushed to the registry (a layer the cache does not know is then most likely
    new). bench/README.md ("Streaming") has the measurements behind both rules.
    """
    return not is_loopback(registry) and cache.has_pushed_to(registry)


def transfer(sources: Sequence[str | Location] | str | Location, destination: str | Location,
             *, options: TransferOptions = TransferOptions(),
             connection: Connection | None = None,
             source_connection: Connection | None = None,
             progress: Progress | None = None, verb: str = "copy",
             cancel: CancelToken | None = None,
             after: AfterHook | None = None) -> list[ImageResult]:
    """Move the images of `sources` to `destination` (see freight.locations for the
    syntax); return one result per name written. Raises a FreightError on failure.
    `after` runs once every image is moved, before the destination is committed (not on
    a dry run); a failure there leaves nothing half-done, as any other does."""
    srcs = [_location(s, local=None) for s in
            ([sources] if isinstance(sources, str | LocalLocation | RegistryLocation)
             else sources)]
    dst = _location(destination, local=None)
    _check(options, srcs, dst)
    connection = connection or Connection()
    progress = progress or Silent()
    platform, explicit = _platform(options, dst)
    local_sources = all(isinstance(s, LocalLocation) for s in srcs)
    # the destination first: a wrong output path fails before anything is read or fetched
    opened_dst = open_destination(
        dst, connection=connection, chunk_size=options.chunk_size, jobs=options.jobs,
        force=options.force, stored=Action.WRITTEN if local_sources else Action.DOWNLOADED)
    spool = tempfile.mkdtemp(prefix="freight-spool-")
    opened: list[OpenedSource] = []
    try:
        for src in srcs:
            opened.append(open_source(src, connection=source_connection or connection,
                                      platform=platform, image=options.image,
                                      all_tags=options.all_tags, jobs=options.jobs,
                                      explicit_platform=explicit))
        moved: list[MovedImage] = []
        results = _run(opened_dst, list(zip(srcs, opened, strict=True)), options, progress,
                       spool, verb, cancel, moved)
        if after is not None and not options.dry_run:
            after(opened_dst, moved)
        if options.dry_run:
            opened_dst.abort()
        else:
            opened_dst.commit()
        return results
    except BaseException:
        opened_dst.abort()
        raise
    finally:
        opened_dst.close()
        for source in opened:
            source.close()
        shutil.rmtree(spool, ignore_errors=True)


def _location(value: str | Location, *, local: bool | None) -> Location:
    return value if isinstance(value, LocalLocation | RegistryLocation) else parse_location(
        value, local=local)


def _check(options: TransferOptions, srcs: list[Location], dst: Location) -> None:
    if options.compression is not None and options.compression not in SETTINGS:
        raise UsageError(f"unknown compression {options.compression!r}: use one of "
                         f"{', '.join(SETTINGS)}")
    if options.manifest_format not in (None, *mt.MANIFEST_FORMATS):
        raise UsageError(f"unknown manifest format {options.manifest_format!r}: use "
                         f"{' or '.join(mt.MANIFEST_FORMATS)}")
    if options.jobs < 1:
        raise UsageError("jobs must be at least 1")
    if options.chunk_size is not None and options.chunk_size < 1:
        raise UsageError("chunk size must be a positive number of bytes")
    if options.all_platforms and options.platform:
        raise UsageError("--platform and --all-platforms exclude each other")
    if not srcs:
        raise UsageError("nothing to move: give at least one source")
    if isinstance(dst, LocalLocation) and dst.path == STDOUT and \
            local_kind(dst) not in (Kind.DOCKER_ARCHIVE, Kind.OCI_ARCHIVE):
        raise UsageError("an OCI layout is a directory, which standard output cannot be: "
                         "write a tar there (docker-archive:- or oci-archive:-)")


def _platform(options: TransferOptions, dst: Location) -> tuple[Platform | None, bool]:
    """The platform to narrow indexes to, and whether the user asked for it."""
    if options.platform:
        return Platform.parse(options.platform), True
    docker_tar = isinstance(dst, LocalLocation) and local_kind(dst) is Kind.DOCKER_ARCHIVE
    if docker_tar and options.all_platforms:
        raise UsageError("docker load takes one platform: write an OCI layout (oci:DIR) or "
                         "OCI archive (oci-archive:FILE) with --all-platforms")
    narrow = options.host_platform
    if narrow is None:
        narrow = docker_tar and not options.all_platforms  # docker load takes one platform
    return (host_platform(), False) if narrow and not options.all_platforms else (None, False)


def _run(destination: Destination, located: list[tuple[Location, OpenedSource]],
         options: TransferOptions, progress: Progress, spool: str, verb: str,
         cancel: CancelToken | None, moved: list[MovedImage]) -> list[ImageResult]:
    started = time.monotonic()
    opened = [source for _, source in located]
    origin = {id(img): where for where, source in located for img in source.images}
    images = [img for source in opened for img in source.images]
    _check_names(destination, images)
    for img in images:
        for note in img.notes:
            progress.note(note)
    cache = Cache(default_cache_dir())
    setting = options.compression or default_compression(destination, opened)
    stream = _stream(destination, options, cache)
    placements = [(img, p) for img in images for p in destination.placements(img)]
    targets = [Target(img.root, p.sink, stream=stream) for img, p in placements]
    destination.ping()
    results: list[ImageResult] = []
    docker_in_layout: list[str] = []
    oci = options.manifest_format == mt.OCI_FORMAT
    with Engine(targets, setting=setting, jobs=options.jobs, cache=cache, progress=progress,
                spool_dir=spool, verb=verb, cancel=cancel, dry_run=options.dry_run,
                oci=oci) as engine:
        _mount_hints(engine, destination, opened)
        for (img, placement), target in zip(placements, targets, strict=True):
            if options.dry_run:
                preview = engine.preview(target)
                d = preview.descriptor
                results.extend(ImageResult(name, d.digest, d.size, d.media_type, preview.blobs)
                               for name in placement.names or (str(destination),))
            else:
                written = _one(engine, destination, placement, target)
                moved.append(MovedImage(origin[id(img)], img, tuple(written)))
                results.extend(written)
                if not oci:
                    docker_in_layout += _docker_in_layout(destination, written)
    if docker_in_layout:
        progress.note(_kept_docker_note(docker_in_layout))
    progress.end(_summary(verb, results, time.monotonic() - started, options.dry_run))
    return results


def _one(engine: Engine, destination: Destination, placement: Placement,
         target: Target) -> list[ImageResult]:
    moved = engine.move(target)
    d = moved.descriptor
    written = destination.write_root(placement, str(d.digest), moved.raw, d.media_type)
    return [ImageResult(name, d.digest, d.size, d.media_type, moved.blobs) for name in written]


def _docker_in_layout(destination: Destination, written: list[ImageResult]) -> list[str]:
    """The names under which a Docker manifest was written into an OCI layout: skopeo and
    podman find an image there by its tag only when its manifest is OCI's (`oci:DIR:TAG`
    says "no descriptor found" for a Docker one)."""
    location = destination.location
    if not isinstance(location, LocalLocation) or local_kind(location) not in (
            Kind.OCI_LAYOUT, Kind.OCI_ARCHIVE):
        return []
    return [str(r.reference) for r in written
            if r.media_type in (mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST)
            and isinstance(r.reference, Reference) and r.reference.tag]


def _kept_docker_note(names: list[str]) -> str:
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    return (f"{names[0]}{more} keeps its Docker manifest (and digest): skopeo and podman find "
            "only OCI manifests by tag in a layout; --manifest-format oci writes OCI ones "
            "(new digests)")


def _check_names(destination: Destination, images: list[SourceImage]) -> None:
    """Refuse, before anything is sent, names that two different images would both get:
    the second would silently replace the first (`a/app:1` and `b/app:1` pushed into one
    repository, or two archives with the same tag)."""
    location = destination.location
    if isinstance(location, RegistryLocation) and location.reference is not None \
            and location.reference.tag and len(images) > 1:
        raise UsageError(f"the source holds {len(images)} images; pick one with --image, or "
                         "give a repository without a tag (or a bare registry) for them all")
    taken: dict[str, SourceImage] = {}
    for img in images:
        for placement in destination.placements(img):
            for name in placement.names:
                first = taken.setdefault(str(name), img)
                if first is not img and _identity(first) != _identity(img):
                    raise UsageError(
                        f"{first.label} and {img.label} would both be written as {name}, "
                        "the second replacing the first: give a bare registry (each image "
                        "keeps its own name), or pick one with --image")


def _identity(img: SourceImage) -> object:
    """What makes two images the same image: the manifest, else the config."""
    return img.root_digest or img.image_id or id(img)


def default_compression(destination: Destination, opened: list[OpenedSource]) -> str:
    """From local files into a registry, `auto` (compress what is uncompressed, as docker
    push does); otherwise `keep`: a registry's or a local copy's bytes stay as they are."""
    local_sources = all(s.origin is None for s in opened)
    return AUTO if not destination.local and local_sources else KEEP


def _stream(destination: Destination, options: TransferOptions, cache: Cache) -> bool:
    if destination.registry is None:
        return False
    if options.stream is not None:
        return options.stream
    return streams_by_default(destination.registry, cache)


def _mount_hints(engine: Engine, destination: Destination,
                 opened: list[OpenedSource]) -> None:
    """Blobs of a source repository on the destination registry can be mounted."""
    for source in opened:
        if source.origin is None or source.origin[0] != destination.registry:
            continue
        for img in source.images:
            for digest in blob_digests(img.root):
                engine.mover.known_in(digest, source.origin[1])


def _summary(verb: str, results: list[ImageResult], seconds: float,
             dry_run: bool) -> Summary:
    seen: dict[object, BlobResult] = {}
    for result in results:
        for blob in result.blobs:
            seen.setdefault((result.reference if isinstance(result.reference, str)
                             else result.reference.repository, blob.digest), blob)
    count = {a: sum(1 for b in seen.values() if b.action is a) for a in Action}
    sending = (Action.UPLOADED, Action.DOWNLOADED, Action.WRITTEN, Action.PLANNED)
    sent = sum(count[a] for a in sending)
    moved = sum(b.size for b in seen.values() if b.action in sending)
    return Summary(verb, len({str(r.digest) for r in results}), sent,
                   count[Action.SKIPPED], count[Action.MOUNTED], moved, seconds, dry_run,
                   count[Action.EXTERNAL])
