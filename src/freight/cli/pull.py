"""`freight pull` and `freight copy`."""

from __future__ import annotations

import json

import click

from freight.cli.options import connection_options
from freight.cli.output import progress_for, progress_option, result_json
from freight.connect import Connection
from freight.pull import DEFAULT_JOBS, FORMATS, pull
from freight.registry_copy import copy
from freight.results import ImageResult


def _print(results: list[ImageResult], as_json: bool) -> None:
    for result in results:
        click.echo(json.dumps(result_json(result)) if as_json else result.pinned)


@click.command("pull")
@click.argument("references", nargs=-1, required=True)
@click.argument("output", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="docker", show_default=True,
              help="docker: one tar for `docker load` (also an OCI layout); oci: a directory.")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Which platform of a multi-platform image (default: this machine's).")
@click.option("--all-platforms", is_flag=True, help="Every platform (with --format oci).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=DEFAULT_JOBS,
              show_default=True, help="Blobs downloaded in parallel.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pulled image.")
@progress_option
@connection_options
def pull_command(references: tuple[str, ...], output: str, fmt: str, platform: str | None,
                 all_platforms: bool, jobs: int, quiet: bool, as_json: bool,
                 progress_mode: str, connection: Connection) -> None:
    """Pull REFERENCES into OUTPUT (a tar, or a directory with --format oci).

    Several references make one bundle: `docker load` takes it whole, and
    `freight push BUNDLE REGISTRY` restores every tag on another registry.
    """
    with progress_for(quiet=quiet or as_json, mode=progress_mode) as progress:
        results = pull(list(references), output, format=fmt, platform=platform,
                       all_platforms=all_platforms, jobs=jobs, connection=connection,
                       progress=progress)
    _print(results, as_json)


@click.command("copy")
@click.argument("source")
@click.argument("destination")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Copy one platform of a multi-platform image (default: all of them).")
@click.option("--all-tags", is_flag=True, help="Copy every tag of the source repository.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=DEFAULT_JOBS,
              show_default=True, help="Blobs moved in parallel.")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per copied image.")
@progress_option
@connection_options
def copy_command(source: str, destination: str, platform: str | None, all_tags: bool, jobs: int,
                 quiet: bool, as_json: bool, progress_mode: str,
                 connection: Connection) -> None:
    """Copy SOURCE to DESTINATION, registry to registry, streaming (nothing on disk)."""
    with progress_for(quiet=quiet or as_json, mode=progress_mode) as progress:
        results = copy(source, destination, platform=platform, all_tags=all_tags, jobs=jobs,
                       connection=connection, progress=progress)
    _print(results, as_json)
