"""`freight login` and `freight logout`."""

from __future__ import annotations

import sys

import click


@click.command("login")
@click.argument("registry")
@click.option("-u", "--username", help="User name (asked for on a terminal if not given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--plain-http", is_flag=True, default=None,
              help="Speak HTTP, not HTTPS (automatic for localhost and 127.0.0.0/8).")
@click.option("--insecure", is_flag=True, help="Do not verify the registry's TLS certificate.")
@click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False),
              help="Trust this CA certificate (PEM) for the registry.")
def login_command(registry: str, username: str | None, password_stdin: bool,
                  plain_http: bool | None, insecure: bool, ca_cert: str | None) -> None:
    """Check credentials against REGISTRY and save them where docker keeps them."""
    from freight.transport.login import login

    username = username or _ask("Username", hide=False)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = _ask("Password", hide=True)
    where = login(registry, username, password, plain_http=plain_http, insecure=insecure,
                  ca_cert=ca_cert)
    click.echo(f"Login Succeeded (saved in {where})")


@click.command("logout")
@click.argument("registry")
def logout_command(registry: str) -> None:
    """Forget the saved credentials for REGISTRY."""
    from freight.transport.login import logout

    if logout(registry):
        click.echo(f"Removed the credentials for {registry}")
    else:
        click.echo(f"Not logged in to {registry}")


def _ask(what: str, *, hide: bool) -> str:
    if not sys.stdin.isatty():
        raise click.UsageError(f"no {what.lower()} given: use --username and --password-stdin "
                               "when standard input is not a terminal")
    return str(click.prompt(what, hide_input=hide))
