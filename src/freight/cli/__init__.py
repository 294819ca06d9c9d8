"""The `freight` command: thin click commands over the library.

Every FreightError becomes one line on stderr and its own exit code; no traceback reaches a
user (set FREIGHT_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from freight.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, FreightError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FreightError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted; nothing was tagged for the image in progress", EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("FREIGHT_DEBUG"):
                raise
            _fail(f"internal error: {type(exc).__name__}: {exc} (please report this; "
                  "FREIGHT_DEBUG=1 shows details)", EXIT_INTERNAL)


def _fail(message: str, code: int) -> None:
    click.echo(f"freight: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="freight")
def main() -> None:
    """Move container images between docker save archives, OCI layouts and registries."""


def _register() -> None:
    from freight.cli.inspect import (
        catalog_command,
        config_command,
        digest_command,
        manifest_command,
        tags_command,
    )
    from freight.cli.manage import delete_command, tag_command
    from freight.cli.pull import copy_command, pull_command
    from freight.cli.push import push_command

    main.add_command(push_command)
    for command in (tags_command, catalog_command, manifest_command, config_command,
                    digest_command, tag_command, delete_command):
        main.add_command(command)
    main.add_command(pull_command)
    main.add_command(copy_command)
    from freight.cli.login import login_command, logout_command
    main.add_command(login_command)
    main.add_command(logout_command)
    from freight.cli.serve import gc, serve

    main.add_command(serve)
    main.add_command(gc)


_register()
