"""`freight.pull`: images from registries into a docker-loadable tar or an OCI layout."""

from __future__ import annotations

from freight.connect import Connection
from freight.errors import UsageError
from freight.locations import Kind, LocalLocation, RegistryLocation, parse_location
from freight.progress import Progress
from freight.results import ImageResult
from freight.transfer import DEFAULT_JOBS, TransferOptions, transfer

FORMATS = ("docker", "oci")

__all__ = ["DEFAULT_JOBS", "FORMATS", "pull"]


def pull(
    references: list[str] | str, output: str, *, format: str = "docker",
    platform: str | None = None, all_platforms: bool = False, jobs: int = DEFAULT_JOBS,
    connection: Connection | None = None, progress: Progress | None = None,
    force: bool = False,
) -> list[ImageResult]:
    """Pull `references` into `output`: one tar (`format="docker"`, also an OCI layout) or an
    OCI layout directory (`format="oci"`; blobs already there are not downloaded again).

    An index is narrowed to `platform` (default: this machine's, as docker does) unless
    `all_platforms` is set (OCI layouts only). Digests and sizes are verified while
    streaming; on failure nothing appears at `output`; an existing tar is replaced only
    with `force`.
    """
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}: use docker or oci")
    refs = [references] if isinstance(references, str) else list(references)
    sources = [_registry(r) for r in refs]
    kind = Kind.OCI_LAYOUT if format == "oci" else Kind.DOCKER_ARCHIVE
    destination = LocalLocation(kind, output)
    if all_platforms and format == "docker":
        raise UsageError("docker load takes one platform: use --format oci with --all-platforms")
    # as docker pull does, an index is narrowed to this machine's platform by default
    options = TransferOptions(jobs=jobs, platform=platform, all_platforms=all_platforms,
                              host_platform=not all_platforms, force=force)
    return transfer(sources, destination, options=options, connection=connection,
                    progress=progress, verb="pull")


def _registry(text: str) -> RegistryLocation:
    location = parse_location(text, local=False)
    if not isinstance(location, RegistryLocation) or location.reference is None:
        raise UsageError(f"{text!r} is not an image reference on a registry "
                         "(use freight copy for archives and layouts)")
    return location

