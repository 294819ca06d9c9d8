"""`freight referrers`, `freight attach`, `freight artifact push|pull`."""

from __future__ import annotations

import json

import click

from freight.cli.formatting import json_option
from freight.cli.options import connection_options
from freight.connect import Connection
from freight.referrers import Listing, Referrer

_annotation = click.option("--annotation", "-a", "annotations", multiple=True,
                           metavar="KEY=VALUE", help="A manifest annotation (repeatable).")


def _annotations(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--annotation takes KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


@click.command("referrers")
@click.argument("reference")
@click.option("--artifact-type", metavar="TYPE", help="Only referrers of this artifactType.")
@click.option("--no-recursive", is_flag=True, help="Only direct referrers.")
@json_option
@connection_options
def referrers_command(reference: str, artifact_type: str | None, no_recursive: bool,
                      as_json: bool, connection: Connection) -> None:
    """Show what refers to REFERENCE: signatures, SBOMs, attestations, as a tree."""
    from freight.referrers import find_referrers

    listing = find_referrers(reference, artifact_type=artifact_type,
                             recursive=not no_recursive, connection=connection)
    if as_json:
        click.echo(json.dumps(listing.to_json()))
        return
    click.echo(f"{reference} ({listing.subject})")
    for line in tree_lines(listing):
        click.echo(line)


def tree_lines(listing: Listing, prefix: str = "") -> list[str]:
    lines: list[str] = []
    for i, referrer in enumerate(listing.referrers):
        last = i == len(listing.referrers) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{_label(referrer)}")
        if referrer.children:
            lines += tree_lines(referrer.children, prefix + ("    " if last else "│   "))
    return lines


def _label(referrer: Referrer) -> str:
    where = f" tag {referrer.tag}" if referrer.tag else ""
    kind = referrer.artifact_type or referrer.descriptor.media_type
    return f"{kind} {referrer.descriptor.digest} ({referrer.via}{where})"


@click.command("attach")
@click.argument("reference")
@click.argument("files", nargs=-1, required=True)
@click.option("--artifact-type", required=True, metavar="TYPE",
              help="What the files are, e.g. application/spdx+json.")
@_annotation
@json_option
@connection_options
def attach_command(reference: str, files: tuple[str, ...], artifact_type: str,
                   annotations: tuple[str, ...], as_json: bool,
                   connection: Connection) -> None:
    """Attach FILE[:MEDIATYPE]... to the image REFERENCE as an OCI 1.1 referrer."""
    from freight.artifacts import attach

    result = attach(reference, artifact_type, list(files),
                    annotations=_annotations(annotations), connection=connection)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    how = "referrers API" if result.referrers_api else "referrers tag (no referrers API)"
    click.echo(f"attached {result.digest} to {result.subject} ({how})")


@click.group("artifact")
def artifact_group() -> None:
    """Push and pull non-image artifacts: plain files, Helm charts, WASM modules."""


@artifact_group.command("push")
@click.argument("reference")
@click.argument("files", nargs=-1)
@click.option("--artifact-type", metavar="TYPE",
              help="The artifactType (default application/vnd.unknown.artifact.v1).")
@click.option("--config", metavar="FILE[:MEDIATYPE]",
              help="A typed config instead of the empty one (a Helm chart's).")
@_annotation
@json_option
@connection_options
def push_command(reference: str, files: tuple[str, ...], artifact_type: str | None,
                 config: str | None, annotations: tuple[str, ...], as_json: bool,
                 connection: Connection) -> None:
    """Push FILE[:MEDIATYPE]... as the artifact REFERENCE."""
    from freight.artifacts import push_artifact

    result = push_artifact(reference, list(files), artifact_type=artifact_type,
                           config=config, annotations=_annotations(annotations),
                           connection=connection)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    click.echo(f"{result.reference}: {result.digest}")


@artifact_group.command("pull")
@click.argument("reference")
@click.argument("directory")
@json_option
@connection_options
def pull_command(reference: str, directory: str, as_json: bool,
                 connection: Connection) -> None:
    """Write the files of the artifact REFERENCE into DIRECTORY (by their titles)."""
    from freight.artifacts import pull_artifact

    paths = pull_artifact(reference, directory, connection=connection)
    if as_json:
        click.echo(json.dumps({"files": [str(p) for p in paths]}))
        return
    for path in paths:
        click.echo(str(path))
