"""`freight tags` and `freight catalog`: what a registry lists, page by page.

Apart from cli/inspect.py so that a listing loads no manifest model (start-up is part of
every command).
"""

from __future__ import annotations

from typing import Any

import click

from freight.cli.formatting import emit, epilog, exclusive, format_option, json_option, print_rows
from freight.cli.options import connection_options
from freight.connect import Connection
from freight.listings import DEFAULT_PAGE_SIZE, Catalog, TagList, catalog, tags

_limit = click.option("--limit", type=click.IntRange(min=1), metavar="N",
                      help="Stop after N entries.")
_page_size = click.option("--page-size", type=click.IntRange(min=1), default=DEFAULT_PAGE_SIZE,
                          show_default=True, metavar="N",
                          help="Entries asked for per request (the registry may send fewer).")


def _incomplete_note(complete: bool, limit: int | None) -> None:
    if not complete:
        click.echo(f"freight: note: stopped at --limit {limit}; there are more", err=True)


def _tags_json(result: TagList) -> dict[str, Any]:
    return {"repository": result.repository.name, "tags": list(result.tags),
            "complete": result.complete}


def _catalog_json(result: Catalog) -> dict[str, Any]:
    return {"registry": result.registry, "repositories": list(result.repositories),
            "complete": result.complete}


@click.command("tags", epilog=epilog("freight tags localhost:5000/team/app",
                                     "freight tags ghcr.io/org/app --limit 20",
                                     "freight tags docker://host/app --format "
                                     "'{repository}:{tag}'"))
@click.argument("repository")
@_limit
@_page_size
@json_option
@format_option
@connection_options
def tags_command(repository: str, limit: int | None, page_size: int, as_json: bool,
                 template: str | None, connection: Connection) -> None:
    """List the tags of REPOSITORY (REGISTRY/NAME), following the registry's pages."""
    exclusive(False, as_json, template)
    result = tags(repository, limit=limit, page_size=page_size, connection=connection)
    if as_json:
        emit(_tags_json(result))
        return
    rows = [{"tag": t, "repository": result.repository.name} for t in result.tags]
    if not print_rows(template, rows):
        for name in result.tags:
            click.echo(name)
    _incomplete_note(result.complete, limit)


@click.command("catalog", epilog=epilog("freight catalog localhost:5000",
                                        "freight catalog localhost:5000 --format '{registry}/"
                                        "{repository}'"))
@click.argument("registry")
@_limit
@_page_size
@json_option
@format_option
@connection_options
def catalog_command(registry: str, limit: int | None, page_size: int, as_json: bool,
                    template: str | None, connection: Connection) -> None:
    """List the repositories of REGISTRY (a host such as localhost:5000), page by page."""
    exclusive(False, as_json, template)
    result = catalog(registry, limit=limit, page_size=page_size, connection=connection)
    if as_json:
        emit(_catalog_json(result))
        return
    rows = [{"repository": r, "registry": result.registry} for r in result.repositories]
    if not print_rows(template, rows):
        for name in result.repositories:
            click.echo(name)
    _incomplete_note(result.complete, limit)
