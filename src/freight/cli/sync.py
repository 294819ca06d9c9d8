"""`freight sync` (registry to registry, to a bundle, from a bundle) and `freight inventory`."""

from __future__ import annotations

import json
import sys

import click

from freight.cli.formatting import human_size
from freight.cli.options import connection_options
from freight.connect import Connection
from freight.errors import EXIT_REGISTRY, FreightError
from freight.sync.run import Outcome, Report


class SyncIncomplete(FreightError):
    """Some images failed; the others were synced (the table says which)."""

    exit_code = EXIT_REGISTRY


@click.command("sync")
@click.argument("config", required=False)
@click.argument("registry", required=False)
@click.option("--jobs", "-j", type=click.IntRange(min=1), metavar="N",
              help="Images copied at once (default: the config's, else 4).")
@click.option("--dry-run", is_flag=True, help="Say what would be copied; copy nothing.")
@click.option("--no-referrers", is_flag=True,
              help="Leave signatures, SBOMs and attestations behind.")
@click.option("--to", "bundle_out", metavar="BUNDLE.tar",
              help="Write everything into one bundle file instead of a registry.")
@click.option("--since", metavar="BUNDLE.tar|INVENTORY.json",
              help="With --to: leave out what the far side has (a previous bundle, or "
                   "`freight inventory` output).")
@click.option("--from", "bundle_in", metavar="BUNDLE.tar",
              help="Restore a bundle (or any named OCI layout) into REGISTRY (give REGISTRY "
                   "instead of CONFIG).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@connection_options
def sync_command(config: str | None, registry: str | None, jobs: int | None, dry_run: bool,
                 no_referrers: bool, bundle_out: str | None, since: str | None,
                 bundle_in: str | None, as_json: bool, connection: Connection) -> None:
    """Mirror the images CONFIG lists (with their referrers) to a registry or a bundle;
    or restore a bundle: `freight sync --from BUNDLE.tar REGISTRY[/PREFIX]`."""
    if bundle_in:
        report = _restore(bundle_in, registry or config, jobs, dry_run, connection)
    else:
        report = _sync(config, registry, bundle_out, since, jobs, dry_run, no_referrers,
                       connection)
    if as_json:
        click.echo(json.dumps(report.to_json()))
    else:
        for line in table(report):
            click.echo(line)
    if report.failed == len(report.outcomes):
        raise SyncIncomplete(f"every image failed ({report.failed}); nothing was tagged")
    if report.failed:
        raise SyncIncomplete(f"{report.failed} of {len(report.outcomes)} images failed; "
                             "the others were synced")


def _sync(config: str | None, extra: str | None, bundle_out: str | None, since: str | None,
          jobs: int | None, dry_run: bool, no_referrers: bool,
          connection: Connection) -> Report:
    from freight.sync import config as cfg
    from freight.sync.run import sync

    if not config or extra:
        raise click.UsageError("give one CONFIG file (REGISTRY only goes with --from)")
    if since and not bundle_out:
        raise click.UsageError("--since goes with --to BUNDLE")
    loaded = cfg.load(config)
    if bundle_out is None:
        return sync(loaded, jobs=jobs, dry_run=dry_run,
                    referrers=False if no_referrers else None, connection=connection,
                    on_done=_note if sys.stderr.isatty() else None)
    from freight.sync.gap import write_bundle

    return write_bundle(loaded, bundle_out, since=since, jobs=jobs, dry_run=dry_run,
                        referrers=False if no_referrers else None, connection=connection)


def _note(outcome: Outcome) -> None:
    """One line per finished image on a terminal: a long sync is not silent until the end."""
    click.echo(f"freight: {outcome.status}: {outcome.source}", err=True)


def _restore(bundle: str, registry: str | None, jobs: int | None, dry_run: bool,
             connection: Connection) -> Report:
    from freight.sync.gap import restore_bundle

    if not registry:
        raise click.UsageError("--from BUNDLE needs the REGISTRY to restore into")
    return restore_bundle(bundle, registry, jobs=jobs, dry_run=dry_run, connection=connection)


def table(report: Report) -> list[str]:
    """The summary: one row per image, failures with their reason, then the totals."""
    rows = [("STATUS", "SOURCE", "DESTINATION", "DIGEST", "BLOBS", "REFERRERS")]
    for o in report.outcomes:
        rows.append((o.status, o.source, o.destination,
                     o.digest.split(":")[-1][:12] if o.digest else "-",
                     f"{o.blobs} ({human_size(o.bytes)})" if o.blobs else "0",
                     str(o.referrers)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    lines += [f"  {o.source}: {o.error}" for o in report.outcomes if o.error]
    data = report.to_json()
    lines.append(f"{data['copied']} copied, {data['unchanged']} unchanged, "
                 f"{data['planned']} planned, {data['failed']} failed; "
                 f"{data['blobs']} blobs ({human_size(data['bytes'])}) sent")
    return lines


@click.command("inventory")
@click.argument("registry")
@click.option("--output", "-o", metavar="FILE", help="Write here instead of standard output.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=4, show_default=True,
              metavar="N", help="Repositories read at once.")
@connection_options
def inventory_command(registry: str, output: str | None, jobs: int,
                      connection: Connection) -> None:
    """What REGISTRY holds (tags, manifests, blobs), for `freight sync --to B --since`."""
    from freight.sync.inventory import take_inventory

    text = json.dumps(take_inventory(registry, jobs=jobs, connection=connection).to_json())
    if output:
        with open(output, "w") as f:
            f.write(text + "\n")
    else:
        click.echo(text)
