"""`freight push`."""

from __future__ import annotations

import re

import click

from freight.cli.options import connection_options, manifest_format_option
from freight.cli.output import print_results, progress_for, progress_option
from freight.connect import Connection
from freight.convert import SETTINGS
from freight.pushing import DEFAULT_COMPRESSION, DEFAULT_JOBS, push

_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?|b)?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """`8388608`, `8M`, `8MiB`, `512k` → bytes (binary units, as docker and curl read them)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a size (examples: 5M, 16MiB, 1048576)")
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _UNITS[unit]


@click.command("push")
@click.argument("source")
@click.argument("destination")
@click.option("--image", metavar="NAME[:TAG]",
              help="Push only this image of a multi-image archive (a name or an image ID).")
@click.option("--compression", type=click.Choice(SETTINGS), default=DEFAULT_COMPRESSION,
              show_default=True,
              help="auto: gzip uncompressed layers, keep compressed ones (digests survive); "
                   "gzip/zstd/none: every layer so; keep: blobs exactly as stored.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="For a multi-platform image, push only this platform.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=DEFAULT_JOBS,
              show_default=True, help="Blobs moved in parallel.")
@click.option("--chunk-size", metavar="SIZE",
              help="Upload in chunks of SIZE (e.g. 50M) instead of one request per blob.")
@click.option("--stream/--no-stream", default=None,
              help="Upload each layer while compressing it. Default: only to a registry "
                   "on another machine that this machine has pushed to before (a layer the "
                   "cache does not know is then most likely new).")
@click.option("--dry-run", is_flag=True,
              help="Only say what would be uploaded or skipped, with sizes; send nothing.")
@click.option("--no-referrers", is_flag=True,
              help="Leave behind the signatures, SBOMs and attestations an OCI layout or "
                   "archive holds for its images (pushed with them by default).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pushed image.")
@manifest_format_option
@progress_option
@connection_options
def push_command(source: str, destination: str, image: str | None, compression: str,
                 platform: str | None, jobs: int, chunk_size: str | None,
                 stream: bool | None, dry_run: bool, no_referrers: bool, quiet: bool,
                 as_json: bool, manifest_format: str, progress_mode: str,
                 connection: Connection) -> None:
    """Push the images in SOURCE to DESTINATION.

    SOURCE is a `docker save` archive (any format, optionally gzip/zstd-compressed), an OCI
    archive, an OCI layout directory, or `-` for an archive on standard input; also
    `docker-archive:PATH[:IMAGE]`, `oci:DIR[:REF]`, `oci-archive:PATH[:REF]`.
    DESTINATION is REGISTRY/REPO[:TAG], or a bare REGISTRY (e.g. localhost:5000) to push
    every image under its own names.
    """
    with progress_for(quiet=quiet or as_json, mode=progress_mode) as progress:
        results = push(source, destination, image=image, compression=compression, jobs=jobs,
                       chunk_size=parse_size(chunk_size) if chunk_size else None,
                       connection=connection, platform=platform, progress=progress,
                       stream=stream, dry_run=dry_run, referrers=not no_referrers,
                       manifest_format=manifest_format)
    print_results(results, as_json=as_json, dry_run=dry_run)
