"""`freight.pull`: images from registries into a docker-loadable tar or an OCI layout."""

from __future__ import annotations

from freight.connect import Connection
from freight.copying import referrer_hook
from freight.engine import DEFAULT_JOBS, TransferOptions, transfer
from freight.errors import UsageError
from freight.locations import Kind, LocalLocation, RegistryLocation, parse_location
from freight.progress import Progress
from freight.results import ImageResult

FORMATS = ("docker", "oci", "oci-archive")
_KINDS = {"docker": Kind.DOCKER_ARCHIVE, "oci": Kind.OCI_LAYOUT, "oci-archive": Kind.OCI_ARCHIVE}

__all__ = ["DEFAULT_JOBS", "FORMATS", "pull"]


def pull(
    references: list[str] | str, output: str, *, format: str = "docker",
    platform: str | None = None, all_platforms: bool = False, jobs: int = DEFAULT_JOBS,
    connection: Connection | None = None, progress: Progress | None = None,
    force: bool = False, referrers: bool = True, manifest_format: str | None = None,
) -> list[ImageResult]:
    """Pull `references` into `output`: one tar (`format="docker"`, also an OCI layout), an
    OCI layout directory (`format="oci"`; blobs already there are not downloaded again) or
    an OCI archive (`format="oci-archive"`: a tar of a layout, without docker's files).

    An index is narrowed to `platform` (default: this machine's, as docker does) unless
    `all_platforms` is set (OCI layouts only). Digests and sizes are verified while
    streaming; on failure nothing appears at `output`; an existing tar is replaced only
    with `force`. With `referrers` (the default) each image's signatures, SBOMs and
    attestations are stored beside it in an OCI layout (`format="oci"`); a docker tar
    cannot hold them, and a note says so when there are any. `manifest_format="oci"`
    writes OCI manifests where the registry has Docker's (new digests), as skopeo does.
    """
    if format not in FORMATS:
        raise UsageError(f"unknown format {format!r}: use docker, oci or oci-archive")
    refs = [references] if isinstance(references, str) else list(references)
    sources = [_registry(r) for r in refs]
    destination = _output(output, format)
    if all_platforms and destination.kind is Kind.DOCKER_ARCHIVE:
        raise UsageError("docker load takes one platform: use --format oci or oci-archive "
                         "with --all-platforms")
    # as docker pull does, an index is narrowed to this machine's platform by default
    options = TransferOptions(jobs=jobs, platform=platform, all_platforms=all_platforms,
                              host_platform=not all_platforms, force=force,
                              manifest_format=manifest_format)
    connection = connection or Connection()
    return transfer(sources, destination, options=options, connection=connection,
                    progress=progress, verb="pull",
                    after=referrer_hook(referrers, connection, progress))


def _output(text: str, format: str) -> LocalLocation:
    """OUTPUT as a path in `format`, or as a location that says its own kind
    (`oci:DIR[:TAG]`, `oci-archive:FILE`, `docker-archive:FILE`), as `freight copy` reads it;
    a `--format` other than the default must then agree with it."""
    location = parse_location(text, local=True)
    if not isinstance(location, LocalLocation) or location.kind is Kind.SNIFFED:
        return LocalLocation(_KINDS[format], text)
    if location.kind not in _KINDS.values():
        raise UsageError(f"{text!r}: pull writes docker-archive:, oci: or oci-archive:")
    if format != "docker" and _KINDS[format] is not location.kind:
        raise UsageError(f"--format {format} and {text!r} name different kinds of output: "
                         "give one of them")
    return location


def _registry(text: str) -> RegistryLocation:
    location = parse_location(text, local=False)
    if not isinstance(location, RegistryLocation) or location.reference is None:
        raise UsageError(f"{text!r} is not an image reference on a registry "
                         "(use freight copy for archives and layouts)")
    return location

