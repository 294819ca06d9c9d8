"""`freight.copy`: any location to any other, e.g. registry to registry (streaming, blobs
mounted within one registry), archive to layout, layout to registry, registry to archive."""

from __future__ import annotations

from typing import TYPE_CHECKING

from freight.connect import Connection
from freight.engine import DEFAULT_JOBS, TransferOptions, transfer
from freight.progress import Progress
from freight.results import ImageResult

if TYPE_CHECKING:
    from freight.engine.destinations import Destination
    from freight.engine.run import AfterHook, MovedImage

__all__ = ["DEFAULT_JOBS", "copy"]


def copy(
    source: str, destination: str, *, platform: str | None = None, all_tags: bool = False,
    jobs: int = DEFAULT_JOBS, source_connection: Connection | None = None,
    connection: Connection | None = None, progress: Progress | None = None,
    compression: str | None = None, image: str | None = None, force: bool = False,
    all_platforms: bool = False, dry_run: bool = False, referrers: bool = True,
    manifest_format: str | None = None,
) -> list[ImageResult]:
    """Copy `source` to `destination`: references, `docker-archive:PATH[:IMAGE]`,
    `oci:DIR[:REF]`, `oci-archive:PATH[:REF]`, `docker://REF`, or plain paths.

    An index is copied whole with all its children unless `platform` picks one (a docker
    archive takes one platform: this machine's by default). With `all_tags`, every tag of
    the source repository goes to the destination repository. Blobs already at the
    destination are skipped; on the same registry they are mounted. Layers keep their
    bytes (and so the digests) unless `compression` says otherwise. With `referrers`
    (the default), each image's signatures, SBOMs and attestations go with it, into
    registries, OCI layouts and OCI archives (a docker archive cannot hold them: a note
    says so). `manifest_format="oci"` writes OCI manifests where the source has Docker's
    (new digests for those), as skopeo's `--format oci`.
    """
    options = TransferOptions(compression=compression, jobs=jobs, platform=platform,
                              all_tags=all_tags, image=image, force=force,
                              all_platforms=all_platforms, dry_run=dry_run,
                              manifest_format=manifest_format)
    connection = connection or Connection()
    after = referrer_hook(referrers, source_connection or connection, progress)
    return transfer(source, destination, options=options, connection=connection,
                    source_connection=source_connection, progress=progress, verb="copy",
                    after=after)


def referrer_hook(referrers: bool, connection: Connection,
                  progress: Progress | None) -> AfterHook | None:
    """The `after` hook that carries referrers. Its modules load only when an image moved
    could have any: not for legacy docker archives (no manifest, so nothing can name the
    image as its subject), the most common push."""
    if not referrers:
        return None

    def carry(destination: Destination, moved: list[MovedImage]) -> None:
        if all(item.image.root_digest is None for item in moved):
            return
        from freight.progress import Silent
        from freight.sync.travel import CarryReferrers

        CarryReferrers(connection, progress or Silent())(destination, moved)

    return carry
