"""`freight.copy`: registry to registry, streaming, with mounts on the same registry."""

from __future__ import annotations

import shutil
import tempfile

from freight.cache import Cache, default_cache_dir
from freight.connect import Connection
from freight.digest import Digest
from freight.engine import Engine
from freight.errors import UsageError
from freight.manifest import Platform
from freight.progress import Progress, Silent
from freight.reference import Reference
from freight.results import ImageResult
from freight.sinks.registry import RegistrySink
from freight.sources.model import ImageNode, IndexNode, Node
from freight.sources.registry import RegistryReader
from freight.transport.client import RegistryClient

DEFAULT_JOBS = 4  # like crane; more does not help on 2 cores


def copy(
    source: str, destination: str, *, platform: str | None = None, all_tags: bool = False,
    jobs: int = DEFAULT_JOBS, source_connection: Connection | None = None,
    connection: Connection | None = None, progress: Progress | None = None,
) -> list[ImageResult]:
    """Copy `source` (a reference) to `destination`; nothing touches the local disk.

    An index is copied whole with all its children unless `platform` picks one. With
    `all_tags`, every tag of the source repository goes to the destination repository.
    Blobs already at the destination are skipped; on the same registry they are mounted.
    """
    src, dst = Reference.parse(source), Reference.parse(destination)
    if dst.digest is not None:
        raise UsageError("a copy destination takes a tag, not a digest")
    if all_tags and (src.tag or src.digest or dst.tag):
        raise UsageError("--all-tags copies a whole repository: give REPO, not REPO:TAG")
    connection = connection or Connection()
    src_client = (source_connection or connection).client(src.registry, jobs=jobs)
    dst_client = connection.client(dst.registry, jobs=jobs)
    engine = Engine(dst.registry, "keep", jobs, Cache(default_cache_dir()),
                    progress or Silent(), tempfile.mkdtemp(prefix="freight-spool-"))
    try:
        reader = RegistryReader(src_client, src.repository)
        pairs = _pairs(reader, src, dst, all_tags)
        wanted = Platform.parse(platform) if platform else None
        dst_client.ping()
        return [_copy_one(engine, reader, dst_client, s, d, wanted) for s, d in pairs]
    finally:
        engine.close()
        src_client.close()
        dst_client.close()
        shutil.rmtree(engine.spool_dir, ignore_errors=True)


def _pairs(reader: RegistryReader, src: Reference, dst: Reference,
           all_tags: bool) -> list[tuple[Reference, Reference]]:
    if all_tags:
        return [(src.with_tag(t), dst.with_tag(t)) for t in reader.tags()]
    return [(src, dst if dst.tag else dst.with_tag(src.tag or "latest"))]


def _copy_one(engine: Engine, reader: RegistryReader, client: RegistryClient, src: Reference,
              dst: Reference, platform: Platform | None) -> ImageResult:
    image = reader.image(src, platform=platform)
    sink = RegistrySink(client, dst.repository)
    if src.registry == dst.registry and src.repository != dst.repository:
        for digest in _blob_digests(image.root):
            engine.known_in(digest, src.repository)
    desc, raw, blobs = engine.transfer(image.root, sink)
    sink.put_manifest(dst.reference, raw, desc.media_type)
    return ImageResult(dst, desc.digest, desc.size, desc.media_type, tuple(blobs))


def _blob_digests(node: Node) -> list[Digest]:
    if isinstance(node, IndexNode):
        return [d for _, child in node.children for d in _blob_digests(child)]
    assert isinstance(node, ImageNode)
    return [b.digest for b in (node.config, *node.layers) if b.digest is not None]
