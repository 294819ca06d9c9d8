"""`freight auth token`: a bearer token for scripts (curl -H "Authorization: Bearer …")."""

from __future__ import annotations

import click

from freight.cli.formatting import epilog
from freight.cli.options import connection_options
from freight.connect import Connection


@click.group("auth")
def auth_group() -> None:
    """Registry authentication helpers."""


@auth_group.command("token", epilog=epilog(
    "freight auth token ghcr.io/org/app",
    'curl -H "Authorization: Bearer $(freight auth token --push reg.example/app)" …'))
@click.argument("repository")
@click.option("--push", is_flag=True, help="Ask for pull and push, not only pull.")
@connection_options
def token_command(repository: str, push: bool, connection: Connection) -> None:
    """Print a bearer token for REPOSITORY from the registry's token server (with the
    credentials freight would use: --creds, or what docker login saved)."""
    from freight.blobs import bearer_token

    click.echo(bearer_token(repository, push=push, connection=connection))
