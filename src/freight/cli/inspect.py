"""`freight tags`, `catalog`, `manifest`, `config`, `digest`, `ls`: read what a registry, an
archive or a layout holds.

`manifest`, `config` and `digest` take any location (freight.locations): a registry
reference (`host/repo:tag`, `docker://host/repo:tag`) or a local archive or layout
(`app.tar`, `docker-archive:app.tar:app:1`, `oci:dir:v1`), and answer the same way for both.
"""

from __future__ import annotations

import json
from typing import Any

import click

from freight.cli import views
from freight.cli.formatting import epilog, format_option, render
from freight.cli.options import connection_options
from freight.connect import Connection
from freight.errors import UsageError
from freight.inspect import DEFAULT_PAGE_SIZE, ManifestInfo, catalog, config, manifest, tags
from freight.locations import LocalLocation, parse_location
from freight.manifest import Platform

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
_limit = click.option("--limit", type=click.IntRange(min=1), metavar="N",
                      help="Stop after N entries.")
_page_size = click.option("--page-size", type=click.IntRange(min=1), default=DEFAULT_PAGE_SIZE,
                          show_default=True, metavar="N",
                          help="Entries asked for per request (the registry may send fewer).")
_platform = click.option("--platform", metavar="OS/ARCH[/VARIANT]",
                         help="For a multi-platform image, the platform's own manifest; an "
                              "error listing the platforms there are if none matches.")
_raw = click.option("--raw", is_flag=True, help="Print the exact bytes the registry stores.")


def _emit(data: dict[str, object], template: str | None = None) -> None:
    click.echo(render(template, data) if template else json.dumps(data))


def _incomplete_note(complete: bool, limit: int | None) -> None:
    if not complete:
        click.echo(f"freight: note: stopped at --limit {limit}; there are more", err=True)


def _exclusive(raw: bool, as_json: bool, template: str | None = None) -> None:
    if sum((raw, as_json, template is not None)) > 1:
        raise click.UsageError("--raw, --json and --format cannot be combined")


def _write_raw(data: bytes) -> None:
    click.echo(data, nl=False)  # bytes go to the binary stream unchanged


def _parse_platform(text: str | None) -> Platform | None:
    if text is None:
        return None
    try:
        return Platform.parse(text)
    except Exception as exc:
        raise UsageError(str(exc)) from None


def _where(text: str) -> LocalLocation | str:
    """A local location, or the registry reference text (checked by the library)."""
    location = parse_location(text)
    return location if isinstance(location, LocalLocation) else text


def _rows(template: str | None, rows: list[dict[str, Any]]) -> bool:
    """Print each row through `template`; False when there is no template."""
    if template is None:
        return False
    for row in rows:
        click.echo(render(template, row))
    return True


@click.command("tags", epilog=epilog("freight tags localhost:5000/team/app",
                                     "freight tags ghcr.io/org/app --limit 20",
                                     "freight tags docker://host/app --format "
                                     "'{repository}:{tag}'"))
@click.argument("repository")
@_limit
@_page_size
@_json
@format_option
@connection_options
def tags_command(repository: str, limit: int | None, page_size: int, as_json: bool,
                 template: str | None, connection: Connection) -> None:
    """List the tags of REPOSITORY (REGISTRY/NAME), following the registry's pages."""
    _exclusive(False, as_json, template)
    result = tags(repository, limit=limit, page_size=page_size, connection=connection)
    if as_json:
        _emit(views.tags_json(result))
        return
    rows = [{"tag": t, "repository": result.repository.name} for t in result.tags]
    if not _rows(template, rows):
        for name in result.tags:
            click.echo(name)
    _incomplete_note(result.complete, limit)


@click.command("catalog", epilog=epilog("freight catalog localhost:5000",
                                        "freight catalog localhost:5000 --format '{registry}/"
                                        "{repository}'"))
@click.argument("registry")
@_limit
@_page_size
@_json
@format_option
@connection_options
def catalog_command(registry: str, limit: int | None, page_size: int, as_json: bool,
                    template: str | None, connection: Connection) -> None:
    """List the repositories of REGISTRY (a host such as localhost:5000), page by page."""
    _exclusive(False, as_json, template)
    result = catalog(registry, limit=limit, page_size=page_size, connection=connection)
    if as_json:
        _emit(views.catalog_json(result))
        return
    rows = [{"repository": r, "registry": result.registry} for r in result.repositories]
    if not _rows(template, rows):
        for name in result.repositories:
            click.echo(name)
    _incomplete_note(result.complete, limit)


def _manifest(where: str, platform: str | None, connection: Connection) -> ManifestInfo:
    place, wanted = _where(where), _parse_platform(platform)
    if isinstance(place, LocalLocation):
        from freight.local_inspect import local_manifest

        return local_manifest(place, platform=wanted)
    return manifest(place, platform=wanted, connection=connection)


@click.command("manifest", epilog=epilog(
    "freight manifest localhost:5000/app:1",
    "freight manifest ghcr.io/org/app:1 --platform linux/arm64 --raw",
    "freight manifest app.tar            (a docker save archive; also oci:DIR[:REF])",
    "freight manifest localhost:5000/app:1 --format '{digest} {layers_size}'"))
@click.argument("reference")
@_platform
@_raw
@_json
@format_option
@connection_options
def manifest_command(reference: str, platform: str | None, raw: bool, as_json: bool,
                     template: str | None, connection: Connection) -> None:
    """Show the manifest or index REFERENCE names: digest, media type, platforms, layers.

    REFERENCE is a registry reference or a local archive or layout."""
    _exclusive(raw, as_json, template)
    info = _manifest(reference, platform, connection)
    _built_note(info)
    if raw:
        _write_raw(info.raw)
    elif as_json or template:
        _emit(views.manifest_json(info), template)
    else:
        click.echo("\n".join(views.manifest_lines(info)))


@click.command("config", epilog=epilog(
    "freight config localhost:5000/app:1",
    "freight config oci:./layout:v1 --format '{config[architecture]}'",
    "freight config docker-archive:app.tar:app:1 --raw"))
@click.argument("reference")
@click.option("--platform", metavar="OS/ARCH[/VARIANT]",
              help="For a multi-platform image: whose config (default: this machine's).")
@_raw
@_json
@format_option
@connection_options
def config_command(reference: str, platform: str | None, raw: bool, as_json: bool,
                   template: str | None, connection: Connection) -> None:
    """Print the image config of REFERENCE (indented; --raw for the exact bytes).

    REFERENCE is a registry reference or a local archive or layout."""
    _exclusive(raw, as_json, template)
    place, wanted = _where(reference), _parse_platform(platform)
    if isinstance(place, LocalLocation):
        from freight.local_inspect import local_config

        info = local_config(place, platform=wanted)
    else:
        info = config(place, platform=wanted, connection=connection)
    if raw:
        _write_raw(info.raw)
    elif as_json or template:
        _emit(views.config_json(info), template)
    else:
        click.echo(json.dumps(info.json(), indent=2))


@click.command("digest", epilog=epilog(
    "freight digest localhost:5000/app:1",
    "freight digest ghcr.io/org/app:1 --platform linux/amd64",
    "freight digest app.tar"))
@click.argument("reference")
@_platform
@_json
@format_option
@connection_options
def digest_command(reference: str, platform: str | None, as_json: bool, template: str | None,
                   connection: Connection) -> None:
    """Print the digest REFERENCE resolves to (an index's own unless --platform is given).

    REFERENCE is a registry reference or a local archive or layout."""
    _exclusive(False, as_json, template)
    info = _manifest(reference, platform, connection)
    _built_note(info)
    data = views.digest_json(info)
    if as_json or template:
        _emit(data, template)
    else:
        click.echo(str(info.digest))


def _built_note(info: ManifestInfo) -> None:
    if info.built:
        click.echo(f"freight: note: {info.reference} holds no manifest of its own (a legacy "
                   "docker save): this one is built from its blobs as stored; a push that "
                   "compresses layers gets another digest", err=True)
