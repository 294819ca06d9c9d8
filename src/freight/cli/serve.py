"""`freight serve` and `freight gc`: thin shells over freight.server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from freight.errors import FreightError

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_ROOT = click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Where the registry keeps its content [default: per-user data dir].")
_STORAGE = click.option("--storage", metavar="s3://BUCKET/PREFIX", default=None,
                        help="Keep the content in S3 instead of --root (endpoint and "
                             "credentials from the AWS_* variables or AWS config files).")
_GRACE = click.option("--gc-grace", type=click.FloatRange(min=0), default=3600.0,
                      show_default=True, help="Seconds a new blob or manifest is safe from gc.")
_UNTAGGED = click.option("--gc-untagged", is_flag=True,
                         help="gc also removes manifests no tag reaches.")
_KEEP = click.option("--gc-keep", "keep", multiple=True, metavar="PATTERN=N",
                     help="gc keeps only the newest N tags matching PATTERN (repeatable).")


def _policy(grace: float, untagged: bool, keep: tuple[str, ...], dry_run: bool = False) -> Any:
    from freight.server.gc import Policy, Retention

    return Policy(blob_grace=grace, untagged=untagged, dry_run=dry_run,
                  retention=tuple(Retention.parse(rule) for rule in keep))


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A byte count: 1048576, 512K, 100M, 10G, 1T (powers of 1024)."""
    if value is None:
        return None
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    number = text.rstrip("KMGT")
    unit = text[len(number):]
    if not (number.isascii() and number.isdigit() and len(number) <= 19) \
            or unit not in _UNITS or int(number) == 0:
        raise click.BadParameter(f"{value!r} is not a size: use e.g. 1048576, 512K, 100M or 10G")
    return int(number) * _UNITS[unit]


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
@click.option("--access-log", type=click.Choice(["json", "off"]), default="json",
              show_default=True, help="One JSON line per request on stderr, or none.")
@click.option("--max-uploads", type=click.IntRange(min=1), default=None, metavar="N",
              help="Upload sessions in progress at once; more get 429 [default: no limit].")
@click.option("--max-blob-size", callback=_size, default=None, metavar="SIZE",
              help="Largest blob accepted, e.g. 10G; larger get 413 [default: no limit].")
@click.option("--header-timeout", type=click.FloatRange(min=0.1), default=10.0,
              show_default=True, metavar="SECONDS",
              help="Time a client has to send a request's headers.")
@_STORAGE
@click.option("--s3-redirect", is_flag=True, help="Redirect blob GETs to presigned S3 URLs.")
@click.option("--gc-schedule", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Collect garbage every SECONDS while serving.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="N", help="Serve from N processes on the one port and store.")
@_GRACE
@_UNTAGGED
@_KEEP
def serve(root: Path | None, address: str, htpasswd: Path | None, read_only: bool,
          tls_cert: Path | None, tls_key: Path | None, run_gc: bool, access_log: str,
          max_uploads: int | None, max_blob_size: int | None, header_timeout: float,
          storage: str | None, s3_redirect: bool, gc_schedule: float | None, gc_grace: float,
          workers: int, gc_untagged: bool, keep: tuple[str, ...]) -> None:
    """Run the embedded OCI registry until Ctrl-C or SIGTERM.

    Besides the v2 API it answers /healthz, /readyz and /metrics (Prometheus).
    Exit codes: 0 after a graceful shutdown, 2 for bad options (address, busy port, a --root
    that holds something else than a registry).
    """
    from freight.server.runner import run

    try:
        run(root, address, htpasswd=htpasswd, read_only=read_only, tls_cert=tls_cert,
            tls_key=tls_key, gc=run_gc, access_log=access_log, max_uploads=max_uploads,
            max_blob_size=max_blob_size, header_timeout=header_timeout, storage_url=storage,
            s3_redirect=s3_redirect, gc_every=gc_schedule,
            gc_policy=_policy(gc_grace, gc_untagged, keep), workers=workers)
    except (FreightError, OSError) as exc:
        _fail(exc)
    except KeyboardInterrupt as exc:  # a signal during the start-up checks: nothing served
        from freight.cli.signals import exit_code

        click.echo("freight: stopped before the registry started serving", err=True)
        sys.exit(exit_code(exc))


@click.command()
@_ROOT
@_STORAGE
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@_GRACE
@click.option("--upload-ttl", type=click.FloatRange(min=0), default=7 * 24 * 3600.0,
              show_default=True, help="Seconds after which an idle upload session goes.")
@_UNTAGGED
@_KEEP
def gc(root: Path | None, storage: str | None, dry_run: bool, gc_grace: float,
       upload_ttl: float, gc_untagged: bool, keep: tuple[str, ...]) -> None:
    """Remove what no tag or manifest needs; safe while the registry serves.

    Exit code 2 when --root holds something else than a registry (a new or empty directory
    is fine).
    """
    from freight.server.gc import collect
    from freight.server.runner import check_root, default_root
    from freight.server.storage import open_storage

    try:
        if storage is None:
            check_root(root or default_root())
        policy = _policy(gc_grace, gc_untagged, keep, dry_run)
        done = collect(open_storage(storage or Path(root or default_root())),
                       blob_grace=policy.blob_grace, upload_ttl=upload_ttl, dry_run=dry_run,
                       untagged=policy.untagged, retention=policy.retention)
    except (FreightError, OSError) as exc:
        _fail(exc)
    if dry_run:
        for line in done.removed:
            click.echo(line)
    click.echo(done.summary(dry_run=dry_run))
