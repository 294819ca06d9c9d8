"""`freight ls`: the images, tags, platforms and layer sizes in an archive or layout."""

from __future__ import annotations

import json

import click

from freight.cli import views
from freight.cli.formatting import epilog, format_option, render
from freight.errors import UsageError
from freight.locations import LocalLocation, parse_location


@click.command("ls", epilog=epilog(
    "freight ls app.tar",
    "freight ls oci:./layout --json",
    "freight ls app.tar --format '{name}\\t{platform}\\t{human_size}'"))
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@format_option
def ls_command(path: str, as_json: bool, template: str | None) -> None:
    """List what the archive or layout PATH holds: each image's names and tags, image ID,
    digest, platforms and layers with their sizes.

    PATH is a docker save archive, an OCI archive or an OCI layout directory (optionally
    written docker-archive:PATH, oci-archive:PATH or oci:DIR). With --format the template
    is applied to each image and platform; its fields are name, names, tags, image_id,
    digest, platform, manifest, config, layers (a count), size and human_size."""
    from freight.local_inspect import listing

    if as_json and template:
        raise click.UsageError("--json and --format cannot be combined")
    location = parse_location(path, local=True)
    if not isinstance(location, LocalLocation):
        raise UsageError(f"{path!r} is a registry reference; freight ls reads archives and "
                         f"layouts (for a registry: freight tags, freight manifest)")
    result = listing(location.path)
    if as_json:
        click.echo(json.dumps(views.listing_json(result)))
    elif template:
        for row in views.listing_rows(result):
            click.echo(render(template, row))
    else:
        click.echo("\n".join(views.listing_lines(result)))
