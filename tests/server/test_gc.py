"""Garbage collection: unreferenced blobs and stale uploads go, everything in use stays."""

from __future__ import annotations

import os
import time
from pathlib import Path

from click.testing import CliRunner

from freight.cli.serve import gc as gc_command
from freight.server.gc import collect

from .conftest import Live, serving

DAY = 24 * 3600.0


def age_everything(root: Path, seconds: float) -> None:
    """Pretend every file under `root` was last written `seconds` ago."""
    then = time.time() - seconds
    for path in root.rglob("*"):
        os.utime(path, (then, then))


def blob_files(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs").rglob("*") if p.is_file()}


def test_gc_keeps_referenced_and_removes_unreferenced(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with serving(root) as live:
        kept, _ = live.push_image("test/repo", "v1", layer=b"kept layer")
        orphan = live.push_blob("test/repo", b"orphan blob")
        doomed, _ = live.push_image("test/repo", "v2", layer=b"doomed layer")
        live.client.delete(f"/v2/test/repo/manifests/{doomed}")
        pending = live.client.post("/v2/test/repo/blobs/uploads/").headers["location"]
    before = blob_files(root)
    age_everything(root, 2 * DAY)
    done = collect(root)
    after = blob_files(root)
    gone = {orphan.split(":")[1], doomed.split(":")[1]}
    assert gone <= before - after
    assert kept.split(":")[1] in after
    assert done.blobs == len(before - after) == 3  # orphan, doomed manifest, its layer
    assert done.uploads == 0  # a two-day-old session may still be resumed
    with serving(root) as live:
        assert live.client.get("/v2/test/repo/manifests/v1").status_code == 200
        config = live.client.get("/v2/test/repo/manifests/v1").json()["layers"][0]["digest"]
        assert live.client.get(f"/v2/test/repo/blobs/{config}").content == b"kept layer"
        assert live.client.head(f"/v2/test/repo/blobs/{orphan}").status_code == 404
        assert live.client.get(pending).status_code == 204


def test_gc_spares_recent_blobs_and_removes_stale_uploads(live: Live) -> None:
    orphan = live.push_blob("test/repo", b"just pushed, manifest coming")
    live.client.post("/v2/test/repo/blobs/uploads/")
    assert collect(live.root).blobs == 0
    assert orphan.split(":")[1] in blob_files(live.root)
    age_everything(live.root / "uploads", 8 * DAY)
    assert collect(live.root).uploads == 1
    assert list((live.root / "uploads").iterdir()) == []


def test_gc_dry_run_and_cli(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with serving(root) as live:
        live.push_blob("test/repo", b"orphan")
    age_everything(root, 2 * DAY)
    runner = CliRunner()
    dry = runner.invoke(gc_command, ["--root", str(root), "--dry-run"])
    assert dry.exit_code == 0
    assert "would remove 1 blobs" in dry.output
    assert len(blob_files(root)) == 1
    real = runner.invoke(gc_command, ["--root", str(root)])
    assert "removed 1 blobs" in real.output
    assert blob_files(root) == set()
