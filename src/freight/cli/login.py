"""`freight login` and `freight logout`."""

from __future__ import annotations

import sys

import click

from freight.cli.formatting import epilog


@click.command("login", epilog=epilog(
    "freight login ghcr.io -u me            (asks for the password)",
    "echo \"$TOKEN\" | freight login ghcr.io -u me --password-stdin",
    "freight login localhost:5000 --authfile ./auth.json"))
@click.argument("registry")
@click.option("-u", "--username", help="User name (asked for on a terminal if not given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--plain-http", is_flag=True, default=False, help="Speak plain HTTP, never HTTPS.")
@click.option("--https", "force_https", is_flag=True, default=False,
              help="Speak HTTPS only, even to a loopback registry.")
@click.option("--tls-verify", type=click.BOOL, default=True, metavar="BOOL",
              help="Verify the registry's TLS certificate (default true).")
@click.option("--insecure", is_flag=True, help="Same as --tls-verify=false.")
@click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False),
              help="Trust this CA certificate (PEM) for the registry.")
@click.option("--authfile", type=click.Path(dir_okay=False),
              help="Save the credentials in this file instead of docker's config.json.")
def login_command(registry: str, username: str | None, password_stdin: bool,
                  plain_http: bool, force_https: bool, tls_verify: bool, insecure: bool,
                  ca_cert: str | None, authfile: str | None) -> None:
    """Check credentials against REGISTRY and save them where docker keeps them."""
    from freight.transport.login import login

    if plain_http and force_https:
        raise click.UsageError("--plain-http and --https contradict each other: give one")
    username = username or _ask("Username", hide=False)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = _ask("Password", hide=True)
    scheme = True if plain_http else (False if force_https else None)
    where = login(registry, username, password, plain_http=scheme,
                  insecure=insecure or not tls_verify, ca_cert=ca_cert, config=authfile)
    click.echo(f"Login Succeeded (saved in {where})")


@click.command("logout", epilog=epilog("freight logout ghcr.io"))
@click.argument("registry")
@click.option("--authfile", type=click.Path(dir_okay=False),
              help="Remove the credentials from this file instead of docker's config.json.")
def logout_command(registry: str, authfile: str | None) -> None:
    """Forget the saved credentials for REGISTRY."""
    from pathlib import Path

    from freight.transport.login import logout

    if logout(registry, config=Path(authfile) if authfile else None):
        click.echo(f"Removed the credentials for {registry}")
    else:
        click.echo(f"Not logged in to {registry}")


def _ask(what: str, *, hide: bool) -> str:
    if not sys.stdin.isatty():
        raise click.UsageError(f"no {what.lower()} given: use --username and --password-stdin "
                               "when standard input is not a terminal")
    return str(click.prompt(what, hide_input=hide))
