"""What a pulled archive holds (src/freight/sinks/docker_tar.py): the `manifest.json` and
`repositories` docker load reads, the layout's own files, fixed member metadata (the same
pull gives the same tar), the tar sent whole to standard output, and the refusals (an
index for docker load, bytes that do not match). Written against mutation testing of the
module; tests/unit/test_archive_sink.py has the concurrency."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import DigestMismatch, UsageError
from freight.manifest import Descriptor, Index, Manifest
from freight.reference import Reference
from freight.sinks.docker_tar import DockerTarSink, familiar, send_to_stdout

CONFIG = b'{"rootfs": {"type": "layers", "diff_ids": []}}'
LAYERS = (b"first layer", b"second layer" * 100)


def _put(sink: DockerTarSink, data: bytes) -> Digest:
    digest = Digest.of(data)
    sink.upload(digest, len(data), lambda: io.BytesIO(data))
    return digest


def _image(sink: DockerTarSink, *names: str | None, config: bytes = CONFIG) -> Manifest:
    manifest = Manifest.build(
        mt.OCI_MANIFEST, Descriptor(mt.OCI_CONFIG, _put(sink, config), len(config)),
        [Descriptor(mt.OCI_LAYER, _put(sink, x), len(x)) for x in LAYERS])
    digest = sink.put_manifest("ignored", manifest.raw, mt.OCI_MANIFEST)
    for name in names:
        sink.add_root(Descriptor(mt.OCI_MANIFEST, digest, len(manifest.raw)),
                      Reference.parse(name) if name else None)
    return manifest


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return member.read()


def _member(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.encoded}"


@pytest.mark.parametrize(("name", "short"), [
    ("docker.io/library/busybox:1", "busybox:1"), ("docker.io/team/app", "team/app:latest"),
    ("localhost:5000/library/x:2", "localhost:5000/library/x:2"),
    ("quay.io/org/tool:3", "quay.io/org/tool:3")])
def test_familiar_names_are_the_ones_docker_shows(name: str, short: str) -> None:
    assert familiar(Reference.parse(name)) == short


def test_manifest_json_and_repositories_name_each_image(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out)
    manifest = _image(sink, "docker.io/library/app:1", "example.com/team/app:v2")
    other = _image(sink, None, config=CONFIG.replace(b"[]", b"[ ]"))
    sink.finish()
    entries = json.loads(_read(out, "manifest.json"))
    layers = [_member(d.digest) for d in manifest.layers]
    assert entries == [
        {"Config": _member(manifest.config.digest),
         "RepoTags": ["app:1", "example.com/team/app:v2"], "Layers": layers},
        {"Config": _member(other.config.digest), "RepoTags": [], "Layers": layers}]
    assert json.loads(_read(out, "repositories")) == {
        "app": {"1": manifest.config.digest.encoded},
        "example.com/team/app": {"v2": manifest.config.digest.encoded}}
    index = json.loads(_read(out, "index.json"))
    assert [m.get("annotations") for m in index["manifests"]] == [
        {"io.containerd.image.name": "docker.io/library/app:1",
         "org.opencontainers.image.ref.name": "1"},
        {"io.containerd.image.name": "example.com/team/app:v2",
         "org.opencontainers.image.ref.name": "v2"}, None]
    assert _read(out, "oci-layout") == b'{"imageLayoutVersion": "1.0.0"}\n'
    assert _read(out, _member(manifest.digest)) == manifest.raw
    assert _read(out, _member(manifest.layers[1].digest)) == LAYERS[1]


def test_an_oci_archive_has_no_docker_files(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out, docker=False)
    _image(sink, "docker.io/library/app:1")
    sink.finish()
    names = set(_members(out))
    assert "manifest.json" not in names and "repositories" not in names
    assert {"oci-layout", "index.json"} <= names


def test_members_have_fixed_owners_modes_and_times(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out)
    _image(sink, "docker.io/library/app:1")
    sink.finish()
    members = _members(out)
    for name, info in members.items():
        assert (info.uid, info.gid, info.uname, info.gname, info.mtime) == (0, 0, "", "", 0)
        if name in ("blobs", "blobs/sha256"):
            assert info.isdir() and info.mode == 0o755
        else:
            assert info.isfile() and info.mode == 0o644
    assert list(members)[:2] == ["blobs", "blobs/sha256"]  # each directory once, first
    assert len(members) == len(set(members))


def test_the_same_pull_gives_the_same_tar(tmp_path: Path) -> None:
    for name in ("a.tar", "b.tar"):
        sink = DockerTarSink(tmp_path / name)
        _image(sink, "docker.io/library/app:1")
        sink.finish()
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    listed = subprocess.run(["tar", "-tvf", str(tmp_path / "a.tar")], check=True,
                            capture_output=True, text=True).stdout
    assert "blobs/sha256/" in listed


def test_a_blob_of_another_algorithm_has_its_own_directory(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out, docker=False)
    data = b"sha512 bytes"
    digest = Digest("sha512", hashlib.sha512(data).hexdigest())
    sink.upload(digest, len(data), lambda: io.BytesIO(data))
    sink.finish()
    members = _members(out)
    assert members["blobs/sha512"].isdir()
    assert _read(out, f"blobs/sha512/{digest.encoded}") == data


def test_the_tar_is_built_beside_the_output_under_a_hidden_name(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out)
    (building,) = os.listdir(tmp_path)
    assert building.startswith(".out.tar.") and building.endswith(".tmp")
    _image(sink, "docker.io/library/app:1")
    sink.finish()
    assert os.listdir(tmp_path) == ["out.tar"]
    assert out.stat().st_size % tarfile.RECORDSIZE == 0


def test_an_index_cannot_be_loaded_by_docker(tmp_path: Path) -> None:
    sink = DockerTarSink(tmp_path / "out.tar")
    index = Index.build(mt.OCI_INDEX, [])
    digest = sink.put_manifest("x", index.raw, mt.OCI_INDEX)
    sink.add_root(Descriptor(mt.OCI_INDEX, digest, len(index.raw)),
                  Reference.parse("docker.io/library/app:1"))
    with pytest.raises(UsageError, match=r"^docker\.io/library/app:1 is a multi-platform "
                                         r"index: docker load takes one platform \(use "
                                         r"--platform\), or pull with --format oci$"):
        sink.finish()
    assert os.listdir(tmp_path) == []
    sink = DockerTarSink(tmp_path / "out.tar")
    sink.put_manifest("x", index.raw, mt.OCI_INDEX)
    sink.add_root(Descriptor(mt.OCI_INDEX, digest, len(index.raw)), None)
    with pytest.raises(UsageError, match=r"^the image is a multi-platform index"):
        sink.finish()


def test_a_manifest_stored_twice_is_written_once(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out, docker=False)
    raw = b'{"schemaVersion": 2}'
    first = sink.put_manifest("a", raw, mt.OCI_MANIFEST)
    assert sink.put_manifest("b", raw, mt.OCI_MANIFEST) == first == Digest.of(raw)
    assert sink.has_blob(first) and not sink.mount(first, "elsewhere")
    assert sink.streamer() is None
    sink.finish()
    with tarfile.open(out) as tar:
        assert [m.name for m in tar.getmembers()].count(_member(first)) == 1


def test_too_few_bytes_are_refused_saying_how_many(tmp_path: Path) -> None:
    sink = DockerTarSink(tmp_path / "out.tar")
    data = b"x" * 100
    with pytest.raises(DigestMismatch, match=r"layer 1 \(99 bytes, expected 100\)"):
        sink.upload(Digest.of(data), 100, lambda: io.BytesIO(data[:-1]), what="layer 1")
    with pytest.raises(DigestMismatch, match=r"layer 1 \(more than the 50 bytes expected\)"):
        sink.upload(Digest.of(data), 50, lambda: io.BytesIO(data), what="layer 1")
    assert not sink.has_blob(Digest.of(data))
    sink.abort()


def test_an_exact_size_is_not_too_many_bytes_and_progress_counts_them(tmp_path: Path) -> None:
    sink = DockerTarSink(tmp_path / "out.tar")
    data = b"y" * 3000
    seen: list[int] = []
    sink.upload(Digest.of(data), len(data), lambda: io.BytesIO(data), progress=seen.append)
    assert sum(seen) == 3000 and sink.has_blob(Digest.of(data))
    sink.abort()


def test_abort_after_finish_keeps_the_output(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out)
    _image(sink, "docker.io/library/app:1")
    sink.finish()
    sink.abort()
    assert out.is_file() and sink.name == str(out)


# -- standard output --------------------------------------------------------------------


def test_standard_output_gets_the_whole_tar_and_no_file_is_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    out = tmp_path / "stdout.tar"
    with out.open("wb") as stdout:
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
        sink = DockerTarSink(None)
        assert sink.name == "standard output"
        (building,) = (p for p in os.listdir(tmp_path) if p != "stdout.tar")
        assert building.startswith("freight-stdout-") and building.endswith(".tar")
        manifest = _image(sink, "docker.io/library/app:1")
        sink.finish()
        sys.stdout.flush()
    assert os.listdir(tmp_path) == ["stdout.tar"]
    assert _read(out, _member(manifest.layers[1].digest)) == LAYERS[1]
    assert out.stat().st_size % tarfile.RECORDSIZE == 0


class _Buffered(io.TextIOWrapper):
    """A standard output with no file descriptor, as in a test runner."""

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no descriptor")


def _source(tmp_path: Path, data: bytes) -> int:
    path = tmp_path / "source"
    path.write_bytes(data)
    return os.open(path, os.O_RDONLY)


def test_a_standard_output_without_a_descriptor_gets_the_bytes_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(3 << 20)  # more than one read block
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", _Buffered(raw))
    fd = _source(tmp_path, data)
    try:
        send_to_stdout(fd, len(data) - 10)
    finally:
        os.close(fd)
    assert raw.getvalue() == data[:-10]


def test_a_standard_output_without_sendfile_gets_the_bytes_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(3 << 20)
    out = tmp_path / "appended"
    with out.open("ab") as stdout:  # sendfile refuses a file opened for appending
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
        fd = _source(tmp_path, data)
        try:
            send_to_stdout(fd, len(data))
        finally:
            os.close(fd)
    assert out.read_bytes() == data


def test_a_source_shorter_than_said_is_an_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", _Buffered(io.BytesIO()))
    fd = _source(tmp_path, b"z" * 100)
    try:
        with pytest.raises(Exception, match=r"^the tar for standard output ended at byte "
                                             r"100 of 200$"):
            send_to_stdout(fd, 200)
    finally:
        os.close(fd)


def test_a_reader_that_stops_early_is_a_usage_error(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "wb") as stdout:
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
        fd = _source(tmp_path, b"z" * 100)
        try:
            with pytest.raises(UsageError, match=r"^standard output was closed before the "
                                                 r"whole tar was written \(the reading "
                                                 r"command stopped\)$"):
                send_to_stdout(fd, 100)
            assert os.path.samefile(f"/proc/self/fd/{write}", os.devnull)
        finally:
            os.close(fd)


# -- found by the mutants ---------------------------------------------------------------


def test_a_mismatch_names_both_digests_and_blob_by_default(tmp_path: Path) -> None:
    sink = DockerTarSink(tmp_path / "out.tar")
    data = b"x" * 100
    expected = Digest.of(data)
    with pytest.raises(DigestMismatch) as caught:
        sink.upload(expected, 100, lambda: io.BytesIO(b"y" * 100))
    assert str(caught.value) == (
        f"blob (100 bytes, expected 100): the content does not match (its digest is "
        f"{Digest.of(b'y' * 100)}, expected {expected}); the input is damaged or was modified")
    with pytest.raises(DigestMismatch) as caught:
        sink.upload(expected, 10, lambda: io.BytesIO(data))
    assert (caught.value.expected, caught.value.actual) == (str(expected), "(not computed)")
    assert str(caught.value).startswith("blob (more than the 10 bytes expected)")
    sink.abort()


def test_a_big_blob_is_read_and_reported_block_by_block(tmp_path: Path) -> None:
    sink = DockerTarSink(tmp_path / "out.tar")
    data = os.urandom(3 << 20)
    seen: list[int] = []
    sink.upload(Digest.of(data), len(data), lambda: io.BytesIO(data), progress=seen.append)
    assert sum(seen) == len(data) and len(seen) == 3
    sink.abort()


def test_index_json_is_an_oci_index(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out, docker=False)
    _image(sink, "docker.io/library/app:1")
    sink.finish()
    assert json.loads(_read(out, "index.json"))["mediaType"] == mt.OCI_INDEX


def test_the_tar_ends_with_two_zero_blocks_padded_to_a_record_and_no_more(
        tmp_path: Path) -> None:
    boundary = 0
    for n in range(0, tarfile.RECORDSIZE, tarfile.BLOCKSIZE):  # every residue once
        out = tmp_path / f"{n}.tar"
        sink = DockerTarSink(out, docker=False)
        _put(sink, b"p" * (n or 1))
        sink.finish()
        with tarfile.open(out) as tar:
            tar.getmembers()
            end = tar.offset  # where the last member's data ends
        wanted = -(-(end + 2 * tarfile.BLOCKSIZE) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE
        assert out.stat().st_size == wanted
        boundary += (end + 2 * tarfile.BLOCKSIZE) % tarfile.RECORDSIZE == 0
    assert boundary == 1  # the case where one more block would cost a whole record


def test_abort_twice_is_harmless(tmp_path: Path) -> None:
    sink = DockerTarSink(tmp_path / "out.tar")
    sink.abort()
    sink.abort()
    assert os.listdir(tmp_path) == []


def test_an_untagged_root_before_tagged_ones_leaves_their_tags(tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    sink = DockerTarSink(out)
    untagged = _image(sink, None, config=CONFIG.replace(b"[]", b"[ ]"))
    tagged = _image(sink, "localhost:5000/team/app:1", "localhost:5000/team/app:2")
    sink.finish()
    entries = json.loads(_read(out, "manifest.json"))
    assert [e["RepoTags"] for e in entries] == [
        [], ["localhost:5000/team/app:1", "localhost:5000/team/app:2"]]
    assert entries[0]["Config"] == _member(untagged.config.digest)
    assert json.loads(_read(out, "repositories")) == {  # a registry port is no tag
        "localhost:5000/team/app": {"1": tagged.config.digest.encoded,
                                    "2": tagged.config.digest.encoded}}


def test_a_buffered_standard_output_is_flushed(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", _Buffered(io.BufferedWriter(raw, 1 << 20)))
    fd = _source(tmp_path, b"q" * 1000)
    try:
        send_to_stdout(fd, 1000)
    finally:
        os.close(fd)
    assert raw.getvalue() == b"q" * 1000


def test_the_first_bytes_are_sent_wherever_the_descriptor_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "stdout"
    with out.open("wb") as stdout:
        monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(stdout))
        fd = _source(tmp_path, b"0123456789")
        os.lseek(fd, 0, os.SEEK_END)
        try:
            send_to_stdout(fd, 6)
        finally:
            os.close(fd)
    assert out.read_bytes() == b"012345"
