"""Layer transforms: keep the bytes, or (de)compress them once while hashing every stage.

The output of a transform is written to a spool file (on disk, never in memory) so the
upload can be retried from its start, and its digest and size are known only when the last
byte has passed. Input is fed to the compressor in fixed-size blocks, so the same input
always gives the same output bytes (and the same digest) with the same settings.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from freight import mediatypes as mt
from freight.digest import Digest, Hasher
from freight.errors import SourceError

BLOCK = 1 << 20  # fixed compressor feed size: determinism depends on it, never change it
DEFAULT_GZIP_LEVEL = 1  # ISA-L level 1: ~4x zlib's speed, ratio within 3% of zlib -6
DEFAULT_ZSTD_LEVEL = 3  # zstd's own default: the usual speed/ratio balance
# Blocks compressed in parallel. ISA-L's threaded gzip and zstd's workers give the same bytes
# for any count of one or more, so this changes speed, never digests.
COMPRESS_THREADS = max(1, min(4, os.cpu_count() or 1))
# auto: compress what is uncompressed (gzip), keep what is compressed, so digests survive a
# round trip; gzip/zstd/none: every layer ends up so; keep: every blob exactly as stored.
SETTINGS = ("auto", "gzip", "zstd", "none", "keep")
AUTO, KEEP = "auto", "keep"
_TARGET = {"gzip": mt.GZIP, "zstd": mt.ZSTD, "none": mt.NONE}


def target_compression(setting: str, media_type: str) -> str | None:
    """The compression to convert a layer to, or None to send its bytes unchanged."""
    source = mt.layer_compression(media_type)
    if setting == KEEP or source is None:
        return None
    if setting == AUTO:
        return mt.GZIP if source == mt.NONE else None
    target = _TARGET[setting]
    return None if target == source else target


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Converted:
    digest: Digest
    size: int
    path: str


class _HashingReader:
    """Reads from `inner`, hashing (and counting) every byte that passes."""

    def __init__(self, inner: Readable, hasher: Hasher) -> None:
        self._inner, self._hasher = inner, hasher

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self._hasher.update(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(BLOCK):
            pass


def read_block(reader: Readable, size: int = BLOCK) -> bytes:
    """Exactly `size` bytes unless the stream ends first (decoders return short reads)."""
    parts, got = [], 0
    while got < size:
        data = reader.read(size - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def _decoder(raw: _HashingReader, compression: str) -> Readable:
    decoder: Readable = raw
    if compression == mt.GZIP:
        from isal import igzip

        decoder = igzip.IGzipFile(fileobj=raw)  # type: ignore[no-untyped-call]
    elif compression == mt.ZSTD:
        import zstandard

        decoder = zstandard.ZstdDecompressor().stream_reader(
            raw,  # type: ignore[arg-type]
            read_across_frames=True, closefd=False)
    return decoder


Tap = Callable[[str, int], None]  # told (spool path, bytes in it) after each flushed write


class _HashingWriter:
    """Writes to `out`, hashing (and counting) every byte; closing it leaves `out` open."""

    def __init__(self, out: BinaryIO, hasher: Hasher, path: str, tap: Tap | None) -> None:
        self._out, self._hasher, self._path, self._tap = out, hasher, path, tap

    def write(self, data: bytes | memoryview) -> int:
        self._hasher.update(bytes(data))
        written = self._out.write(data)
        if self._tap is not None:
            self._out.flush()
            self._tap(self._path, self._hasher.size)
        return written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _Encoder:
    """Compresses fixed-size blocks in parallel threads; output does not depend on threads."""

    def __init__(self, compression: str, sink: _HashingWriter) -> None:
        self._sink, self._writer, self._obj = sink, None, None
        if compression == mt.GZIP:
            from isal import igzip_threaded

            self._writer = igzip_threaded.open(  # type: ignore[no-untyped-call]
                sink, "wb", compresslevel=DEFAULT_GZIP_LEVEL, threads=COMPRESS_THREADS,
                block_size=BLOCK)
        elif compression == mt.ZSTD:
            import zstandard

            self._obj = zstandard.ZstdCompressor(level=DEFAULT_ZSTD_LEVEL,
                                                 threads=COMPRESS_THREADS).compressobj()

    def write(self, block: bytes) -> None:
        if self._writer is not None:
            self._writer.write(block)
        elif self._obj is not None:
            self._sink.write(self._obj.compress(block))
        else:
            self._sink.write(block)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        elif self._obj is not None:
            self._sink.write(self._obj.flush())


def convert(
    source: Readable, *, source_compression: str, target: str, spool_dir: str,
    expected: Digest | None, diff_id: Digest | None, what: str, tap: Tap | None = None,
) -> Converted:
    """Transcode `source` into a new spool file; verify its digest and diff_id on the way.

    `tap`, if given, is told how far the spool file got after every write (to stream it).
    """
    raw_hash, out_hash = Hasher(), Hasher()
    # an uncompressed source is its own plain tar: hashing it once checks both digests
    plain_hash = Hasher() if source_compression != mt.NONE else None
    raw = _HashingReader(source, raw_hash)
    fd, path = tempfile.mkstemp(prefix="layer-", dir=spool_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            encoder = _Encoder(target, _HashingWriter(out, out_hash, path, tap))
            _pump(_decoder(raw, source_compression), plain_hash, encoder, what)
            raw.drain()
        _check(raw_hash, plain_hash or raw_hash, expected, diff_id, what)
    except BaseException:
        os.unlink(path)
        raise
    return Converted(out_hash.digest, out_hash.size, path)


def _pump(decoded: Readable, plain: Hasher | None, encoder: _Encoder, what: str) -> None:
    try:
        while block := _decode_block(decoded, what):
            if plain is not None:
                plain.update(block)
            encoder.write(block)
    finally:
        encoder.close()


def _decode_block(decoded: Readable, what: str) -> bytes:
    try:
        return read_block(decoded)
    except Exception as exc:  # gzip, isal and zstandard raise unrelated types for bad data
        raise SourceError(f"{what}: cannot decompress the layer ({exc})") from None


def _check(raw: Hasher, plain: Hasher, expected: Digest | None, diff_id: Digest | None,
           what: str) -> None:
    if expected is not None:
        raw.check(expected, f"{what} (against its diff_id)" if expected == diff_id else what)
    if diff_id is not None:
        plain.check(diff_id, f"{what} (uncompressed, against its diff_id)")
