"""`freight pull` and `freight copy`."""

from __future__ import annotations

import click

from freight.cli.options import (
    connection_options,
    copy_connection_options,
    manifest_format_option,
)
from freight.cli.output import print_results, progress_for, progress_option
from freight.connect import Connection
from freight.convert import SETTINGS
from freight.locations import writes_stdout
from freight.pulling import DEFAULT_JOBS, FORMATS, pull


@click.command("pull")
@click.argument("references", nargs=-1, required=True)
@click.argument("output", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="docker", show_default=True,
              help="docker: one tar for `docker load` (also an OCI layout); oci: a directory; "
                   "oci-archive: a tar of an OCI layout (keeps referrers, unlike docker).")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Which platform of a multi-platform image (default: this machine's).")
@click.option("--all-platforms", is_flag=True, help="Every platform (with --format oci).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=DEFAULT_JOBS,
              show_default=True, help="Blobs downloaded in parallel.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--no-referrers", is_flag=True,
              help="Leave signatures, SBOMs and attestations behind (kept by default with "
                   "--format oci; a docker tar cannot hold them).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per pulled image.")
@manifest_format_option
@progress_option
@connection_options
def pull_command(references: tuple[str, ...], output: str, fmt: str, platform: str | None,
                 all_platforms: bool, jobs: int, force: bool, no_referrers: bool, quiet: bool,
                 as_json: bool, manifest_format: str, progress_mode: str,
                 connection: Connection) -> None:
    """Pull REFERENCES into OUTPUT (a tar, or a directory with --format oci); `-` sends
    the tar to standard output (`freight pull REF - | docker load`). OUTPUT may also say
    its kind as copy reads it: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE.

    Signatures, SBOMs and attestations of each image come along into --format oci and
    oci-archive (a docker tar cannot hold them: a note says so); --no-referrers skips them.

    Several references make one bundle: `docker load` takes it whole, and
    `freight push BUNDLE REGISTRY` restores every tag on another registry.
    """
    with progress_for(quiet=quiet or as_json, mode=progress_mode) as progress:
        results = pull(list(references), output, format=fmt, platform=platform,
                       all_platforms=all_platforms, jobs=jobs, connection=connection,
                       progress=progress, force=force, referrers=not no_referrers,
                       manifest_format=manifest_format)
    print_results(results, as_json=as_json, err=writes_stdout(output))


@click.command("copy")
@click.argument("source")
@click.argument("destination")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="Copy one platform of a multi-platform image (default: all of them; a "
                   "docker archive takes this machine's).")
@click.option("--all-platforms", is_flag=True,
              help="Every platform, also into an OCI archive or layout.")
@click.option("--all-tags", is_flag=True, help="Copy every tag of the source repository.")
@click.option("--image", metavar="NAME[:TAG]",
              help="Copy only this image of a multi-image archive (a name or an image ID).")
@click.option("--compression", type=click.Choice(SETTINGS), default=None,
              help="Layer compression (default: auto from files into a registry, else keep).")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=DEFAULT_JOBS,
              show_default=True, help="Blobs moved in parallel.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--dry-run", is_flag=True,
              help="Only say what would be sent or skipped, with sizes; write nothing.")
@click.option("--no-referrers", is_flag=True,
              help="Leave signatures, SBOMs and attestations behind (carried by default "
                   "into registries, OCI layouts and OCI archives).")
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per copied image.")
@manifest_format_option
@progress_option
@copy_connection_options
def copy_command(source: str, destination: str, platform: str | None, all_platforms: bool,
                 all_tags: bool, image: str | None, compression: str | None, jobs: int,
                 force: bool, dry_run: bool, no_referrers: bool, quiet: bool, as_json: bool,
                 manifest_format: str, progress_mode: str, source_connection: Connection,
                 connection: Connection) -> None:
    """Copy SOURCE to DESTINATION: any two of a registry reference (or docker://REF),
    docker-archive:PATH[:IMAGE], oci:DIR[:REF], oci-archive:PATH[:REF] or a plain path.

    Registry to registry streams (nothing touches the disk) and mounts within a registry.
    """
    from freight.copying import copy

    with progress_for(quiet=quiet or as_json, mode=progress_mode) as progress:
        results = copy(
            source, destination, referrers=not no_referrers, platform=platform,
            all_tags=all_tags, jobs=jobs, source_connection=source_connection,
            connection=connection, progress=progress, compression=compression, image=image,
            force=force, all_platforms=all_platforms, dry_run=dry_run,
            manifest_format=manifest_format)
    print_results(results, as_json=as_json, dry_run=dry_run, err=writes_stdout(destination))
