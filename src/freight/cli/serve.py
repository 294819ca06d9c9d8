"""`freight serve` and `freight gc`: thin shells over freight.server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from freight.errors import FreightError

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_ROOT = click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Where the registry keeps its content [default: per-user data dir].")


def _fail(exc: FreightError | OSError) -> NoReturn:
    """One line on stderr, no traceback."""
    message = exc.message if isinstance(exc, FreightError) else f"{exc.strerror}: {exc.filename}"
    click.echo(f"freight: {message}", err=True)
    sys.exit(exc.exit_code if isinstance(exc, FreightError) else 1)


@click.command()
@_ROOT
@click.option("--address", default="127.0.0.1:5000", show_default=True, help="HOST:PORT.")
@click.option("--htpasswd", type=_FILE, help="Require Basic auth (bcrypt htpasswd file).")
@click.option("--read-only", is_flag=True, help="Refuse every write (405 UNSUPPORTED).")
@click.option("--tls-cert", type=_FILE, help="Serve HTTPS with this certificate (PEM).")
@click.option("--tls-key", type=_FILE, help="Private key of --tls-cert (PEM).")
@click.option("--gc", "run_gc", is_flag=True, help="Collect garbage before serving.")
def serve(root: Path | None, address: str, htpasswd: Path | None, read_only: bool,
          tls_cert: Path | None, tls_key: Path | None, run_gc: bool) -> None:
    """Run the embedded OCI registry until Ctrl-C or SIGTERM."""
    from freight.server.runner import run

    try:
        run(root, address, htpasswd=htpasswd, read_only=read_only, tls_cert=tls_cert,
            tls_key=tls_key, gc=run_gc)
    except (FreightError, OSError) as exc:
        _fail(exc)


@click.command()
@_ROOT
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
def gc(root: Path | None, dry_run: bool) -> None:
    """Remove blobs no manifest references and stale upload sessions."""
    from freight.server.gc import collect
    from freight.server.runner import default_root

    try:
        done = collect(root or default_root(), dry_run=dry_run)
    except (FreightError, OSError) as exc:
        _fail(exc)
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {done.blobs} blobs ({done.bytes} bytes), {done.links} links, "
               f"{done.uploads} upload sessions, {done.temp_files} temporary files")
