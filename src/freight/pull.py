"""`freight.pull`: images from registries into a docker-loadable tar or an OCI layout."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from freight.cache import Cache
from freight.connect import Connection
from freight.engine import Engine
from freight.errors import UsageError
from freight.manifest import Platform
from freight.progress import Progress, Silent
from freight.reference import Reference
from freight.results import ImageResult
from freight.sinks.docker_tar import DockerTarSink
from freight.sinks.layout import LayoutSink
from freight.sources.oci_layout import host_platform
from freight.sources.registry import RegistryReader

FORMATS = ("docker", "oci")
DEFAULT_JOBS = 4  # parallel blob downloads; like docker's 3 plus one for the manifest walk


def pull(
    references: list[str] | str, output: str, *, format: str = "docker",
    platform: str | None = None, all_platforms: bool = False, jobs: int = DEFAULT_JOBS,
    connection: Connection | None = None, progress: Progress | None = None,
) -> list[ImageResult]:
    """Pull `references` into `output`: one tar (`format="docker"`, also an OCI layout) or an
    OCI layout directory (`format="oci"`; blobs already there are not downloaded again).

    An index is narrowed to `platform` (default: this machine's, as docker does) unless
    `all_platforms` is set (OCI layouts only). Digests and sizes are verified while
    streaming; on failure no tar appears at `output`.
    """
    refs = [Reference.parse(r) for r in ([references] if isinstance(references, str)
                                          else references)]
    wanted = _platform(format, platform, all_platforms)
    sink = _sink(format, Path(output))
    connection = connection or Connection()
    engine = Engine(None, "keep", jobs, Cache(None), progress or Silent(),
                    tempfile.mkdtemp(prefix="freight-spool-"))
    try:
        results = [_pull_one(engine, sink, connection, ref, wanted, jobs) for ref in refs]
        sink.finish()
        return results
    except BaseException:
        if isinstance(sink, DockerTarSink):
            sink.abort()
        raise
    finally:
        engine.close()
        shutil.rmtree(engine.spool_dir, ignore_errors=True)


def _platform(format: str, platform: str | None, all_platforms: bool) -> Platform | None:
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}: use docker or oci")
    if all_platforms and platform:
        raise UsageError("--platform and --all-platforms exclude each other")
    if all_platforms and format == "docker":
        raise UsageError("docker load takes one platform: use --format oci with --all-platforms")
    if all_platforms:
        return None
    return Platform.parse(platform) if platform else host_platform()


def _sink(format: str, output: Path) -> LayoutSink:
    if format == "oci":
        if output.exists() and not output.is_dir():
            raise UsageError(f"{output} exists and is not a directory (an OCI layout is one)")
        return LayoutSink(output)
    if output.is_dir():
        raise UsageError(f"{output} is a directory: give a file name for the tar")
    output.parent.mkdir(parents=True, exist_ok=True)
    return DockerTarSink(output)


def _pull_one(engine: Engine, sink: LayoutSink, connection: Connection, ref: Reference,
              platform: Platform | None, jobs: int) -> ImageResult:
    client = connection.client(ref.registry, jobs=jobs)
    try:
        image = RegistryReader(client, ref.repository).image(ref, platform=platform)
        desc, raw, blobs = engine.transfer(image.root, sink)
        sink.put_manifest(str(desc.digest), raw, desc.media_type)
        sink.add_root(desc, ref if ref.tag or ref.digest else ref.with_tag("latest"))
        return ImageResult(ref, desc.digest, desc.size, desc.media_type, tuple(blobs))
    finally:
        client.close()
