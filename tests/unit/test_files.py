"""Reading members of an archive in place: slices, links as docker writes them, and the
ones an archive should never have (loops, links out of it), wrapped archives' clean-up."""

from __future__ import annotations

import gzip
import io
import os
import re
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

from freight.errors import SourceError, UsageError
from freight.sources.files import (
    MAX_LINK_HOPS,
    MAX_METADATA_SIZE,
    DirFiles,
    SliceReader,
    TarFiles,
    open_files,
    read_small,
)

Entry = tuple[str, bytes | None, str | None, bytes]  # name, data, link target, tar type


def _tar(path: Path, entries: list[Entry]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data, link, kind in entries:
            info = tarfile.TarInfo(name)
            info.type = kind
            if link is not None:
                info.linkname = link
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _file(name: str, data: bytes) -> Entry:
    return (name, data, None, tarfile.REGTYPE)


def _symlink(name: str, target: str) -> Entry:
    return (name, None, target, tarfile.SYMTYPE)


def test_a_slice_reads_seeks_and_stops_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"0123456789abcdef")
    with SliceReader(str(path), 4, 8) as f:  # "456789ab"
        assert (f.readable(), f.seekable()) == (True, True)
        assert f.read(0) == b"" and f.tell() == 0
        assert f.read(1) == b"4" and f.read(2) == b"56" and f.tell() == 3
        buffer = bytearray(10)
        assert f.readinto(buffer) == 5 and bytes(buffer[:5]) == b"789ab"
        assert f.read() == b"" and f.read(4) == b""
        assert f.seek(-2, 2) == 6 and f.read() == b"ab"
        assert f.seek(2) == 2 and f.seek(1, 1) == 3 and f.read(2) == b"78"
        assert f.seek(100) == 8 and f.seek(-100, 1) == 0  # clamped to the slice
        assert f.read(-1) == b"456789ab"
    f.close()  # closing twice is harmless


def test_links_resolve_like_docker_wrote_them(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar", [
        _file("aaa/layer.tar", b"layer bytes"),
        _symlink("bbb/layer.tar", "../aaa/layer.tar"),  # docker's duplicate layer
        _symlink("ccc/layer.tar", "../bbb/layer.tar"),  # two hops
        ("hard", None, "aaa/layer.tar", tarfile.LNKTYPE),
        _file("./dot/name.json", b"{}"),
    ])
    files = TarFiles(str(archive))
    for name in ("aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar", "hard"):
        assert files.size(name) == len(b"layer bytes")
        with files.open(name) as f:
            assert f.read() == b"layer bytes"
    assert files.size("dot/name.json") == 2  # names are normalised
    assert sorted(files.names()) == ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar",
                                     "dot/name.json", "hard"]


def test_a_link_out_of_the_archive_resolves_to_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not yours")
    archive = _tar(tmp_path / "a.tar", [
        _file("x", b"x"), _symlink("up", "../../secret"), _symlink("abs", str(secret)),
        _file("../outside", b"dropped"),
    ])
    files = TarFiles(str(archive))
    assert files.size("up") is None and files.size("abs") is None
    assert "../outside" not in files.names() and files.size("outside") is None
    with pytest.raises(SourceError, match="'up' is missing from the archive"):
        files.open("up")


def test_a_link_loop_is_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar", [_file("x", b"x"), _symlink("a", "b"),
                                        _symlink("b", "a")])
    with pytest.raises(SourceError, match="too many links resolving 'a'"):
        TarFiles(str(archive)).size("a")


def _private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR and the working directory of this test's own, both empty."""
    import tempfile

    spool, cwd = tmp_path / "spool", tmp_path / "cwd"
    spool.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.chdir(cwd)
    return spool


def test_a_chain_of_links_as_long_as_allowed_still_resolves(tmp_path: Path) -> None:
    hops = MAX_LINK_HOPS - 1
    chain = [_symlink(f"l{n}", f"l{n + 1}") for n in range(hops)]
    archive = _tar(tmp_path / "a.tar", [*chain, _file(f"l{hops}", b"end")])
    assert TarFiles(str(archive)).size("l0") == 3


@pytest.mark.parametrize("wrap", ["gzip", "zstd"])
def test_a_wrapped_archive_is_unpacked_once_and_cleaned_up(tmp_path: Path, wrap: str,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    plain = _tar(tmp_path / "p.tar", [_file("m.json", b"[1]")]).read_bytes()
    data = gzip.compress(plain) if wrap == "gzip" else zstandard.ZstdCompressor().compress(plain)
    (tmp_path / "w").write_bytes(data)
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    files = open_files(str(tmp_path / "w"))
    with files.open("m.json") as f:
        assert f.read() == b"[1]"
    assert len(list(spool.iterdir())) == 1
    files.close()
    files.close()
    assert list(spool.iterdir()) == []


@pytest.mark.parametrize(("content", "says"), [
    (b"", "empty, not an image archive"),
    (b"\x1f\x8b\x08\x00broken", "the gzip archive is damaged"),
    (b"(\xb5/\xfd broken", "the zstd archive is damaged"),
    (b"x" * 2048, "not a readable tar archive"), (b"\0" * 10240, "the tar archive is empty"),
])
def test_what_is_not_a_tar_says_so_and_names_it(tmp_path: Path, content: bytes,
                                                says: str) -> None:
    (tmp_path / "bad").write_bytes(content)
    with pytest.raises(SourceError, match=f"^{re.escape(str(tmp_path / 'bad'))}: {says}"):
        open_files(str(tmp_path / "bad"))


def test_a_last_member_ending_exactly_at_the_end_of_the_file_is_whole(tmp_path: Path) -> None:
    whole = _tar(tmp_path / "a.tar", [_file("x", b"x" * 1024)]).read_bytes()
    (tmp_path / "bare.tar").write_bytes(whole[:512 + 1024])  # no end-of-archive blocks
    assert TarFiles(str(tmp_path / "bare.tar")).size("x") == 1024


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes, *, tty: bool = False) -> None:
    class Stdin(io.TextIOWrapper):
        def isatty(self) -> bool:
            return tty

    monkeypatch.setattr(sys, "stdin", Stdin(io.BytesIO(data)))


@pytest.mark.parametrize("wrap", ["plain", "gzip"])
def test_an_archive_on_standard_input_is_read_once_and_cleaned_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wrap: str) -> None:
    plain = _tar(tmp_path / "p.tar", [_file("manifest.json", b"[]")]).read_bytes()
    _stdin(monkeypatch, gzip.compress(plain) if wrap == "gzip" else plain)
    spool = _private_tmp(tmp_path, monkeypatch)
    files = open_files("-")
    assert files.label == "standard input" and files.size("manifest.json") == 2
    (made,) = spool.iterdir()  # one temporary directory, named for what it is
    assert made.name.startswith("freight-archive-")
    files.close()
    assert list(spool.iterdir()) == [] and list(Path.cwd().iterdir()) == []


def test_standard_input_that_is_a_terminal_is_a_usage_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, b"", tty=True)
    with pytest.raises(UsageError) as caught:
        open_files("-")
    assert str(caught.value) == ("the source `-` reads an archive from standard input, which "
                                 "is a terminal: pipe one in (docker save app | freight push - "
                                 "REF)")
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(UsageError, match="pipe one in"):
        open_files("-")


def test_a_zstd_archive_of_several_frames_is_read_to_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`zstd -T0` and pzstd write several frames; every one of them is the archive."""
    plain = _tar(tmp_path / "p.tar", [_file("a", b"a" * 30_000), _file("b", b"b" * 30_000)])
    data = plain.read_bytes()
    frames = [zstandard.ZstdCompressor().compress(part) for part in (data[:10_000],
                                                                     data[10_000:])]
    (tmp_path / "w.tar.zst").write_bytes(b"".join(frames))
    _private_tmp(tmp_path, monkeypatch)
    files = open_files(str(tmp_path / "w.tar.zst"))
    with files.open("b") as f:
        assert f.read() == b"b" * 30_000
    files.close()


def test_a_plain_tar_is_read_in_place_never_copied(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tar(tmp_path / "p.tar", [_file("a", b"a")])
    spool = _private_tmp(tmp_path, monkeypatch)
    files = open_files(str(archive))
    assert files.size("a") == 1 and list(spool.iterdir()) == []


def test_a_cut_member_is_named(tmp_path: Path) -> None:
    whole = _tar(tmp_path / "a.tar", [_file("big", b"b" * 10_000)]).read_bytes()
    (tmp_path / "cut.tar").write_bytes(whole[:5000])
    with pytest.raises(SourceError, match=r"truncated|not a readable"):
        open_files(str(tmp_path / "cut.tar"))


def test_small_documents_are_read_whole_and_bounded(tmp_path: Path) -> None:
    root = tmp_path / "layout"
    root.mkdir()
    (root / "index.json").write_bytes(b'{"a": 1}')
    files = DirFiles(str(root))
    assert read_small(files, "index.json", "the index") == b'{"a": 1}'
    with pytest.raises(SourceError, match=r"the index 'nope\.json' is missing"):
        read_small(files, "nope.json", "the index")
    with open(root / "huge.json", "wb") as f:
        f.truncate(MAX_METADATA_SIZE + 1)  # sparse: no disk used
    with pytest.raises(SourceError, match="too large"):
        read_small(files, "huge.json", "the index")
    with pytest.raises(SourceError, match="cannot read 'nope'"):
        files.open("nope")
    assert files.size("nope") is None
    with pytest.raises(SourceError, match="points outside the archive"):
        files.size(".")


def test_a_directory_is_read_in_place(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_bytes(b"abc")
    files = open_files(str(tmp_path))
    assert isinstance(files, DirFiles) and files.size("sub/f") == 3
    with files.open("sub/./f") as f:
        assert f.read() == b"abc"
    assert os.path.exists(tmp_path / "sub" / "f")
