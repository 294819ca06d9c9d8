"""`freight tag` and `freight delete`: change what a registry holds."""

from __future__ import annotations

import json

import click

from freight.cli import views
from freight.cli.formatting import epilog, json_option
from freight.cli.options import connection_options
from freight.connect import Connection
from freight.manage import delete, tag


@click.command("tag", epilog=epilog("freight tag localhost:5000/app:1 latest stable",
                                    "freight tag localhost:5000/app@sha256:… v2 --json"))
@click.argument("reference")
@click.argument("new_tags", metavar="NEWTAG...", nargs=-1, required=True)
@json_option
@connection_options
def tag_command(reference: str, new_tags: tuple[str, ...], as_json: bool,
                connection: Connection) -> None:
    """Tag the image REFERENCE with each NEWTAG in its repository; no blob moves."""
    result = tag(reference, new_tags, connection=connection)
    if as_json:
        click.echo(json.dumps(views.tag_json(result)))
        return
    for tagged in result.tags:
        click.echo(str(tagged))


@click.command("delete", epilog=epilog("freight delete localhost:5000/app:old",
                                       "freight delete --resolve localhost:5000/app:old",
                                       "freight delete localhost:5000/app@sha256:…"))
@click.argument("reference")
@click.option("--resolve", is_flag=True,
              help="For a tag: delete the manifest it points at, by digest (this removes "
                   "every tag on that manifest). For registries without tag deletion.")
@json_option
@connection_options
def delete_command(reference: str, resolve: bool, as_json: bool,
                   connection: Connection) -> None:
    """Delete REFERENCE: a manifest (REPO@sha256:…) or a tag (REPO:TAG).

    A tag is deleted with OCI tag deletion; if the registry does not support it (such as
    distribution 2.8), the error names the digest to delete instead, or use --resolve.
    """
    result = delete(reference, resolve=resolve, connection=connection)
    click.echo(json.dumps(views.delete_json(result)) if as_json else views.delete_line(result))
