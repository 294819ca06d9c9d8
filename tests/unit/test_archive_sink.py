"""The archive sink writes each blob once, straight into its place in the tar, from many
threads at once; a blob that brings more bytes than announced never spills into the next
member; a failed attempt leaves its place to the retry; nothing is left after abort."""

from __future__ import annotations

import io
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import DigestMismatch, FreightError
from freight.manifest import Descriptor, Manifest
from freight.reference import Reference
from freight.sinks.docker_tar import DockerTarSink


def _blob(n: int, size: int) -> tuple[Digest, bytes]:
    data = bytes([n % 251]) * size
    return Digest.of(data), data


def _put(sink: DockerTarSink, data: bytes, *, declared: int | None = None) -> None:
    digest = Digest.of(data)
    sink.upload(digest, len(data) if declared is None else declared, lambda: io.BytesIO(data))


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()}


def test_blobs_written_from_many_threads_land_whole(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out, docker=False)
    blobs = [_blob(n, size) for n, size in enumerate([0, 1, 511, 512, 513, 70_000, 1 << 20])]
    threads = [threading.Thread(target=_put, args=(sink, data)) for _, data in blobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(sink.has_blob(d) for d, _ in blobs)
    sink.finish()
    members = _members(out)
    for digest, data in blobs:
        assert members[f"blobs/sha256/{digest.encoded}"] == data
    assert {"oci-layout", "index.json", "blobs", "blobs/sha256"} <= set(members)
    assert out.stat().st_size % tarfile.RECORDSIZE == 0
    listed = subprocess.run(["tar", "-tf", str(out)], check=True, capture_output=True, text=True)
    assert len(listed.stdout.split()) == len(members)
    assert [p.name for p in tmp_path.iterdir()] == ["out.tar"]


def test_more_bytes_than_announced_never_reach_the_next_member(tmp_path: Path) -> None:
    sink = DockerTarSink(tmp_path / "out.tar", docker=False)
    digest, data = _blob(1, 5000)
    with pytest.raises(DigestMismatch):
        sink.upload(digest, 1000, lambda: io.BytesIO(data))
    assert not sink.has_blob(digest)
    _, after = _blob(2, 3000)
    _put(sink, after)
    with pytest.raises(FreightError, match="not completely written"):
        sink.finish()  # the failed blob's place is still empty: no tar is made
    assert list(tmp_path.iterdir()) == []


def test_a_retry_fills_the_place_of_a_failed_attempt(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out, docker=False)
    digest, data = _blob(3, 4000)
    with pytest.raises(DigestMismatch):
        sink.upload(digest, len(data), lambda: io.BytesIO(data[:-1] + b"x"))
    _put(sink, data)
    sink.finish()
    assert _members(out)[f"blobs/sha256/{digest.encoded}"] == data


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    sink = DockerTarSink(tmp_path / "out.tar")
    _put(sink, b"some bytes")
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_docker_archive_names_its_image(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out)
    config, layer = b'{"rootfs": {"type": "layers", "diff_ids": []}}', b"layer bytes"
    _put(sink, config)
    _put(sink, layer)
    manifest = Manifest.build(mt.OCI_MANIFEST, Descriptor(mt.OCI_CONFIG, Digest.of(config),
                                                           len(config)),
                              [Descriptor(mt.OCI_LAYER_GZIP, Digest.of(layer), len(layer))])
    digest = sink.put_manifest("x", manifest.raw, mt.OCI_MANIFEST)
    sink.add_root(Descriptor(mt.OCI_MANIFEST, digest, len(manifest.raw)),
                  Reference.parse("example.com/team/app:v1"))
    sink.finish()
    members = _members(out)
    assert b'"RepoTags": ["example.com/team/app:v1"]' in members["manifest.json"]
    assert b"org.opencontainers.image.ref.name" in members["index.json"]
