"""The `freight` command: thin click commands over the library.

Every FreightError becomes one line on stderr and its own exit code; no traceback reaches a
user (set FREIGHT_DEBUG=1 to see one).
"""

from __future__ import annotations

import os
import signal
import sys

from freight.cli import signals

if os.path.basename(sys.argv[0]) in ("freight", "__main__.py"):  # the command, not a test
    signals.early()

import importlib
from typing import Any

import click

from freight import __version__
from freight.errors import EXIT_INTERNAL, FreightError

# Optional imports this process never uses, made to fail (a None entry in sys.modules):
# httpcore imports trio and anyio whenever they are installed, only for async clients
# (~55 ms); it catches the ImportError. The command line is synchronous, and `freight
# serve` runs on asyncio alone. Library users are not affected.
for _unused in ("trio", "anyio"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]

# Each command's module loads only when that command runs (or for --help).
_COMMANDS = {
    "push": ("freight.cli.push", "push_command"),
    "pull": ("freight.cli.pull", "pull_command"),
    "copy": ("freight.cli.pull", "copy_command"),
    "tags": ("freight.cli.listings", "tags_command"),
    "catalog": ("freight.cli.listings", "catalog_command"),
    "manifest": ("freight.cli.inspect", "manifest_command"),
    "config": ("freight.cli.inspect", "config_command"),
    "digest": ("freight.cli.inspect", "digest_command"),
    "ls": ("freight.cli.ls", "ls_command"),
    "blob": ("freight.cli.blob", "blob_group"),
    "auth": ("freight.cli.auth", "auth_group"),
    "tag": ("freight.cli.manage", "tag_command"),
    "delete": ("freight.cli.manage", "delete_command"),
    "login": ("freight.cli.login", "login_command"),
    "logout": ("freight.cli.login", "logout_command"),
    "serve": ("freight.cli.serve", "serve"),
    "gc": ("freight.cli.serve", "gc"),
    "referrers": ("freight.cli.artifacts", "referrers_command"),
    "attach": ("freight.cli.artifacts", "attach_command"),
    "artifact": ("freight.cli.artifacts", "artifact_group"),
    "sync": ("freight.cli.sync", "sync_command"),
    "inventory": ("freight.cli.sync", "inventory_command"),
}


# the commands that move images: what an interrupt leaves (and does not) is worth saying
_TRANSFERS = frozenset({"push", "pull", "copy", "sync"})


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attribute = _COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with signals.routed():
                return super().invoke(ctx)
        except FreightError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt as exc:
            name = "terminated" if isinstance(exc, signals.Stopped) and \
                exc.signum == signal.SIGTERM else "interrupted"
            if ctx.invoked_subcommand in _TRANSFERS:
                name += ("; nothing was tagged for the image in progress, and temporary "
                         "files are removed")
            _fail(name, signals.exit_code(exc))
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
@click.version_option(__version__, package_name="freight")  # not read from metadata: ~25 ms
@click.option("-v", "--verbose", is_flag=True,
              help="Print every HTTP request and its status on stderr (secrets redacted).")
@click.option("--debug", is_flag=True,
              help="As --verbose, with headers (secrets redacted) and tracebacks.")
def main(verbose: bool, debug: bool) -> None:
    """Move container images between docker save archives, OCI layouts and registries.

    \b
    Exit codes: 0 done, 1 internal error, 2 usage, 3 bad input, 4 registry error,
    5 network, 6 auth, 7 not found, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
    Shell completion: eval "$(_FREIGHT_COMPLETE=bash_source freight)" (see README).
    """
    if verbose or debug or "freight.transport.log" in sys.modules:  # no import if unused
        from freight.transport import log

        log.set_level(log.DEBUG if debug else log.VERBOSE if verbose else log.QUIET)
    if debug:
        os.environ["FREIGHT_DEBUG"] = "1"
