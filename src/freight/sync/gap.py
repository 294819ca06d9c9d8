"""Across the gap: `write_bundle` (a sync whose target is a bundle) and `restore_bundle`
(every tag and referrer of a bundle into a registry, verified, with identical digests)."""

from __future__ import annotations

from collections.abc import Callable

from freight.connect import Connection
from freight.engine.workers import all_of
from freight.errors import RegistryError, SourceError
from freight.manifest import Descriptor, load_json
from freight.referrers import descriptor_for
from freight.remote import as_registry, as_repository
from freight.sync.bundle import REPOSITORY, BundleReader, BundleWriter
from freight.sync.carry import add_to_index
from freight.sync.config import DEFAULT_JOBS, DEFAULT_RETRIES, Config
from freight.sync.inventory import load_since
from freight.sync.run import (
    COPIED,
    FAILED,
    PLANNED,
    UNCHANGED,
    Outcome,
    Report,
    retrying,
    sync,
)
from freight.sync.store import RegistryStore
from freight.sync.treecopy import Tally, copy_tree
from freight.transport.client import RegistryClient


def write_bundle(config: Config, path: str, *, since: str | None = None,
                 jobs: int | None = None, dry_run: bool = False,
                 referrers: bool | None = None,
                 connection: Connection | None = None) -> Report:
    """Sync `config` into the bundle `path`, leaving out what `since` (a previous bundle
    or an inventory) says the far side has. Images that fail are reported; the bundle
    holds the others and its inventory says exactly what it holds; when every image
    failed, no bundle is written."""
    writer = BundleWriter(path, load_since(since) if since else None)
    try:
        report = sync(config, target=writer, jobs=jobs, dry_run=dry_run,
                      referrers=referrers, connection=connection)
    except BaseException:
        writer.abort()
        raise
    if dry_run or (report.failed and not report.count(COPIED)):
        writer.abort()  # nothing made it: no bundle rather than an empty one
    else:
        writer.finish()
    return report


def restore_bundle(path: str, registry: str, *, jobs: int | None = None,
                   dry_run: bool = False, connection: Connection | None = None) -> Report:
    """Push everything in the bundle to `registry`: tags first, then untagged roots
    (referrers, images by digest); each is checked at the registry afterwards. A path
    after the host (`registry.lan:5000/mirror`) goes before every repository restored."""
    host, prefix = _target(registry)
    reader = BundleReader(path)
    jobs = jobs or DEFAULT_JOBS
    client = (connection or Connection()).client(host, jobs=jobs)
    try:
        tagged = [e for e in reader.entries if reader.tag(e)]
        roots = [e for e in reader.entries if not reader.tag(e)]
        outcomes: list[Outcome] = []
        restore = _restorer(reader, client, dry_run, prefix)
        for group in (tagged, roots):
            outcomes += all_of([lambda e=entry: restore(e) for entry in group],  # type: ignore[misc]
                               at_once=jobs, name="freight-restore")
        return Report(tuple(outcomes))
    finally:
        client.close()
        reader.close()


def _target(registry: str) -> tuple[str, str]:
    """`REGISTRY[/PREFIX]`: the registry host, and the path to put before each repository
    (checked here, once, rather than failing every image)."""
    if registry.startswith(("http://", "https://")):
        as_registry(registry)  # refused with the name to give instead
    host, _, prefix = registry.removeprefix("docker://").partition("/")
    host, prefix = as_registry(host), prefix.strip("/")
    if prefix:
        as_repository(f"{host}/{prefix}")  # a tag, a digest or a bad name: a usage error
    return host, prefix


def _restorer(reader: BundleReader, client: RegistryClient, dry_run: bool,
              prefix: str) -> Callable[[Descriptor], Outcome]:
    def one(entry: Descriptor) -> Outcome:
        tag = reader.tag(entry)
        repository = reader.repository(entry) or ""
        into = f"{prefix}/{repository}" if prefix and repository else repository
        at = f":{tag}" if tag else f"@{entry.digest}"
        where, dst = f"{reader.path}:{repository}{at}", f"{client.host}/{into}{at}"
        return retrying(lambda attempt: _restore_one(reader, client, entry, into, where, dst,
                                                     dry_run, attempt),
                        lambda error, attempt: Outcome(where, dst, FAILED, str(entry.digest),
                                                       attempts=attempt, error=error),
                        DEFAULT_RETRIES)

    return one


def _restore_one(reader: BundleReader, client: RegistryClient, entry: Descriptor, into: str,
                 where: str, dst_name: str, dry_run: bool, attempt: int) -> Outcome:
    tag = reader.tag(entry)
    repository = reader.repository(entry)
    if not repository:
        raise SourceError(f"{where}: the index entry names no repository (neither "
                          f"{REPOSITORY} nor io.containerd.image.name)")
    src, dst = reader.store(repository), RegistryStore(client, into, push=True)
    reference = tag or str(entry.digest)
    have = dst.head_manifest(reference)
    if have is not None and have.digest == entry.digest:
        return Outcome(where, dst_name, UNCHANGED, str(entry.digest), attempts=attempt)
    if dry_run:
        return Outcome(where, dst_name, PLANNED, str(entry.digest), attempts=attempt)
    tally = Tally()
    stored = copy_tree(src, dst, entry.digest, tag=tag, tally=tally)
    raw, kind = src.get_manifest(str(entry.digest))
    subject = load_json(raw, "manifest").get("subject")
    if tag is None and isinstance(subject, dict) and stored.subject is None:
        add_to_index(dst, Descriptor.from_json(subject, "subject").digest,
                     [descriptor_for(raw, kind)])
    after = dst.head_manifest(reference)
    if after is None or after.digest != entry.digest:
        raise RegistryError(f"{dst_name} is {after.digest if after else 'missing'} after the "
                            f"restore, not {entry.digest}")
    return Outcome(where, dst_name, COPIED, str(entry.digest), tally.blobs, tally.bytes,
                   attempts=attempt)
