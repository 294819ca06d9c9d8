"""Options shared by every command that talks to a registry.

`connection_options` gives a command one `connection` (a freight.connect.Connection);
`copy_connection_options` gives a command with two sides `source_connection` and
`connection` (the destination), with `--src-creds` / `--dest-creds` for each side and the
TLS flags for both.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from freight.connect import Connection

Command = Callable[..., Any]


def _tls_options(command: Command) -> Command:
    for option in reversed([
        click.option("--plain-http", is_flag=True, default=False,
                     help="Speak plain HTTP, never HTTPS."),
        click.option("--https", "force_https", is_flag=True, default=False,
                     help="Speak HTTPS only, even to a loopback registry (no fallback)."),
        click.option("--tls-verify", type=click.BOOL, default=True, show_default="true",
                     metavar="BOOL",
                     help="Verify TLS certificates. false also lets any registry fall "
                          "back to plain HTTP, like skopeo."),
        click.option("--insecure", is_flag=True, help="Same as --tls-verify=false."),
        click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False),
                     help="Also trust this CA certificate (PEM) for the registry's TLS."),
        click.option("--authfile", type=click.Path(dir_okay=False),
                     help="Read credentials from this docker config / auth.json only."),
    ]):
        command = option(command)
    return command


def _credential_options(command: Command) -> Command:
    for option in reversed([
        click.option("--creds", metavar="USER[:PASSWORD]",
                     help="Credentials for the registry; without :PASSWORD it is asked for "
                          "(or read from standard input when that is not a terminal)."),
        click.option("-u", "--username", help="User name for the registry."),
        click.option("--password-stdin", is_flag=True,
                     help="Read the password (for --username) from standard input."),
    ]):
        command = option(command)
    return command


def connection_options(command: Command) -> Command:
    """Add the TLS flags, --creds, -u/--username, --password-stdin and --authfile."""

    @_tls_options
    @_credential_options
    @functools.wraps(command)
    def wrapper(*args: Any, creds: str | None, username: str | None, password_stdin: bool,
                **kwargs: Any) -> Any:
        base = _base(kwargs)
        user, password = _credentials(creds, username, password_stdin, "--creds")
        kwargs["connection"] = base.with_credentials(user, password)
        return command(*args, **kwargs)

    return wrapper


def copy_connection_options(command: Command) -> Command:
    """connection_options plus --src-creds and --dest-creds; gives `source_connection`
    and `connection` (the destination). --creds and -u apply to both sides unless the
    side's own option is given."""

    @_tls_options
    @_credential_options
    @click.option("--src-creds", metavar="USER[:PASSWORD]",
                  help="Credentials for the source registry only.")
    @click.option("--dest-creds", metavar="USER[:PASSWORD]",
                  help="Credentials for the destination registry only.")
    @functools.wraps(command)
    def wrapper(*args: Any, creds: str | None, username: str | None, password_stdin: bool,
                src_creds: str | None, dest_creds: str | None, **kwargs: Any) -> Any:
        base = _base(kwargs)
        both = _credentials(creds, username, password_stdin, "--creds")
        source = _credentials(src_creds, None, False, "--src-creds") if src_creds else both
        dest = _credentials(dest_creds, None, False, "--dest-creds") if dest_creds else both
        kwargs["source_connection"] = base.with_credentials(*source)
        kwargs["connection"] = base.with_credentials(*dest)
        return command(*args, **kwargs)

    return wrapper


def _base(kwargs: dict[str, Any]) -> Connection:
    """The TLS half of a Connection, taking its options out of `kwargs`."""
    plain_http, force_https = kwargs.pop("plain_http"), kwargs.pop("force_https")
    tls_verify, insecure = kwargs.pop("tls_verify"), kwargs.pop("insecure")
    if plain_http and force_https:
        raise click.UsageError("--plain-http and --https contradict each other: give one")
    scheme = True if plain_http else (False if force_https else None)
    return Connection(scheme, insecure or not tls_verify, ca_cert=kwargs.pop("ca_cert"),
                      authfile=kwargs.pop("authfile"))


def _credentials(creds: str | None, username: str | None, from_stdin: bool,
                 flag: str) -> tuple[str | None, str | None]:
    if creds is not None and (username or from_stdin):
        raise click.UsageError(f"{flag} and --username/--password-stdin say the same thing: "
                               "give one")
    if creds is None:
        return username, read_password(username, from_stdin)
    user, colon, password = creds.partition(":")
    if not user:
        raise click.UsageError(f"{flag} needs a user name: {flag} USER[:PASSWORD]")
    return user, password if colon else ask_password(f"Password for {user}")


def read_password(username: str | None, from_stdin: bool) -> str | None:
    """The password from stdin; passwords never go on the command line."""
    if from_stdin and not username:
        raise click.UsageError("--password-stdin needs --username")
    if username and not from_stdin:
        raise click.UsageError("--username needs --password-stdin (or use --creds USER, "
                               "which asks for the password)")
    if not from_stdin:
        return None
    return sys.stdin.readline().rstrip("\r\n")


def ask_password(prompt: str) -> str:
    """Asked on a terminal (hidden), else one line of standard input."""
    if sys.stdin is not None and sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True))
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise click.UsageError(f"no password given: standard input is empty ({prompt})")
    return line.rstrip("\r\n")


def manifest_format_option(command: Command) -> Command:
    """`--manifest-format` of the commands that move images (push, pull, copy)."""
    from freight.mediatypes import MANIFEST_FORMATS

    return click.option(
        "--manifest-format", type=click.Choice(MANIFEST_FORMATS), default="keep",
        show_default=True,
        help="oci: OCI manifests (and indexes) where the source has Docker's, as skopeo's "
             "--format oci writes (skopeo and podman find an image in an OCI layout by tag "
             "only then); new digests for those. keep: as the source has them.")(command)
