"""Random access to the files of an archive or a directory, without extracting anything.

A tar is indexed in one pass over its headers (tarfile seeks over member data), then each
member is read as a slice of the file. A gzip- or zstd-wrapped tar, detected by its magic
bytes, is first decompressed once into a temporary file, since compressed streams cannot
seek; so is an archive on standard input (`-`: `docker save app | freight push - REF`).
Paths are normalised and may never leave the archive.
"""

from __future__ import annotations

import errno
import io
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from freight.errors import SourceError, UsageError
from freight.mediatypes import GZIP, ZSTD, sniff_compression

MAX_METADATA_SIZE = 64 << 20  # JSON documents bigger than this are not manifests or configs
MAX_LINK_HOPS = 16  # docker writes one hop; more is a loop or an attack
COPY_BUFFER = 1 << 20
STDIN = "-"  # the source name that means: read the archive from standard input


class Files(Protocol):
    """Named files inside a source (archive members or files under a directory)."""

    label: str

    def size(self, path: str) -> int | None:
        """The size of `path`, or None if it does not exist."""

    def open(self, path: str) -> BinaryIO:
        """A reader positioned at the start of `path`'s bytes (and ending at its end)."""

    def close(self) -> None: ...


def clean_path(path: str, where: str) -> str:
    """`path` normalised inside the archive; SourceError if it escapes or is absolute."""
    norm = posixpath.normpath(path.replace("\\", "/"))
    if path.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise SourceError(f"{where}: path {path!r} points outside the archive")
    return norm


def read_small(files: Files, path: str, what: str) -> bytes:
    """The whole of a small metadata file; SourceError if missing or implausibly large."""
    size = files.size(path)
    if size is None:
        raise SourceError(f"{files.label}: {what} {path!r} is missing from the archive")
    if size > MAX_METADATA_SIZE:
        raise SourceError(f"{files.label}: {what} {path!r} is too large ({size} bytes)")
    with files.open(path) as f:
        data = f.read(size)
    if len(data) != size:
        raise SourceError(f"{files.label}: {what} {path!r} is truncated")
    return data


def compression_of(files: Files, path: str) -> str:
    """What `path`'s first bytes say about its compression (`tar`, `gzip` or `zstd`)."""
    with files.open(path) as f:
        return sniff_compression(f.read(4))


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int
    link: str | None  # normalised target path for symlinks and hardlinks


class SliceReader:
    """A read-only file object over bytes [offset, offset+size) of a shared file."""

    def __init__(self, path: str, offset: int, size: int) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._offset, self._size, self._pos = offset, size, 0

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._pos
        n = left if n < 0 else min(n, left)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._offset + self._pos)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, min(self._size, base + pos))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SliceReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TarFiles:
    """The members of a (possibly gzip/zstd-wrapped) tar file, indexed once."""

    def __init__(self, path: str, *, label: str | None = None) -> None:
        self.label = label or path
        self._tmpdir: str | None = None
        try:
            self._path = self._plain_tar(path)
            self._members = self._index()
        except BaseException:
            self.close()
            raise

    def _plain_tar(self, path: str) -> str:
        """`path` itself if it is a plain tar file, else a temporary plain copy."""
        if path == STDIN:
            return self._spool(_stdin())
        try:
            with open(path, "rb") as f:
                if sniff_compression(f.read(4)) == "tar":
                    return path
                f.seek(0)
                return self._spool(f)
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}") from None

    def _spool(self, stream: BinaryIO) -> str:
        """Copy `stream` into a temporary file, unwrapping gzip or zstd on the way."""
        head = _read_exactly(stream, 4)
        self._tmpdir = tempfile.mkdtemp(prefix="freight-archive-")
        plain = os.path.join(self._tmpdir, "archive.tar")
        _unwrap(_Prefixed(head, stream), plain, sniff_compression(head), self.label)
        return plain

    def _index(self) -> dict[str, _Member]:
        if os.path.getsize(self._path) == 0:
            raise SourceError(f"{self.label}: empty, not an image archive")
        members: dict[str, _Member] = {}
        try:
            with tarfile.open(self._path, "r:") as tar:
                for info in tar:
                    self._add(members, info)
        except (tarfile.TarError, EOFError) as exc:
            raise SourceError(f"{self.label}: not a readable tar archive ({exc})") from None
        total = os.path.getsize(self._path)
        for name, m in members.items():
            if m.link is None and m.offset + m.size > total:
                raise SourceError(
                    f"{self.label}: archive is truncated (member {name!r} is cut off)"
                )
        if not members:
            raise SourceError(f"{self.label}: the tar archive is empty")
        return members

    def _add(self, members: dict[str, _Member], info: tarfile.TarInfo) -> None:
        try:
            name = clean_path(info.name, self.label)
        except SourceError:
            return  # a member we will never be asked for; refusing it here is not needed
        if info.issym():
            target = posixpath.join(posixpath.dirname(name), info.linkname)
            members[name] = _Member(0, 0, _soft_clean(target))
        elif info.islnk():
            members[name] = _Member(0, 0, _soft_clean(info.linkname))
        elif info.isfile():
            members[name] = _Member(info.offset_data, info.size, None)

    def _resolve(self, path: str) -> _Member | None:
        member = self._members.get(path)
        for _ in range(MAX_LINK_HOPS):
            if member is None or member.link is None:
                return member
            member = self._members.get(member.link)
        raise SourceError(f"{self.label}: too many links resolving {path!r}")

    def size(self, path: str) -> int | None:
        member = self._resolve(path)
        return None if member is None else member.size

    def open(self, path: str) -> BinaryIO:
        member = self._resolve(path)
        if member is None:
            raise SourceError(f"{self.label}: {path!r} is missing from the archive")
        return SliceReader(self._path, member.offset, member.size)  # type: ignore[return-value]

    def names(self) -> list[str]:
        return list(self._members)

    def close(self) -> None:
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _soft_clean(path: str) -> str:
    """A link target normalised; one that escapes the archive resolves to nothing."""
    norm = posixpath.normpath(path)
    return "\0escaped" if norm.startswith("../") or norm.startswith("/") else norm


def _stdin() -> BinaryIO:
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError("the source `-` reads an archive from standard input, which is a "
                         "terminal: pipe one in (docker save app | freight push - REF)")
    return sys.stdin.buffer


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    parts, got = [], 0
    while got < n and (data := stream.read(n - got)):
        parts.append(data)
        got += len(data)
    return b"".join(parts)


class _Prefixed(io.RawIOBase):
    """`head` (already read from `rest` to sniff it), then the rest of `rest`."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _unwrap(src: io.RawIOBase, dst: str, compression: str, label: str) -> None:
    """Write `src` to the file `dst`, decompressed if `compression` is gzip or zstd."""
    reader: BinaryIO = io.BufferedReader(src, COPY_BUFFER)
    try:
        with open(dst, "wb") as fout:
            if compression == GZIP:
                from isal import igzip

                with igzip.IGzipFile(fileobj=reader) as gz:  # type: ignore[no-untyped-call]
                    shutil.copyfileobj(gz, fout, COPY_BUFFER)
            elif compression == ZSTD:
                import zstandard

                unzstd = zstandard.ZstdDecompressor().stream_reader(reader,
                                                                    read_across_frames=True)
                shutil.copyfileobj(unzstd, fout, COPY_BUFFER)
            else:
                shutil.copyfileobj(reader, fout, COPY_BUFFER)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise SourceError(f"{label}: no space left to unpack the archive into "
                              f"{os.path.dirname(dst)}; point TMPDIR at a bigger disk") from None
        raise SourceError(f"{label}: the {compression} archive is damaged ({exc})") from None
    except (EOFError, ValueError) as exc:
        raise SourceError(f"{label}: the {compression} archive is damaged ({exc})") from None
    except Exception as exc:  # zstandard.ZstdError and isal errors do not share a base
        raise SourceError(f"{label}: the {compression} archive is damaged ({exc})") from None


class DirFiles:
    """The files under a directory (an OCI image layout)."""

    def __init__(self, root: str) -> None:
        self.label = root
        self._root = Path(root)

    def _full(self, path: str) -> Path:
        return self._root / clean_path(path, self.label)

    def size(self, path: str) -> int | None:
        full = self._full(path)
        return full.stat().st_size if full.is_file() else None

    def open(self, path: str) -> BinaryIO:
        try:
            return open(self._full(path), "rb")
        except OSError as exc:
            raise SourceError(f"{self.label}: cannot read {path!r}: {exc.strerror}") from None

    def close(self) -> None:
        pass


def open_files(path: str) -> Files:
    """A directory, a (possibly compressed) tar file, or `-`: a tar on standard input."""
    if path == STDIN:
        return TarFiles(STDIN, label="standard input")
    if os.path.isdir(path):
        return DirFiles(path)
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file or directory")
    return TarFiles(path)
