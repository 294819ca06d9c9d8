"""`freight blob get` and `freight blob put`: one blob at a time, for scripts."""

from __future__ import annotations

import json
import sys

import click

from freight.cli.formatting import epilog
from freight.cli.options import connection_options
from freight.connect import Connection


@click.group("blob")
def blob_group() -> None:
    """Download or upload a single blob."""


@blob_group.command("get", epilog=epilog(
    "freight blob get localhost:5000/app@sha256:… -o layer.tar.gz",
    "freight blob get localhost:5000/app@sha256:… | tar tz"))
@click.argument("reference", metavar="REPO@DIGEST")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (verified first: nothing is left there on failure) "
                   "instead of standard output.")
@connection_options
def blob_get(reference: str, output: str | None, connection: Connection) -> None:
    """Download the blob REPO@DIGEST, verifying its digest while streaming.

    On standard output the bytes are written as they arrive; a digest mismatch is then an
    error at the end (exit 4). With -o the file appears only once the blob verified."""
    from freight.blobs import get_blob

    get_blob(reference, output if output else sys.stdout.buffer, connection=connection)


@blob_group.command("put", epilog=epilog(
    "freight blob put localhost:5000/app ./config.json",
    "freight blob put localhost:5000/app layer.tar.gz --json"))
@click.argument("repository")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the digest.")
@connection_options
def blob_put(repository: str, file: str, as_json: bool, connection: Connection) -> None:
    """Upload FILE as a blob of REPOSITORY and print its digest (no upload when the
    registry has it already)."""
    from freight.blobs import put_blob

    digest, size, uploaded = put_blob(repository, file, connection=connection)
    if as_json:
        click.echo(json.dumps({"digest": str(digest), "size": size, "uploaded": uploaded}))
    else:
        click.echo(str(digest))
