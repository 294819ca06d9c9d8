"""Pulling into an OCI layout directory (src/freight/sinks/layout.py): a blob is stored
only once verified, under its digest; `index.json` names each root for docker and
containerd and keeps the entries of a layout pulled into before, except the names pulled
again; a failed run leaves `index.json` as it was. Written against mutation testing of
the module."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import DigestMismatch, SourceError
from freight.manifest import Descriptor, Platform
from freight.reference import Reference
from freight.results import Action
from freight.sinks.layout import LayoutSink
from freight.sources.files import DirFiles
from freight.sources.oci_layout import read_layout

RAW = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "layers": [],
                  "config": {"mediaType": mt.OCI_EMPTY, "digest": str(Digest.of(b"{}")),
                             "size": 2}}).encode()


def _index(root: Path) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = json.loads((root / "index.json").read_bytes())["manifests"]
    return manifests


def _root(sink: LayoutSink, raw: bytes = RAW, *names: str | None,
          platform: Platform | None = None) -> Descriptor:
    digest = sink.put_manifest("ignored", raw, mt.OCI_MANIFEST)
    root = Descriptor(mt.OCI_MANIFEST, digest, len(raw), platform)
    for name in names:
        sink.add_root(root, Reference.parse(name) if name else None)
    return root


def test_a_blob_is_stored_under_its_digest_once_verified(tmp_path: Path) -> None:
    sink = LayoutSink(tmp_path / "out", stored=Action.WRITTEN)
    assert sink.stored is Action.WRITTEN and sink.repository == ""
    data = b"x" * 3_000_000  # more than one read block
    digest = Digest.of(data)
    assert not sink.has_blob(digest)
    seen: list[int] = []
    sink.upload(digest, len(data), lambda: io.BytesIO(data), progress=seen.append)
    assert (tmp_path / "out" / "blobs" / "sha256" / digest.encoded).read_bytes() == data
    assert sink.has_blob(digest) and sum(seen) == len(data) and len(seen) > 1
    assert os.listdir(tmp_path / "out" / "blobs" / "sha256") == [digest.encoded]
    assert not sink.mount(digest, "elsewhere") and sink.streamer() is None


def test_a_blob_of_another_algorithm_goes_in_its_own_directory(tmp_path: Path) -> None:
    sink = LayoutSink(tmp_path)
    data = b"sha512 bytes"
    digest = Digest("sha512", hashlib.sha512(data).hexdigest())
    sink.upload(digest, len(data), lambda: io.BytesIO(data))
    assert (tmp_path / "blobs" / "sha512" / digest.encoded).read_bytes() == data
    assert sink.blob_path(digest) == tmp_path / "blobs" / "sha512" / digest.encoded


@pytest.mark.parametrize(("given", "size", "message"), [
    (b"y" * 99, 100, r"^layer 1 \(99 bytes, expected 100\)"),
    (b"z" * 100, 100, r"^layer 1 \(100 bytes, expected 100\)"),
    (b"y" * 100, 99, r"^layer 1 \(100 bytes, expected 99\)"),
])
def test_bytes_that_do_not_match_are_never_stored(tmp_path: Path, given: bytes, size: int,
                                                  message: str) -> None:
    sink = LayoutSink(tmp_path)
    digest = Digest.of(b"y" * 100)
    with pytest.raises(DigestMismatch, match=message) as caught:
        sink.upload(digest, size, lambda: io.BytesIO(given), what="layer 1")
    assert str(digest) in str(caught.value)
    assert not sink.has_blob(digest)
    assert os.listdir(tmp_path / "blobs" / "sha256") == []  # no temporary file left


def test_a_failed_source_leaves_no_temporary_file(tmp_path: Path) -> None:
    sink = LayoutSink(tmp_path)

    def broken() -> io.BytesIO:
        raise SourceError("gone")

    with pytest.raises(SourceError):
        sink.upload(Digest.of(b"q"), 1, broken)
    assert os.listdir(tmp_path / "blobs" / "sha256") == []


def test_a_manifest_is_a_blob_named_by_its_digest(tmp_path: Path) -> None:
    sink = LayoutSink(tmp_path)
    digest = sink.put_manifest("v1", RAW, mt.OCI_MANIFEST)
    assert digest == Digest.of(RAW)
    assert sink.blob_path(digest).read_bytes() == RAW


def test_finish_names_each_root_for_docker_and_containerd(tmp_path: Path) -> None:
    sink = LayoutSink(tmp_path)
    amd = Platform("linux", "amd64")
    root = _root(sink, RAW, "docker.io/library/app:1", None, platform=amd)
    pinned = Reference.parse(f"docker.io/library/app@{Digest.of(RAW)}")
    sink.add_root(root, pinned)
    sink.upload(Digest.of(b"{}"), 2, lambda: io.BytesIO(b"{}"))  # the config
    assert not (tmp_path / "index.json").exists()  # only finish() writes it
    sink.finish()
    assert (tmp_path / "oci-layout").read_bytes() == b'{"imageLayoutVersion": "1.0.0"}\n'
    entries = _index(tmp_path)
    assert [e.get("annotations") for e in entries] == [
        {"io.containerd.image.name": "docker.io/library/app:1",
         "org.opencontainers.image.ref.name": "1"},
        None,
        {"io.containerd.image.name": str(pinned)}]
    assert all((e["digest"], e["size"], e["mediaType"], e["platform"]) == (
        str(root.digest), root.size, mt.OCI_MANIFEST, {"os": "linux", "architecture": "amd64"})
        for e in entries)
    assert json.loads((tmp_path / "index.json").read_bytes())["mediaType"] == mt.OCI_INDEX
    assert [i.label for i in read_layout(DirFiles(str(tmp_path)))] == [
        "docker.io/library/app:1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs", "index.json", "oci-layout"]


def test_pulling_again_keeps_other_names_and_replaces_the_same_one(tmp_path: Path) -> None:
    first = LayoutSink(tmp_path)
    _root(first, RAW, "docker.io/library/app:1", "docker.io/library/app:2")
    first.finish()
    newer = RAW.replace(b'"layers": []', b'"layers": [ ]')
    again = LayoutSink(tmp_path)
    _root(again, newer, "docker.io/library/app:1")
    again.finish()
    entries = _index(tmp_path)
    assert [(e["annotations"]["io.containerd.image.name"], e["digest"]) for e in entries] == [
        ("docker.io/library/app:2", str(Digest.of(RAW))),
        ("docker.io/library/app:1", str(Digest.of(newer)))]


def test_an_untagged_entry_of_the_layout_is_kept(tmp_path: Path) -> None:
    first = LayoutSink(tmp_path)
    _root(first, RAW, None)
    first.finish()
    again = LayoutSink(tmp_path)
    _root(again, RAW, "docker.io/library/app:1")
    again.finish()
    assert [e.get("annotations") for e in _index(tmp_path)] == [
        None, {"io.containerd.image.name": "docker.io/library/app:1",
               "org.opencontainers.image.ref.name": "1"}]


def test_an_index_json_that_is_not_json_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_bytes(b"not json")
    sink = LayoutSink(tmp_path)
    _root(sink, RAW, "docker.io/library/app:1")
    with pytest.raises(SourceError, match=rf"^{tmp_path}/index\.json is not valid JSON"):
        sink.finish()
    assert (tmp_path / "index.json").read_bytes() == b"not json"


def test_an_index_json_that_is_no_index_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_bytes(b'{"manifests": "none"}')
    sink = LayoutSink(tmp_path)
    _root(sink, RAW, "docker.io/library/app:1")
    sink.finish()
    assert len(_index(tmp_path)) == 1


def test_a_failed_run_leaves_index_json_as_it_was(tmp_path: Path) -> None:
    first = LayoutSink(tmp_path)
    _root(first, RAW, "docker.io/library/app:1")
    first.finish()
    before = (tmp_path / "index.json").read_bytes()
    failed = LayoutSink(tmp_path)
    _root(failed, RAW, "docker.io/library/other:1")
    failed.abort()
    assert (tmp_path / "index.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blobs", "index.json", "oci-layout"]


def test_a_layout_into_a_new_nested_directory(tmp_path: Path) -> None:
    LayoutSink(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b" / "blobs").is_dir()
    LayoutSink(tmp_path / "a" / "b")  # an existing layout is fine


# -- found by the mutants ---------------------------------------------------------------


def test_a_mismatch_names_both_digests_and_blob_by_default(tmp_path: Path) -> None:
    sink = LayoutSink(tmp_path)
    expected = Digest.of(b"x" * 10)
    with pytest.raises(DigestMismatch) as caught:
        sink.upload(expected, 10, lambda: io.BytesIO(b"y" * 10))
    assert str(caught.value) == (
        f"blob (10 bytes, expected 10): the content does not match (its digest is "
        f"{Digest.of(b'y' * 10)}, expected {expected}); the input is damaged or was modified")


class _Watching(io.BytesIO):
    """A source that notes, as it is read, what the blob's directory holds."""

    def __init__(self, data: bytes, directory: Path) -> None:
        super().__init__(data)
        self.directory = directory
        self.seen: list[list[str]] = []

    def read(self, n: int | None = -1) -> bytes:
        self.seen.append(sorted(os.listdir(self.directory)))
        return super().read(n)


def test_a_blob_is_written_under_a_hidden_name_beside_its_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "no-such-tmpdir"))
    sink = LayoutSink(tmp_path / "out")
    data = b"w" * 10
    source = _Watching(data, tmp_path / "out" / "blobs" / "sha256")
    sink.upload(Digest.of(data), len(data), lambda: source)
    (during,) = source.seen[0]
    assert during.startswith(".tmp-")
    assert os.listdir(tmp_path / "out" / "blobs" / "sha256") == [Digest.of(data).encoded]
    _root(sink, RAW, "docker.io/library/app:1")
    sink.finish()  # index.json too is written beside itself, never in TMPDIR
    assert (tmp_path / "out" / "index.json").is_file()
