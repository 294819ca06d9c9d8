"""Running a sync: plan the (repository, tag) pairs, copy them in parallel, report.

Each image is one task: HEAD the source tag, HEAD the destination tag, and when the
digests are equal nothing else is asked about the image (no manifest GET, no blob
request); otherwise the manifest tree is copied byte for byte, sending only the blobs the
destination lacks. Then its referrers are found and carried (sync/carry.py). A task that
fails is retried when the failure is retryable; a task that still fails is reported and
the others go on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from freight import mediatypes as mt
from freight.connect import Connection
from freight.digest import Digest
from freight.distribution import urls
from freight.engine.workers import all_of
from freight.errors import FreightError, NotFound, UsageError
from freight.manifest import Index, Platform
from freight.referrers import PLATFORM_LOOKUPS, Finder, Listing
from freight.sources.listing import list_all
from freight.sync.carry import carry
from freight.sync.config import Config, Entry
from freight.sync.filters import select
from freight.sync.store import Found, Readable, RegistryStore, Store
from freight.sync.treecopy import BLOB_JOBS, Tally, copy_tree
from freight.transport.client import RegistryClient

if TYPE_CHECKING:  # layouts load only for entries that read one (start-up stays short)
    from freight.sync.bundle import BundleReader
    from freight.sync.local import Referrers

RETRY_PAUSE = 0.5  # seconds, times the attempt number, before an image is tried again
CATALOG_PAGE = 1000  # repositories asked for per catalog page
TAG_PAGE = 1000  # tags asked for per page (ECR's maximum; registries that ignore n send all)
COPIED, UNCHANGED, PLANNED, FAILED = "copied", "unchanged", "planned", "failed"


@dataclass(frozen=True)
class Task:
    registry: str
    repository: str
    reference: str  # a tag, or a digest for `digests:` entries
    destination: str  # repository at the destination
    platforms: tuple[Platform, ...] = ()  # of an index: () all, else those (see _narrowed)
    layout: str | None = None  # read from this OCI layout, not from `registry`

    @property
    def source(self) -> str:
        sep = "@" if ":" in self.reference else ":"
        where = f"{self.layout}:" if self.layout else f"{self.registry}/"
        return f"{where}{self.repository}{sep}{self.reference}"

    @property
    def tag(self) -> str | None:
        return None if ":" in self.reference else self.reference


@dataclass(frozen=True)
class Outcome:
    source: str
    destination: str
    status: str
    digest: str | None = None
    blobs: int = 0
    bytes: int = 0
    referrers: int = 0
    attempts: int = 1
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    outcomes: tuple[Outcome, ...]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    def to_json(self) -> dict[str, Any]:
        totals = {s: self.count(s) for s in (COPIED, UNCHANGED, PLANNED, FAILED)}
        return {"images": [o.to_json() for o in self.outcomes], **totals,
                "blobs": sum(o.blobs for o in self.outcomes),
                "bytes": sum(o.bytes for o in self.outcomes)}


class Target(Protocol):
    """Where a sync writes: a registry, or a bundle being written."""

    name: str

    def store(self, repository: str) -> Store: ...


class Clients:
    """One client per registry host for the whole run, shared by every thread."""

    def __init__(self, connection: Connection, jobs: int) -> None:
        self._connection, self._jobs = connection, jobs
        self._made: dict[str, RegistryClient] = {}
        self._finders: dict[tuple[str, str], Finder] = {}
        self._tags: dict[tuple[str, str], list[str]] = {}  # planning is single-threaded
        self._layouts: dict[str, tuple[BundleReader, Referrers]] = {}
        self._lock = threading.Lock()

    def get(self, registry: str) -> RegistryClient:
        with self._lock:
            if registry not in self._made:
                # room for every blob copy at once, each holding a GET and a PUT when
                # source and destination share the host: a smaller pool can deadlock
                self._made[registry] = self._connection.client(registry,
                                                               jobs=self._jobs * BLOB_JOBS)
            return self._made[registry]

    def finder(self, registry: str, repository: str) -> Finder:
        client = self.get(registry)
        listed = self._tags.get((registry, repository))
        known = frozenset(listed) if listed is not None else None
        with self._lock:
            return self._finders.setdefault((registry, repository),
                                            Finder(client, repository, known_tags=known))

    def layout(self, path: str) -> tuple[BundleReader, Referrers]:
        """The layout at `path`, opened once per run."""
        from freight.sync.bundle import BundleReader
        from freight.sync.local import Referrers

        with self._lock:
            if path not in self._layouts:
                reader = BundleReader(path, legacy=True)
                self._layouts[path] = (reader, Referrers(reader))
            return self._layouts[path]

    def tags(self, registry: str, repository: str) -> list[str]:
        """The repository's tags, listed once per run (several entries may filter one
        repository differently)."""
        key = (registry, repository)
        if key not in self._tags:
            self._tags[key] = _tags(self.get(registry), repository)
        return self._tags[key]

    def close(self) -> None:
        for client in self._made.values():
            client.close()
        for reader, _ in self._layouts.values():
            reader.close()


class RegistryTarget:
    def __init__(self, client: RegistryClient) -> None:
        self.client, self.name = client, client.host

    def store(self, repository: str) -> Store:
        return RegistryStore(self.client, repository, push=True)


@dataclass(frozen=True)
class Options:
    jobs: int
    retries: int
    referrers: bool
    dry_run: bool = False


def plan(config: Config, clients: Clients) -> tuple[list[Task], list[Outcome]]:
    """The tasks of every entry; an entry whose listing fails is one failed outcome."""
    tasks: list[Task] = []
    failures: list[Outcome] = []
    for entry in config.entries:
        try:
            tasks += _entry_tasks(entry, config, clients)
        except FreightError as exc:
            where = f"{entry.registry}/{entry.repository or '*'}"
            failures.append(Outcome(where, "", FAILED, error=str(exc)))
    return list(dict.fromkeys(tasks)), failures


def _entry_tasks(entry: Entry, config: Config, clients: Clients) -> list[Task]:
    if entry.layout is not None:
        return _layout_tasks(entry, config, clients, entry.layout)
    client = clients.get(entry.registry)
    out = []
    for repository in _repositories(entry, client):
        destination = entry.destination or config.rewrite.apply(repository)
        available = [] if entry.filters.explicit_only else clients.tags(entry.registry,
                                                                         repository)
        refs = [*select(available, entry.filters), *map(str, entry.filters.digests)]
        out += [Task(entry.registry, repository, ref, destination, entry.platforms)
                for ref in refs]
    return out


def _layout_tasks(entry: Entry, config: Config, clients: Clients, path: str) -> list[Task]:
    reader, _ = clients.layout(path)
    tags: dict[str, list[str]] = {}
    for item in reader.entries:
        repository, tag = reader.repository(item), reader.tag(item)
        if repository and tag:
            tags.setdefault(repository, []).append(tag)
    out = []
    for repository, available in sorted(tags.items()):
        if entry.repositories and not any(p.search(repository) for p in entry.repositories):
            continue
        refs = [*select(available, entry.filters), *map(str, entry.filters.digests)]
        out += [Task("", repository, ref, config.rewrite.apply(repository), entry.platforms,
                     path) for ref in refs]
    return out


def _tags(client: RegistryClient, repository: str) -> list[str]:
    names, _ = list_all(client, urls.tags_path(repository), "tags", limit=None,
                        page_size=TAG_PAGE, what=f"listing the tags of {repository}")
    return list(names)


def _repositories(entry: Entry, client: RegistryClient) -> list[str]:
    if entry.repository is not None:
        return [entry.repository]
    names, _ = list_all(client, urls.catalog_path(), "repositories", limit=None,
                        page_size=CATALOG_PAGE, what=f"listing the catalog of {client.host}")
    return [n for n in names
            if not entry.repositories or any(p.search(n) for p in entry.repositories)]


def run(tasks: list[Task], target: Target, clients: Clients, options: Options, *,
        on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Run every task (`options.jobs` at a time); one outcome per task, in task order."""
    def one(task: Task) -> Outcome:
        outcome = _with_retries(task, target, clients, options)
        if on_done is not None:
            on_done(outcome)
        return outcome

    return all_of([lambda t=task: one(t) for task in tasks],  # type: ignore[misc]
                  at_once=options.jobs, name="freight-sync")


def _with_retries(task: Task, target: Target, clients: Clients, options: Options) -> Outcome:
    return retrying(lambda attempt: _sync_one(task, target, clients, options, attempt),
                    lambda error, attempt: Outcome(task.source, _dst_name(task, target),
                                                   FAILED, attempts=attempt, error=error),
                    options.retries)


def retrying(call: Callable[[int], Outcome], failed: Callable[[str, int], Outcome],
             retries: int) -> Outcome:
    """`call(attempt)` until it succeeds or fails for good (not retryable, or `retries`
    more tries spent); then `failed(message, attempts)`. Never raises: one image's
    failure never stops the others."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(attempt)
        except Exception as exc:
            if not (getattr(exc, "retryable", False) and attempt <= retries):
                return failed(_message(exc), attempt)
            time.sleep(RETRY_PAUSE * attempt)


def _sync_one(task: Task, target: Target, clients: Clients, options: Options,
              attempt: int) -> Outcome:
    src = _source(task, clients)
    dst = target.store(task.destination)
    found = src.head_manifest(task.reference)
    if found is None:
        raise NotFound(f"{task.source} does not exist")
    digest, built = _narrowed(src, found, task)
    have = dst.head_manifest(task.tag or str(digest))
    tally, status = Tally(), UNCHANGED
    if have is None or have.digest != digest:
        status = PLANNED if options.dry_run else COPIED
        if not options.dry_run:
            copy_tree(src, dst, digest, tag=task.tag, tally=tally, fetched=built)
    found_referrers = 0
    if options.referrers:
        subjects = [digest, *_platforms(src, digest, found, built)]
        listings = all_of([partial(_referrers, task, clients, subject) for subject in subjects],
                          at_once=PLATFORM_LOOKUPS)
        found_referrers = sum(1 for listing in listings for _ in listing.walk())
        carried = 0 if options.dry_run else \
            sum(carry(listing, src, dst, tally=tally) for listing in listings)
        if carried and status == UNCHANGED:
            status = COPIED  # the image was there; new signatures or SBOMs were not
    return Outcome(task.source, _dst_name(task, target), status, str(digest), tally.blobs,
                   tally.bytes, found_referrers, attempt)


def _referrers(task: Task, clients: Clients, subject: Digest) -> Listing:
    if task.layout:
        return clients.layout(task.layout)[1].listing(task.repository, subject)
    return clients.finder(task.registry, task.repository).find(subject)


def _platforms(src: Readable, digest: Digest, found: Found,
               built: tuple[bytes, str] | None) -> list[Digest]:
    """The manifests of an index's platforms, whose own referrers go with it (`cosign
    sign --recursive` signs each); none for a single image."""
    if built is not None:
        raw, kind = built
    elif digest == found.digest and mt.is_index(found.media_type):
        raw, kind = src.get_manifest(str(digest))
    else:
        return []
    return [child.digest for child in Index.parse(raw, kind, f"index {digest}").manifests]


def _source(task: Task, clients: Clients) -> Readable:
    if task.layout:
        from freight.sync.local import LocalStore

        return LocalStore(clients.layout(task.layout)[0], task.repository)
    return RegistryStore(clients.get(task.registry), task.repository)


def _narrowed(src: Readable, found: Found,
              task: Task) -> tuple[Digest, tuple[bytes, str] | None]:
    """What to sync of `found`: the image itself (every platform, or all it has match),
    its one child for a single platform, or for several an index of just those children
    (the source's descriptors, so the children keep their digests; built the same way on
    every run, so a re-sync finds it unchanged) with its bytes."""
    if not task.platforms or not mt.is_index(found.media_type):
        return found.digest, None
    raw, kind = src.get_manifest(str(found.digest))
    index = Index.parse(raw, kind, f"index of {task.source}")
    chosen = [c for c in index.manifests if c.platform is not None and
              any(p.matches(c.platform) for p in task.platforms)]
    if not chosen:
        wanted = ", ".join(map(str, task.platforms))
        raise NotFound(f"{task.source} has no image for {wanted}")
    if len(task.platforms) == 1:
        return chosen[0].digest, None
    if len(chosen) == len(index.manifests):
        return found.digest, (raw, kind)
    subset = Index.build(kind, chosen, index.annotations or None)
    return subset.digest, (subset.raw, kind)


def _dst_name(task: Task, target: Target) -> str:
    sep = ":" if task.tag else "@"
    return f"{target.name}/{task.destination}{sep}{task.reference}"


def _message(exc: Exception) -> str:
    if isinstance(exc, FreightError):
        return " ".join(str(exc).split())
    return f"internal error: {type(exc).__name__}: {exc}"


def sync(config: Config, *, target: Target | None = None, jobs: int | None = None,
         dry_run: bool = False, referrers: bool | None = None,
         connection: Connection | None = None,
         on_done: Callable[[Outcome], None] | None = None) -> Report:
    """Mirror what `config` lists to its destination registry (or to `target`)."""
    options = Options(jobs or config.jobs, config.retries,
                      config.referrers if referrers is None else referrers, dry_run)
    clients = Clients(connection or Connection(), options.jobs)
    try:
        if target is None:
            if config.registry is None:
                raise UsageError("the config names no destination registry; add "
                                   "`destination:` or write a bundle with --to")
            target = RegistryTarget(clients.get(config.registry))
        tasks, failures = plan(config, clients)
        return Report(tuple(failures + run(tasks, target, clients, options, on_done=on_done)))
    finally:
        clients.close()
