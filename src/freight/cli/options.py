"""Options shared by every command that talks to a registry."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import click

from freight.connect import Connection


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --plain-http, --insecure, --ca-cert, -u/--username, --password-stdin."""

    @click.option("--plain-http", is_flag=True, default=None,
                  help="Speak HTTP, not HTTPS (automatic for localhost and 127.0.0.0/8).")
    @click.option("--insecure", is_flag=True, help="Do not verify TLS certificates.")
    @click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False),
                  help="Also trust this CA certificate (PEM) for the registry's TLS.")
    @click.option("-u", "--username", help="User name for the registry.")
    @click.option("--password-stdin", is_flag=True,
                  help="Read the password from standard input.")
    @functools.wraps(command)
    def wrapper(*args: Any, plain_http: bool | None, insecure: bool, ca_cert: str | None,
                username: str | None, password_stdin: bool, **kwargs: Any) -> Any:
        password = read_password(username, password_stdin)
        kwargs["connection"] = Connection(plain_http, insecure, username, password, ca_cert)
        return command(*args, **kwargs)

    return wrapper


def read_password(username: str | None, from_stdin: bool) -> str | None:
    """The password from stdin; passwords never go on the command line."""
    if from_stdin and not username:
        raise click.UsageError("--password-stdin needs --username")
    if username and not from_stdin:
        raise click.UsageError("--username needs --password-stdin (passwords never go in argv)")
    if not from_stdin:
        return None
    return sys.stdin.readline().rstrip("\r\n")
