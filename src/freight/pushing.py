"""`freight.push`: images from a local archive or layout into a registry."""

from __future__ import annotations

import os

from freight.connect import Connection
from freight.convert import AUTO
from freight.copying import referrer_hook
from freight.engine import DEFAULT_JOBS, TransferOptions, streams_by_default, transfer
from freight.locations import parse_location
from freight.progress import Progress
from freight.results import PushResult

DEFAULT_COMPRESSION = AUTO  # gzip what is uncompressed, keep what is compressed: digests survive

__all__ = ["DEFAULT_COMPRESSION", "DEFAULT_JOBS", "push", "streams_by_default"]


def push(
    source: str | os.PathLike[str], destination: str, *, image: str | None = None,
    compression: str = DEFAULT_COMPRESSION, jobs: int = DEFAULT_JOBS,
    chunk_size: int | None = None, plain_http: bool | None = None, insecure: bool = False,
    username: str | None = None, password: str | None = None,
    platform: str | None = None, progress: Progress | None = None,
    connection: Connection | None = None, stream: bool | None = None, dry_run: bool = False,
    referrers: bool = True, manifest_format: str | None = None,
) -> list[PushResult]:
    """Push the images of `source` (archive or layout; `-` reads standard input; or any
    location, `docker-archive:PATH[:IMAGE]`, `oci:DIR[:REF]`…) to `destination`.

    `destination` is `REGISTRY/REPO[:TAG]`, or a bare `REGISTRY` to push every image under
    its own names. `connection` may replace `plain_http`, `insecure`, `username` and
    `password`. `stream` uploads each layer while it is compressed; left as None, freight
    decides (see `streams_by_default`). Raises a FreightError subclass on any failure; no
    tag is written for an image unless every blob it needs is in the registry. With
    `dry_run`, nothing is sent: the results say which blobs would be (action `planned`).
    With `referrers` (the default), the referrers an OCI layout or archive holds for an
    image (signatures, SBOMs, attestations) are pushed with it, through the referrers API
    or, where the registry has none, the referrers tag. `manifest_format="oci"` pushes
    OCI manifests where the source has Docker's (or none: a legacy docker archive).
    """
    text = os.fspath(source)
    src = parse_location(text, local=True)
    dst = parse_location(destination, local=False)
    connection = connection or Connection(plain_http, insecure, username, password)
    options = TransferOptions(compression=compression, jobs=jobs, chunk_size=chunk_size,
                              stream=stream, platform=platform, image=image,
                              dry_run=dry_run, manifest_format=manifest_format)
    return transfer(src, dst, options=options, connection=connection, progress=progress,
                    verb="push", after=referrer_hook(referrers, connection, progress))
