"""Archive reading details mutation testing found untested: what an unreadable or damaged
archive says, an archive trickling in on standard input, clean-up that must not fail, and a
slice closed twice."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from freight.errors import SourceError
from freight.sources.files import SliceReader, TarFiles, clean_path, open_files


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Trickle(io.RawIOBase):
    """A pipe that hands out at most `step` bytes per read, as a slow producer does."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step = io.BytesIO(data), step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._data.read(self._step if n < 0 else min(n, self._step))

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Stdin:
    def __init__(self, buffer: io.RawIOBase) -> None:
        self.buffer = buffer

    def isatty(self) -> bool:
        return False


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "spool"
    where.mkdir()
    monkeypatch.setenv("TMPDIR", str(where))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return where


@pytest.mark.parametrize("step", [1, 3])
@pytest.mark.parametrize("wrap", ["plain", "gzip"])
def test_an_archive_trickling_in_on_standard_input_is_read_whole(
        monkeypatch: pytest.MonkeyPatch, spool: Path, step: int, wrap: str) -> None:
    big = os.urandom(1_500_000)  # more than one copy buffer
    plain = _tar({"manifest.json": b"[]", "layer.tar": big})
    data = gzip.compress(plain, compresslevel=1) if wrap == "gzip" else plain
    # the head trickles; the rest comes in big reads (a pipe refilled by a fast producer)
    monkeypatch.setattr(sys, "stdin", Stdin(_Joined(Trickle(data[:64], step),
                                                    io.BytesIO(data[64:]))))
    files = open_files("-")
    try:
        with files.open("layer.tar") as f:
            assert f.read() == big
        with files.open("manifest.json") as f:
            assert f.read() == b"[]"
    finally:
        files.close()
    assert list(spool.iterdir()) == []


class _Joined(io.RawIOBase):
    def __init__(self, first: io.RawIOBase, second: io.BytesIO) -> None:
        self._first, self._second = first, second

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._first.read(n) or self._second.read(n)


def test_a_path_that_cannot_be_read_says_why(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=rf"^cannot read {tmp_path}: Is a directory$"):
        TarFiles(str(tmp_path))


def _bad_crc(data: bytes) -> bytes:
    wrapped = bytearray(gzip.compress(data))
    wrapped[-8] ^= 0xFF  # the trailer's CRC-32: a BadGzipFile, an OSError, at the end
    return bytes(wrapped)


@pytest.mark.parametrize("content", [b"\x1f\x8b\x08\x00" + b"\xff" * 64,
                                     gzip.compress(_tar({"a": b"a" * 5000}))[:-20],
                                     _bad_crc(_tar({"a": b"a" * 5000}))])
def test_a_damaged_gzip_archive_is_called_damaged(tmp_path: Path, content: bytes,
                                                  spool: Path) -> None:
    (tmp_path / "bad.tar.gz").write_bytes(content)
    with pytest.raises(SourceError, match=r"bad\.tar\.gz: the gzip archive is damaged \(.+\)$"):
        open_files(str(tmp_path / "bad.tar.gz"))
    assert list(spool.iterdir()) == []  # nothing half-done left behind


def test_closing_survives_a_spool_already_removed(tmp_path: Path, spool: Path) -> None:
    (tmp_path / "a.tar.gz").write_bytes(gzip.compress(_tar({"a": b"a"})))
    files = TarFiles(str(tmp_path / "a.tar.gz"))
    (made,) = spool.iterdir()
    shutil.rmtree(made)  # a tmp cleaner got there first
    files.close()
    files.close()


def test_a_slice_closed_twice_closes_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0123456789")
    reader = SliceReader(str(tmp_path / "f"), 2, 5)
    assert reader.read(0) == b"" and reader.read(3) == b"234"
    reader.close()
    keep = [os.dup(fd) for fd in (0, 1, 2)]
    try:
        reader.close()
        for fd in (0, 1, 2):
            os.fstat(fd)  # still open
    finally:
        for fd, saved in zip((0, 1, 2), keep, strict=True):
            try:
                os.fstat(fd)
            except OSError:
                os.dup2(saved, fd)
            os.close(saved)


@pytest.mark.parametrize("mode", ["w:bz2", "w:xz"])
def test_a_tar_compressed_otherwise_is_refused_not_misread(tmp_path: Path, mode: str) -> None:
    """Only gzip and zstd are unwrapped; tarfile could open bzip2 or xz itself, but its
    offsets would then be into the decompressed bytes, not the file the slices read."""
    path = tmp_path / "image.tar.x"
    with tarfile.open(path, mode) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"[]"))
    with pytest.raises(SourceError, match=rf"^{path}: not a readable tar archive \(.+\)$"):
        open_files(str(path))


def test_a_directory_path_leaving_the_directory_is_named(tmp_path: Path) -> None:
    files = open_files(str(tmp_path))
    with pytest.raises(SourceError) as caught:
        files.size("../outside")
    assert str(caught.value) == f"{tmp_path}: path '../outside' points outside the archive"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_no_space_left_to_unpack_says_where_and_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ENOSPC: the spool file is /dev/full (the spool directory made in advance)."""
    full = tmp_path / "spool-dir"
    full.mkdir()
    (full / "archive.tar").symlink_to("/dev/full")
    monkeypatch.setattr(tempfile, "mkdtemp", lambda prefix="": str(full))
    (tmp_path / "a.tar.gz").write_bytes(gzip.compress(_tar({"a": b"a" * 5000})))
    with pytest.raises(SourceError) as caught:
        open_files(str(tmp_path / "a.tar.gz"))
    assert str(caught.value) == (f"{tmp_path}/a.tar.gz: no space left to unpack the archive "
                                 f"into {full}; point TMPDIR at a bigger disk")
    assert not full.exists()  # cleaned up all the same


def test_paths_written_with_backslashes_find_their_members(tmp_path: Path) -> None:
    """An archive made on Windows may name its members (and, in its JSON, its files)
    `blobs\\sha256\\…`; a backslash path leaving the archive is refused all the same."""
    (tmp_path / "a.tar").write_bytes(_tar({"blobs\\sha256\\abc": b"layer"}))
    files = open_files(str(tmp_path / "a.tar"))
    try:
        assert files.size("blobs/sha256/abc") == 5
        with files.open("blobs/sha256/abc") as f:
            assert f.read() == b"layer"
    finally:
        files.close()
    assert clean_path("blobs\\sha256\\abc", "x") == "blobs/sha256/abc"
    with pytest.raises(SourceError, match=r"^x: path .* points outside the archive$"):
        clean_path("..\\..\\etc\\passwd", "x")


def test_a_document_of_exactly_the_size_cap_is_read(tmp_path: Path) -> None:
    from freight.sources.files import MAX_METADATA_SIZE, read_small

    with (tmp_path / "index.json").open("wb") as f:
        f.truncate(MAX_METADATA_SIZE)  # sparse
    assert len(read_small(open_files(str(tmp_path)), "index.json", "index")) == \
        MAX_METADATA_SIZE
