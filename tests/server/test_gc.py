"""Garbage collection on both backends: unreferenced blobs and stale uploads go, everything
in use stays, also while the registry serves pushes and pulls."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from freight.cli.serve import gc as gc_command
from freight.digest import Digest
from freight.server import Storage
from freight.server.gc import Retention, collect
from freight.server.storage import FilesystemStorage

from .conftest import OCI_INDEX, Live, image_manifest, index_manifest, serving

DAY = 24 * 3600.0
LATER = time.time() + 2 * DAY  # every object written by a test is older than the grace then


def stored(storage: Storage) -> set[str]:
    return {str(blob.digest) for blob in storage.stored_blobs()}


def test_gc_keeps_referenced_and_removes_unreferenced(live: Live, storage: Storage) -> None:
    kept, _ = live.push_image("test/repo", "v1", layer=b"kept layer")
    orphan = live.push_blob("test/repo", b"orphan blob")
    doomed, _ = live.push_image("test/repo", "v2", layer=b"doomed layer")
    live.client.delete(f"/v2/test/repo/manifests/{doomed}")
    pending = live.client.post("/v2/test/repo/blobs/uploads/").headers["location"]
    before = stored(storage)
    done = collect(storage, now=LATER)
    after = stored(storage)
    assert {orphan, doomed} <= before - after
    assert kept in after
    assert done.blobs == len(before - after) == 3  # orphan, doomed manifest, its layer
    assert done.uploads == 0  # a two-day-old session may still be resumed
    assert live.client.get("/v2/test/repo/manifests/v1").status_code == 200
    layer = live.client.get("/v2/test/repo/manifests/v1").json()["layers"][0]["digest"]
    assert live.client.get(f"/v2/test/repo/blobs/{layer}").content == b"kept layer"
    assert live.client.head(f"/v2/test/repo/blobs/{orphan}").status_code == 404
    assert live.client.get(pending).status_code == 204


def test_gc_spares_recent_blobs_and_removes_stale_uploads(live: Live, storage: Storage) -> None:
    orphan = live.push_blob("test/repo", b"just pushed, manifest coming")
    pending = live.client.post("/v2/test/repo/blobs/uploads/").headers["location"]
    assert collect(storage).blobs == 0
    assert orphan in stored(storage)
    assert collect(storage, now=time.time() + 8 * DAY).uploads == 1
    assert list(storage.uploads.sessions()) == []
    assert live.client.get(pending).status_code == 404


def test_gc_dry_run_lists_and_cli(live: Live, storage: Storage) -> None:
    orphan = live.push_blob("test/repo", b"orphan")
    dry = collect(storage, now=LATER, dry_run=True)
    assert f"blob {orphan} (6 bytes)" in dry.removed
    assert orphan in stored(storage)
    where = (["--root", str(storage.root)] if isinstance(storage, FilesystemStorage)
             else ["--storage", storage.location])
    time.sleep(1.1)  # gc protects what was written in its last second (stores keep seconds)
    runner = CliRunner()
    listed = runner.invoke(gc_command, [*where, "--dry-run", "--gc-grace", "0"])
    assert listed.exit_code == 0, listed.output
    assert f"blob {orphan} (6 bytes)" in listed.output
    assert "would remove 1 blobs" in listed.output
    assert orphan in stored(storage)
    real = runner.invoke(gc_command, [*where, "--gc-grace", "0"])
    assert "removed 1 blobs" in real.output, real.output
    assert stored(storage) == set()


def test_gc_cli_rejects_bad_rule(tmp_path: Path) -> None:
    done = CliRunner().invoke(gc_command, ["--root", str(tmp_path), "--gc-keep", "v*=ten"])
    assert done.exit_code != 0 and "invalid retention rule" in done.output
    assert "Traceback" not in done.output


class _PushDuringSweep:
    """A Storage whose first `layer_links` call (after the mark) lets a client push a
    manifest referencing an old, so far unreferenced blob: the race of issue 13."""

    def __init__(self, storage: Storage, push: Any) -> None:
        self._storage, self._push, self._pushed = storage, push, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def layer_links(self, repo: str) -> Any:
        if not self._pushed:
            self._pushed = True
            self._push()
        return self._storage.layer_links(repo)


def test_manifest_put_between_mark_and_sweep_keeps_its_blobs(live: Live,
                                                              storage: Storage) -> None:
    live.push_image("test/repo", "v1", layer=b"first")
    config = live.push_blob("test/repo", b"{}")
    layer = live.push_blob("test/repo", b"old layer, found by HEAD")
    body = image_manifest(config, 2, [(layer, len(b"old layer, found by HEAD"))])

    def push() -> None:
        assert live.push_manifest("test/repo", "late", body).status_code == 201

    collect(_PushDuringSweep(storage, push), now=LATER)  # type: ignore[arg-type]
    assert layer in stored(storage)
    assert live.client.get(f"/v2/test/repo/blobs/{layer}").content == b"old layer, found by HEAD"


class _CollectBeforeManifestWrite:
    """A Storage whose next manifest write lets a whole gc run first: the PUT has checked its
    blobs, then mark, re-mark and sweep all run before its revision is written (the window
    that remained after the re-mark)."""

    def __init__(self, storage: Storage) -> None:
        self._storage, self._ran = storage, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def put_manifest(self, *args: Any, **options: Any) -> None:
        if not self._ran:
            self._ran = True
            collect(self._storage, now=LATER)
        self._storage.put_manifest(*args, **options)


def test_manifest_put_during_a_whole_gc_run_never_names_a_deleted_blob(
        storage: Storage, tmp_path: Path) -> None:
    with serving(tmp_path / "root", storage=_CollectBeforeManifestWrite(
            storage)) as live:  # type: ignore[arg-type]
        config = live.push_blob("test/window", b"{}")
        layer = live.push_blob("test/window", b"old layer, found by HEAD")
        body = image_manifest(config, 2, [(layer, len(b"old layer, found by HEAD"))])
        reply = live.push_manifest("test/window", "late", body)
        assert reply.status_code == 400, reply.text  # the client uploads its blobs again
        assert reply.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
        assert live.client.get("/v2/test/window/manifests/late").status_code == 404
        assert layer not in stored(storage)
        config = live.push_blob("test/window", b"{}")  # the retry: blobs, then the manifest
        layer = live.push_blob("test/window", b"old layer, found by HEAD")
        assert live.push_manifest("test/window", "late", body).status_code == 201
        assert live.client.get(f"/v2/test/window/blobs/{layer}").status_code == 200


def test_a_link_removed_for_a_manifest_written_meanwhile_comes_back(
        live: Live, storage: Storage) -> None:
    """The manifest PUT lands between the link sweep and the last re-mark: the bytes stay
    and the link the sweep removed is written again."""
    config = live.push_blob("test/relink", b"{}")
    layer = live.push_blob("test/relink", b"relinked")
    body = image_manifest(config, 2, [(layer, len(b"relinked"))])

    class PushAfterUnlink:
        def __init__(self) -> None:
            self.pushed = False

        def __getattr__(self, name: str) -> Any:
            return getattr(storage, name)

        def unlink_blob(self, repo: str, digest: Digest) -> bool:
            if not self.pushed:  # the PUT's checks and write, all before this unlink
                self.pushed = True
                assert live.push_manifest("test/relink", "v1", body).status_code == 201
            return storage.unlink_blob(repo, digest)

    collect(PushAfterUnlink(), now=LATER)  # type: ignore[arg-type]
    assert live.client.get(f"/v2/test/relink/blobs/{layer}").content == b"relinked"
    assert live.client.get("/v2/test/relink/manifests/v1").content == body


def test_retention_keeps_newest_tags_matching(live: Live, storage: Storage) -> None:
    for n in range(1, 6):
        live.push_image("test/repo", f"v{n}", layer=f"layer {n}".encode())
    live.push_image("test/repo", "latest", layer=b"layer 5")
    done = collect(storage, now=LATER, retention=[Retention.parse("v*=2")])
    assert storage.tags("test/repo") == ["latest", "v4", "v5"]
    assert done.tags == 3
    # Their manifests are untagged now but kept (untagged removal is off) with their layers.
    assert done.manifests == 0 and done.blobs == 0


def test_untagged_manifests_go_but_children_and_referrers_stay(live: Live,
                                                                storage: Storage) -> None:
    old, _ = live.push_image("test/repo", "v1", layer=b"old")
    new, new_body = live.push_image("test/repo", "v1", layer=b"new")  # v1 moves on
    child, child_body = live.push_image("test/repo", "child", layer=b"child")
    index = index_manifest([(child, len(child_body))])
    assert live.push_manifest("test/repo", "multi", index, OCI_INDEX).status_code == 201
    assert live.client.delete("/v2/test/repo/manifests/child").status_code == 202
    ref, _ = live.push_image("test/repo", "sig", layer=b"signature", subject={
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": new,
        "size": len(new_body)})
    assert live.client.delete("/v2/test/repo/manifests/sig").status_code == 202
    done = collect(storage, now=LATER, untagged=True)
    assert f"manifest test/repo@{old}" in done.removed
    assert done.manifests == 1
    for digest in (new, child, ref):
        assert live.client.head(f"/v2/test/repo/manifests/{digest}").status_code == 200
    assert live.client.head(f"/v2/test/repo/manifests/{old}").status_code == 404
    assert old not in stored(storage)


def test_gc_during_concurrent_pushes_and_pulls(live: Live, storage: Storage) -> None:
    """Bounded: 4 clients x 6 images each, gc in a loop meanwhile; nothing pushed is lost,
    the old garbage goes."""
    grace = 5.0
    garbage = {live.push_blob("junk/repo", f"garbage {n}".encode()) for n in range(5)}
    time.sleep(grace + 1.5)  # the garbage is now older than the grace period
    failures: list[str] = []
    pushed: list[tuple[str, str]] = []

    def client(worker: int) -> None:
        for n in range(6):
            repo, tag = f"team/app{worker}", f"t{n}"
            try:
                digest, _ = live.push_image(repo, tag, layer=f"{worker}/{n}".encode() * 1000)
                pushed.append((repo, tag))
                assert live.client.get(f"/v2/{repo}/manifests/{digest}").status_code == 200
            except AssertionError as exc:
                failures.append(f"{repo}:{tag}: {exc}")

    clients = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for thread in clients:
        thread.start()
    runs = 0
    while any(thread.is_alive() for thread in clients) or runs == 0:
        collect(storage, blob_grace=grace)
        runs += 1
    for thread in clients:
        thread.join()
    assert failures == []
    assert garbage.isdisjoint(stored(storage))
    for repo, tag in pushed:
        document = live.client.get(f"/v2/{repo}/manifests/{tag}").json()
        for blob in (document["config"], *document["layers"]):
            reply = live.client.get(f"/v2/{repo}/blobs/{blob['digest']}")
            assert reply.status_code == 200
            assert Digest.parse(blob["digest"]).encoded in reply.headers["docker-content-digest"]
    assert len(pushed) == 24


@pytest.mark.parametrize("rule", ["v*=3", "5", "=2"])
def test_retention_rule_parses(rule: str) -> None:
    parsed = Retention.parse(rule)
    assert parsed.keep >= 0 and parsed.pattern


def test_scheduled_gc_runs_while_serving(live: Live, storage: Storage) -> None:
    from freight.server.gc import Policy, Schedule

    orphan = live.push_blob("test/repo", b"scheduled orphan")
    runs: list[int] = []
    ran = threading.Event()

    def report(done: Any) -> None:
        runs.append(done.blobs)
        if orphan not in stored(storage):
            ran.set()

    time.sleep(1.1)  # older than a zero grace, in whole seconds too
    schedule = Schedule(storage, 0.2, Policy(blob_grace=0), report=report).start()
    try:
        assert ran.wait(timeout=120), runs
    finally:
        schedule.stop()
    assert live.client.get("/v2/").status_code == 200
