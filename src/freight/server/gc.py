"""Garbage collection while serving, on any `Storage`: retention, mark, sweep.

1. Retention (optional, as in zot): per repository, tags matching a pattern beyond the
   newest N go; with `untagged`, manifests no tag reaches (directly, as a child of a tagged
   index, or as a referrer of a reached manifest) go.
2. Mark: every manifest revision, with its config, layers and child manifests, is live.
3. Re-mark: the revisions and blob links are listed again, and whatever was written since
   the run started is live too. This closes the gap where a manifest PUT (or a re-push or
   mount of an existing blob) between mark and sweep referenced a blob the mark missed.
4. Sweep: blobs and links neither live nor written within `blob_grace` go. A client pushes
   layers first and the manifest that references them last, so the grace period protects
   blobs whose manifest has not arrived yet; every object's time is its last write.
   Links go first, then a last re-mark, then the bytes. A manifest PUT checks its blobs'
   links, writes its revision, and checks the links again (undoing the revision if one is
   gone): a revision written before the last re-mark keeps its blobs' bytes and gets back
   any link just removed, and one written after it finds the link removed and fails, so
   no stored manifest ever names a blob a gc took (the client uploads the blob again).

Upload sessions untouched for `upload_ttl` go too (distribution purges after a week), and
staging leftovers (temp files, interrupted multipart uploads) older than the grace period.
Several collectors may run at once (one per replica): each deletes only garbage.
distribution avoids the same race only by stopping writes (read-only mode).
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from freight.digest import Digest
from freight.errors import SourceError, UsageError
from freight.manifest import load_json
from freight.server.storage import FilesystemStorage, Stamped, Storage

DEFAULT_BLOB_GRACE = 3600.0  # an hour (zot's default): ample between a layer and its manifest
DEFAULT_UPLOAD_TTL = 7 * 24 * 3600.0  # a week, like distribution's upload purging
MAX_MANIFEST_SIZE = 4 << 20  # what the server accepts; larger objects are not manifests

log = logging.getLogger("freight.server")


@dataclass(frozen=True)
class Retention:
    """Keep the newest `keep` tags whose name matches the glob `pattern`; the rest go."""

    pattern: str
    keep: int

    @classmethod
    def parse(cls, text: str) -> Retention:
        """`PATTERN=N` (e.g. `v*=10`) or `N` (every tag)."""
        pattern, _, count = text.rpartition("=")
        if not count.isascii() or not count.isdigit():
            raise UsageError(f"invalid retention rule {text!r}: use PATTERN=N, e.g. 'v*=10'")
        return cls(pattern or "*", int(count))


@dataclass(frozen=True)
class Policy:
    blob_grace: float = DEFAULT_BLOB_GRACE
    upload_ttl: float = DEFAULT_UPLOAD_TTL
    untagged: bool = False
    retention: tuple[Retention, ...] = ()
    dry_run: bool = False


@dataclass
class Collected:
    """What a collection removed (or would remove, on a dry run), counted and listed."""

    blobs: int = 0
    bytes: int = 0
    links: int = 0
    uploads: int = 0
    temp_files: int = 0
    tags: int = 0
    manifests: int = 0
    removed: list[str] = field(default_factory=list)

    def summary(self, *, dry_run: bool) -> str:
        verb = "would remove" if dry_run else "removed"
        return (f"{verb} {self.blobs} blobs ({self.bytes} bytes), {self.links} links, "
                f"{self.tags} tags, {self.manifests} manifests, {self.uploads} upload "
                f"sessions, {self.temp_files} temporary files")


def collect(target: Storage | Path, *, blob_grace: float = DEFAULT_BLOB_GRACE,
            upload_ttl: float = DEFAULT_UPLOAD_TTL, dry_run: bool = False,
            untagged: bool = False, retention: Iterable[Retention] = (),
            now: float | None = None) -> Collected:
    """Collect garbage in `target` (a Storage, or a filesystem root); see the module.

    `now` (epoch seconds) is the time ages are measured from: tests pass a later one.
    """
    storage: Storage = FilesystemStorage(target) if isinstance(target, Path) else target
    policy = Policy(blob_grace, upload_ttl, untagged, tuple(retention), dry_run)
    return _Run(storage, policy, now).run()


class _Run:
    def __init__(self, storage: Storage, policy: Policy, now: float | None = None) -> None:
        self.storage, self.policy = storage, policy
        self.started = time.time()
        self.now = now if now is not None else self.started
        self.cutoff = self.now - policy.blob_grace
        self.done = Collected()
        self.documents: dict[Digest, tuple[list[Digest], Digest | None]] = {}

    def run(self) -> Collected:
        repos = self.storage.repositories()
        for repo in repos:
            if self.policy.retention or self.policy.untagged:
                self._prune(repo)
        live, marked = self._mark(repos)
        links = {repo: self.storage.layer_links(repo) for repo in repos}
        live |= self._remark(marked)
        unlinked = self._sweep_links(links, live)
        live |= self._remark(marked)  # after the links went: see step 4
        for repo, digest in unlinked:
            if digest in live:  # a manifest PUT named it meanwhile: its link stays
                self.storage.link_blob(repo, digest)
                self.done.links -= 1
        self._sweep_blobs(live)
        self._sweep_uploads()
        self.done.temp_files = self.storage.purge_temporary(self.cutoff,
                                                           dry_run=self.policy.dry_run)
        return self.done

    def _sweep_links(self, links: dict[str, list[Stamped]],
                     live: set[Digest]) -> list[tuple[str, Digest]]:
        """Remove the links neither live nor recent; return those removed (`live` grows by
        the digests of the links kept)."""
        unlinked = []
        for repo, stamped in links.items():
            for link in stamped:
                if link.digest in live or link.mtime > self.cutoff:
                    live.add(link.digest)
                    continue
                if self._remove(f"link {repo}@{link.digest}"):
                    self.storage.unlink_blob(repo, link.digest)
                    unlinked.append((repo, link.digest))
                self.done.links += 1
        return unlinked

    def _sweep_blobs(self, live: set[Digest]) -> None:
        for blob in self.storage.stored_blobs():
            if blob.digest in live or blob.mtime > self.cutoff:
                continue
            if self._remove(f"blob {blob.digest} ({blob.size} bytes)"):
                self.storage.delete_blob_data(blob.digest)
            self.done.blobs, self.done.bytes = self.done.blobs + 1, self.done.bytes + blob.size

    def _remove(self, what: str) -> bool:
        """Record `what` as removed; True if it should really go (not a dry run)."""
        self.done.removed.append(what)
        return not self.policy.dry_run

    # -- mark ---------------------------------------------------------------------------------

    def _mark(self, repos: list[str]) -> tuple[set[Digest], set[tuple[str, Digest]]]:
        live: set[Digest] = set()
        marked: set[tuple[str, Digest]] = set()
        for repo in repos:
            for revision in self.storage.revisions(repo):
                marked.add((repo, revision.digest))
                live.add(revision.digest)
                live.update(self._document(revision.digest)[0])
        return live, marked

    def _remark(self, marked: set[tuple[str, Digest]]) -> set[Digest]:
        """What was written since the mark listed its repository: revisions and links."""
        live: set[Digest] = set()
        for repo in self.storage.repositories():
            for revision in self.storage.revisions(repo):
                if (repo, revision.digest) not in marked:
                    live.add(revision.digest)
                    live.update(self._document(revision.digest)[0])
            live.update(link.digest for link in self.storage.layer_links(repo)
                        if link.mtime >= self.now - 1)  # S3 keeps whole seconds
        return live

    def _document(self, digest: Digest) -> tuple[list[Digest], Digest | None]:
        """(digests the manifest references, its subject), read once per run."""
        if digest not in self.documents:
            self.documents[digest] = _references(self.storage, digest)
        return self.documents[digest]

    # -- retention ----------------------------------------------------------------------------

    def _prune(self, repo: str) -> None:
        tags = self.storage.tag_entries(repo)
        doomed: set[str] = set()
        for rule in self.policy.retention:
            matching = sorted((t for t in tags if fnmatch.fnmatchcase(t.tag, rule.pattern)),
                              key=lambda t: (t.mtime, t.tag), reverse=True)
            doomed.update(t.tag for t in matching[rule.keep:] if t.mtime <= self.cutoff)
        for tag in sorted(doomed):
            if self._remove(f"tag {repo}:{tag}"):
                self.storage.delete_tag(repo, tag)
            self.done.tags += 1
        if not self.policy.untagged:
            return
        revisions = self.storage.revisions(repo)
        reached = self._reached({t.digest for t in tags if t.tag not in doomed}, revisions)
        for revision in revisions:
            if revision.digest in reached or revision.mtime > self.cutoff:
                continue
            if self._remove(f"manifest {repo}@{revision.digest}"):
                self.storage.delete_manifest(repo, revision.digest)
            self.done.manifests += 1

    def _reached(self, tagged: set[Digest], revisions: list[Stamped]) -> set[Digest]:
        """Tagged manifests, their children, and referrers of anything reached (fixpoint)."""
        present = {r.digest for r in revisions}
        reached = tagged & present
        while True:
            grown = set(reached)
            for digest in present:
                refs, subject = self._document(digest)
                if digest in reached:
                    grown.update(d for d in refs if d in present)
                elif subject is not None and subject in reached:
                    grown.add(digest)
            if grown == reached:
                return reached
            reached = grown

    # -- uploads ------------------------------------------------------------------------------

    def _sweep_uploads(self) -> None:
        cutoff = self.now - self.policy.upload_ttl
        for session, mtime in list(self.storage.uploads.sessions()):
            if mtime > cutoff:
                continue
            if self._remove(f"upload {session}"):
                self.storage.uploads.remove(session)
            self.done.uploads += 1


def _references(storage: Storage, digest: Digest) -> tuple[list[Digest], Digest | None]:
    try:
        document = load_json(storage.read_blob(digest, MAX_MANIFEST_SIZE + 1), "manifest")
    except (OSError, SourceError, RecursionError):
        return [], None
    if not isinstance(document, dict):
        return [], None
    found = list(_descriptor_digests([document.get("config"),
                                      *_list(document.get("layers")),
                                      *_list(document.get("manifests"))]))
    subject = list(_descriptor_digests([document.get("subject")]))
    return found, subject[0] if subject else None


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _descriptor_digests(descriptors: list[object]) -> Iterator[Digest]:
    for descriptor in descriptors:
        if isinstance(descriptor, dict) and Digest.is_valid(str(descriptor.get("digest"))):
            yield Digest.parse(str(descriptor["digest"]))


class Schedule:
    """Collects garbage every `interval` seconds in a daemon thread until `stop()`."""

    def __init__(self, storage: Storage, interval: float, policy: Policy,
                 report: Callable[[Collected], None] | None = None) -> None:
        self.storage, self.interval, self.policy = storage, interval, policy
        self.report = report or (lambda done: log.warning(
            "gc: %s", done.summary(dry_run=policy.dry_run)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="freight-gc", daemon=True)

    def start(self) -> Schedule:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                done = _Run(self.storage, self.policy).run()
            except Exception:  # a failed run (store unreachable) must not stop serving
                log.exception("gc run failed")
                continue
            self.report(done)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():  # never started when serving failed to start
            self._thread.join(timeout=60)
