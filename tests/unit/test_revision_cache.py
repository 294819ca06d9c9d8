"""A GET of a manifest by tag reads the tag every time and its revision link at most once
per REVISION_SECONDS (cache.Recent): a tag moved or a manifest deleted is seen at once, and
what could be stale (a revision gone while a tag still names it) lasts that long at most."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from freight.digest import Digest
from freight.server import FilesystemStorage
from freight.server.cache import Recent
from freight.server.exchange import REVISION_SECONDS, Context, HTTPError
from freight.server.manifests import _resolve

OCI = "application/vnd.oci.image.manifest.v1+json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counted(FilesystemStorage):
    """The filesystem store, counting its revision reads."""

    revision_reads = 0

    def manifest_type(self, repo: str, digest: Digest) -> str | None:
        self.revision_reads += 1
        return super().manifest_type(repo, digest)


def _setup(tmp_path: Path) -> tuple[Counted, Context, Clock]:
    storage = Counted(tmp_path)
    clock = Clock()
    ctx = Context(storage, storage.uploads,
                  revisions=Recent(100, REVISION_SECONDS, clock=clock))
    return storage, ctx, clock


def _put(storage: FilesystemStorage, data: bytes, tag: str | None) -> Digest:
    digest = Digest.of(data)
    storage.put_manifest("app", digest, OCI, data, tag=tag, subject=None)
    return digest


def test_by_tag_the_revision_is_read_once_a_while_and_the_tag_every_time(
        tmp_path: Path) -> None:
    storage, ctx, clock = _setup(tmp_path)
    first = _put(storage, b'{"one": 1}', "v1")
    for _ in range(5):
        assert _resolve(ctx, "app", "v1") == (first, OCI)
    assert storage.revision_reads == 1
    second = _put(storage, b'{"two": 2}', "v1")  # the tag moved: seen at once
    assert _resolve(ctx, "app", "v1") == (second, OCI)
    assert storage.revision_reads == 2
    clock.now += REVISION_SECONDS
    assert _resolve(ctx, "app", "v1") == (second, OCI)
    assert storage.revision_reads == 3


def test_by_digest_the_revision_is_read_every_time(tmp_path: Path) -> None:
    storage, ctx, _ = _setup(tmp_path)
    digest = _put(storage, b'{"one": 1}', "v1")
    _resolve(ctx, "app", "v1")
    for _ in range(3):
        assert _resolve(ctx, "app", str(digest)) == (digest, OCI)
    assert storage.revision_reads == 4


def test_a_deleted_manifest_is_unknown_by_tag_and_digest_at_once(tmp_path: Path) -> None:
    storage, ctx, _ = _setup(tmp_path)
    digest = _put(storage, b'{"one": 1}', "v1")
    _resolve(ctx, "app", "v1")
    assert storage.delete_manifest("app", digest)  # through another replica: no forget
    for ref in ("v1", str(digest)):
        with pytest.raises(HTTPError, match="MANIFEST_UNKNOWN"):
            _resolve(ctx, "app", ref)


def test_a_revision_gone_under_a_tag_is_trusted_no_longer_than_the_limit(
        tmp_path: Path) -> None:
    """A delete cut between its two steps (revision gone, tag left) on another replica."""
    storage, ctx, clock = _setup(tmp_path)
    digest = _put(storage, b'{"one": 1}', "v1")
    _resolve(ctx, "app", "v1")
    storage._revision("app", digest).unlink()
    assert _resolve(ctx, "app", "v1") == (digest, OCI)
    clock.now += REVISION_SECONDS
    with pytest.raises(HTTPError, match="MANIFEST_UNKNOWN"):
        _resolve(ctx, "app", "v1")


def test_recent_forgets_by_age_by_count_and_when_told() -> None:
    clock = Clock()
    recent: Recent[str, Any] = Recent(2, 5.0, clock=clock)
    recent.put("a", 1)
    recent.put("b", 2)
    assert recent.get("a") == 1
    recent.put("c", 3)  # "b" is the least recently used
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (1, None, 3)
    recent.forget("c")
    assert recent.get("c") is None
    clock.now += 4.9
    assert recent.get("a") == 1
    clock.now += 0.1
    assert recent.get("a") is None and len(recent) == 0
