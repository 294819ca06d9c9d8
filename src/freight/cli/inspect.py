"""`freight manifest`, `config`, `digest`: read what a registry, an archive or a layout
holds (`tags` and `catalog` are cli/listings.py, `ls` cli/ls.py).

`manifest`, `config` and `digest` take any location (freight.locations): a registry
reference (`host/repo:tag`, `docker://host/repo:tag`) or a local archive or layout
(`app.tar`, `docker-archive:app.tar:app:1`, `oci:dir:v1`), and answer the same way for both.
"""

from __future__ import annotations

import json

import click

from freight.cli import views
from freight.cli.formatting import emit, epilog, exclusive, format_option, json_option
from freight.cli.options import connection_options
from freight.connect import Connection
from freight.errors import UsageError
from freight.inspect import ManifestInfo, config, manifest
from freight.locations import LocalLocation, parse_location
from freight.manifest import Platform

_platform = click.option("--platform", metavar="OS/ARCH[/VARIANT]",
                         help="For a multi-platform image, the platform's own manifest; an "
                              "error listing the platforms there are if none matches.")
_raw = click.option("--raw", is_flag=True, help="Print the exact bytes the registry stores.")


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
@json_option
@format_option
@connection_options
def manifest_command(reference: str, platform: str | None, raw: bool, as_json: bool,
                     template: str | None, connection: Connection) -> None:
    """Show the manifest or index REFERENCE names: digest, media type, platforms, layers.

    REFERENCE is a registry reference or a local archive or layout."""
    exclusive(raw, as_json, template)
    info = _manifest(reference, platform, connection)
    _built_note(info)
    if raw:
        _write_raw(info.raw)
    elif as_json or template:
        emit(views.manifest_json(info), template)
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
@json_option
@format_option
@connection_options
def config_command(reference: str, platform: str | None, raw: bool, as_json: bool,
                   template: str | None, connection: Connection) -> None:
    """Print the image config of REFERENCE (indented; --raw for the exact bytes).

    REFERENCE is a registry reference or a local archive or layout."""
    exclusive(raw, as_json, template)
    place, wanted = _where(reference), _parse_platform(platform)
    if isinstance(place, LocalLocation):
        from freight.local_inspect import local_config

        info = local_config(place, platform=wanted)
    else:
        info = config(place, platform=wanted, connection=connection)
    if raw:
        _write_raw(info.raw)
    elif as_json or template:
        emit(views.config_json(info), template)
    else:
        click.echo(json.dumps(info.json(), indent=2))


@click.command("digest", epilog=epilog(
    "freight digest localhost:5000/app:1",
    "freight digest ghcr.io/org/app:1 --platform linux/amd64",
    "freight digest app.tar"))
@click.argument("reference")
@_platform
@json_option
@format_option
@connection_options
def digest_command(reference: str, platform: str | None, as_json: bool, template: str | None,
                   connection: Connection) -> None:
    """Print the digest REFERENCE resolves to (an index's own unless --platform is given).

    REFERENCE is a registry reference or a local archive or layout."""
    exclusive(False, as_json, template)
    info = _manifest(reference, platform, connection)
    _built_note(info)
    data = views.digest_json(info)
    if as_json or template:
        emit(data, template)
    else:
        click.echo(str(info.digest))


def _built_note(info: ManifestInfo) -> None:
    if info.built:
        click.echo(f"freight: note: {info.reference} holds no manifest of its own (a legacy "
                   "docker save): this one is built from its blobs as stored; a push that "
                   "compresses layers gets another digest", err=True)
