"""`freight tags`, `catalog`, `manifest`, `config`, `digest`: read what a registry holds."""

from __future__ import annotations

import json

import click

from freight.cli import views
from freight.cli.options import connection_options
from freight.connect import Connection
from freight.inspect import DEFAULT_PAGE_SIZE, catalog, config, digest, manifest, tags

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
_limit = click.option("--limit", type=click.IntRange(min=1), metavar="N",
                      help="Stop after N entries.")
_page_size = click.option("--page-size", type=click.IntRange(min=1), default=DEFAULT_PAGE_SIZE,
                          show_default=True, metavar="N",
                          help="Entries asked for per request (the registry may send fewer).")
_platform = click.option("--platform", metavar="OS/ARCH[/VARIANT]",
                         help="For a multi-platform image, the platform's own manifest.")
_raw = click.option("--raw", is_flag=True, help="Print the exact bytes the registry stores.")


def _emit(data: dict[str, object]) -> None:
    click.echo(json.dumps(data))


def _incomplete_note(complete: bool, limit: int | None) -> None:
    if not complete:
        click.echo(f"freight: note: stopped at --limit {limit}; there are more", err=True)


def _exclusive(raw: bool, as_json: bool) -> None:
    if raw and as_json:
        raise click.UsageError("--raw and --json cannot be combined")


def _write_raw(data: bytes) -> None:
    click.echo(data, nl=False)  # bytes go to the binary stream unchanged


@click.command("tags")
@click.argument("repository")
@_limit
@_page_size
@_json
@connection_options
def tags_command(repository: str, limit: int | None, page_size: int, as_json: bool,
                 connection: Connection) -> None:
    """List the tags of REPOSITORY (REGISTRY/NAME), following the registry's pages."""
    result = tags(repository, limit=limit, page_size=page_size, connection=connection)
    if as_json:
        _emit(views.tags_json(result))
        return
    for name in result.tags:
        click.echo(name)
    _incomplete_note(result.complete, limit)


@click.command("catalog")
@click.argument("registry")
@_limit
@_page_size
@_json
@connection_options
def catalog_command(registry: str, limit: int | None, page_size: int, as_json: bool,
                    connection: Connection) -> None:
    """List the repositories of REGISTRY (a host such as localhost:5000), page by page."""
    result = catalog(registry, limit=limit, page_size=page_size, connection=connection)
    if as_json:
        _emit(views.catalog_json(result))
        return
    for name in result.repositories:
        click.echo(name)
    _incomplete_note(result.complete, limit)


@click.command("manifest")
@click.argument("reference")
@_platform
@_raw
@_json
@connection_options
def manifest_command(reference: str, platform: str | None, raw: bool, as_json: bool,
                     connection: Connection) -> None:
    """Show the manifest or index REFERENCE names: digest, media type, platforms, layers."""
    _exclusive(raw, as_json)
    info = manifest(reference, platform=platform, connection=connection)
    if raw:
        _write_raw(info.raw)
    elif as_json:
        _emit(views.manifest_json(info))
    else:
        click.echo("\n".join(views.manifest_lines(info)))


@click.command("config")
@click.argument("reference")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="For a multi-platform image: whose config (default: this machine's).")
@_raw
@_json
@connection_options
def config_command(reference: str, platform: str | None, raw: bool, as_json: bool,
                   connection: Connection) -> None:
    """Print the image config of REFERENCE (indented; --raw for the exact bytes)."""
    _exclusive(raw, as_json)
    info = config(reference, platform=platform, connection=connection)
    if raw:
        _write_raw(info.raw)
    elif as_json:
        _emit(views.config_json(info))
    else:
        click.echo(json.dumps(info.json(), indent=2))


@click.command("digest")
@click.argument("reference")
@_platform
@_json
@connection_options
def digest_command(reference: str, platform: str | None, as_json: bool,
                   connection: Connection) -> None:
    """Print the digest REFERENCE resolves to (an index's own unless --platform is given)."""
    info = digest(reference, platform=platform, connection=connection)
    if as_json:
        _emit(views.digest_json(info))
    else:
        click.echo(str(info.digest))
