"""`freight.push`: images from a local archive or layout into a registry."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass

from freight.cache import Cache, default_cache_dir
from freight.connect import Connection
from freight.convert import SETTINGS
from freight.engine import Engine
from freight.errors import UsageError
from freight.manifest import Platform
from freight.progress import Progress, Silent
from freight.reference import DOCKER_HUB, Reference, is_loopback, parse_registry_or_reference
from freight.results import ImageResult, PushResult
from freight.sinks.registry import RegistrySink
from freight.sources import SourceImage, open_archive
from freight.transport.client import RegistryClient

_IMAGE_ID_PREFIX = re.compile(r"[0-9a-f]{6,64}")  # --image may name an image ID, as docker does
DEFAULT_JOBS = 4  # like crane; more does not help on 2 cores, fewer leaves the link idle
DEFAULT_COMPRESSION = "gzip"  # what every registry and every docker accepts


def push(
    source: str | os.PathLike[str], destination: str, *, image: str | None = None,
    compression: str = DEFAULT_COMPRESSION, jobs: int = DEFAULT_JOBS,
    chunk_size: int | None = None, plain_http: bool | None = None, insecure: bool = False,
    username: str | None = None, password: str | None = None,
    platform: str | None = None, progress: Progress | None = None,
    connection: Connection | None = None, stream: bool | None = None,
) -> list[PushResult]:
    """Push the images of `source` (archive or layout; `-` reads standard input) to
    `destination`.

    `destination` is `REGISTRY/REPO[:TAG]`, or a bare `REGISTRY` to push every image under
    its own names. `connection` may replace `plain_http`, `insecure`, `username` and
    `password`. `stream` uploads each layer while it is compressed; left as None, freight
    decides (see `streams_by_default`). Raises a FreightError subclass on any failure; no
    tag is written for an image unless every blob it needs is in the registry.
    """
    _check_options(compression, jobs, chunk_size)
    connection = connection or Connection(plain_http, insecure, username, password)
    target = parse_registry_or_reference(destination)
    progress = progress or Silent()
    wanted = Platform.parse(platform) if platform else None
    with open_archive(source, platform=wanted) as local:
        plan = [(img, _targets(img, target)) for img in _select(local.images, image, target)]
        for img, _ in plan:
            for note in img.notes:
                progress.note(note)
        registry = target if isinstance(target, str) else target.registry
        options = _Options(compression, jobs, chunk_size, stream)
        return _run(plan, registry, options, progress, connection.client(registry, jobs=jobs))


def streams_by_default(registry: str, cache: Cache) -> bool:
    """Whether to upload layers while compressing them when the caller did not say.

    Streaming hides the upload of a new layer behind its compression, but a layer's digest
    is known only once it is compressed: a layer the registry already holds is sent (in
    part) for nothing before that is known. So freight streams only where it pays:

    * not to a registry on this machine: no network to hide, and the registry shares the
      CPU that compression already keeps busy (streaming there measured slower);
    * only once this cache has pushed to the registry: a layer the cache does not know is
      then most likely new. A fresh machine (a CI runner with no cache) asks first, so
      layers the registry has, like a shared base image, cost nothing.

    bench/README.md ("Streaming") has the measurements behind both rules.
    """
    return not is_loopback(registry) and cache.has_pushed_to(registry)


@dataclass(frozen=True)
class _Options:
    compression: str
    jobs: int
    chunk_size: int | None
    stream: bool | None  # None: streams_by_default


def _check_options(compression: str, jobs: int, chunk_size: int | None) -> None:
    if compression not in SETTINGS:
        raise UsageError(f"unknown compression {compression!r}: use one of {', '.join(SETTINGS)}")
    if jobs < 1:
        raise UsageError("jobs must be at least 1")
    if chunk_size is not None and chunk_size < 1:
        raise UsageError("chunk size must be a positive number of bytes")


def _run(plan: list[tuple[SourceImage, list[Reference]]], registry: str, options: _Options,
         progress: Progress, client: RegistryClient) -> list[PushResult]:
    spool = tempfile.mkdtemp(prefix="freight-spool-")
    cache = Cache(default_cache_dir())
    stream = streams_by_default(registry, cache) if options.stream is None else options.stream
    engine = Engine(registry, options.compression, options.jobs, cache, progress, spool)
    try:
        client.ping()
        return [r for img, refs in plan for r in _push_image(engine, client, img, refs,
                                                              options.chunk_size, stream)]
    finally:
        engine.close()
        client.close()
        shutil.rmtree(spool, ignore_errors=True)


def _push_image(engine: Engine, client: RegistryClient, image: SourceImage,
                refs: list[Reference], chunk_size: int | None,
                stream: bool) -> list[PushResult]:
    results = []
    for repository in dict.fromkeys(r.repository for r in refs):
        sink = RegistrySink(client, repository, chunk_size=chunk_size, stream=stream)
        desc, raw, blobs = engine.transfer(image.root, sink)
        for ref in (r for r in refs if r.repository == repository):
            sink.put_manifest(ref.reference, raw, desc.media_type)
            results.append(ImageResult(ref, desc.digest, desc.size, desc.media_type, tuple(blobs)))
    return results


def _select(images: list[SourceImage], wanted: str | None,
            target: str | Reference) -> list[SourceImage]:
    if wanted is None:
        if isinstance(target, Reference) and len(images) > 1:
            names = ", ".join(i.label for i in images)
            raise UsageError(f"the archive holds {len(images)} images ({names}); pick one with "
                             "--image, or push to a bare registry to push them all")
        return images
    chosen = [i for i in images if _matches(i, wanted)]
    if not chosen:
        names = ", ".join(i.label for i in images)
        raise UsageError(f"no image {wanted!r} in the archive (it holds: {names})")
    return chosen[:1]


def _matches(image: SourceImage, wanted: str) -> bool:
    hex_part = wanted.removeprefix("sha256:")
    if image.image_id is not None and _IMAGE_ID_PREFIX.fullmatch(hex_part):
        return image.image_id.encoded.startswith(hex_part)
    try:
        want = Reference.parse(wanted)
    except UsageError:
        return wanted in image.bare_tags
    for name in image.names:
        have = Reference.parse(name)
        if have.name == want.name and (want.tag is None or want.tag == have.tag):
            return True
    return False


def _targets(image: SourceImage, target: str | Reference) -> list[Reference]:
    if isinstance(target, Reference):
        if target.digest is not None:
            raise UsageError("a push destination takes a tag, not a digest")
        if target.tag:
            return [target]
        tags = [t for t in (Reference.parse(n).tag for n in image.names) if t]
        tags += list(image.bare_tags)
        return [target.with_tag(t) for t in dict.fromkeys(tags or ["latest"])]
    if not image.names:
        raise UsageError(f"{image.label} has no name in the archive: push it to "
                         "REGISTRY/REPO:TAG (with --image if the archive holds several)")
    return [_rehome(name, target) for name in image.names]


def _rehome(name: str, registry: str) -> Reference:
    """`busybox:1` on `localhost:5000` is `localhost:5000/busybox:1`, as docker tags it."""
    ref = Reference.parse(name)
    repository = ref.repository
    implicit_library = ref.registry == DOCKER_HUB and not name.startswith(("docker.io/",
                                                                            "library/"))
    if implicit_library and repository.startswith("library/"):
        repository = repository.removeprefix("library/")
    return Reference(registry, repository, ref.tag or "latest")
