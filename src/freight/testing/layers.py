"""Layer tars for tests: given files, or pseudo-random bytes from a seed; and their compression.

Everything here is deterministic: the same arguments give the same bytes (every tar header
has mtime 0 and fixed modes), so digests can be compared across runs and machines.
Layers are built in memory, one at a time: keep them to test sizes (tens of MB).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from freight import mediatypes as mt

Compression = Literal["none", "gzip", "zstd"]

FILE_BYTES = 4 << 20  # bytes per file inside a random layer: like real layers, many files
GZIP_LEVEL = 1  # fast; the level changes the digest, so it is fixed
ZSTD_LEVEL = 3  # zstd's own default

_OCI_TYPES: dict[Compression, str] = {
    "none": mt.OCI_LAYER, "gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD,
}


def sha256(data: bytes) -> str:
    """`sha256:<hex>` of `data`."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: Mapping[str, bytes]) -> bytes:
    """An uncompressed layer tar holding `files` (name → content), in the order given."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def random_layer(size: int, *, seed: int = 0, name: str = "random") -> bytes:
    """A layer tar with about `size` bytes of pseudo-random (incompressible) file content.

    The tar itself is a little larger than `size` (headers, padding); `size` 0 gives a layer
    with one empty file, which is still a distinct, valid layer.
    """
    if size < 0:
        raise ValueError(f"a layer size cannot be negative: {size}")
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    left = size
    while left > 0 or not files:
        n = min(FILE_BYTES, left)
        files[f"{name}/{seed}/{len(files):04d}.bin"] = rng.randbytes(n)
        left -= n
    return layer_tar(files)


@dataclass(frozen=True)
class Blob:
    """A layer as stored: its bytes (maybe compressed), digest, media type, and diff_id."""

    data: bytes
    diff_id: str  # sha256 of the uncompressed tar, as the image config lists it
    compression: Compression

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def media_type(self) -> str:
        """The OCI layer media type for these bytes."""
        return _OCI_TYPES[self.compression]


def compressed(tar: bytes, compression: Compression) -> Blob:
    """`tar` stored with `compression`, reproducibly (no timestamp in the gzip header)."""
    if compression == "gzip":
        data = gzip.compress(tar, compresslevel=GZIP_LEVEL, mtime=0)
    elif compression == "zstd":
        import zstandard  # only when asked for: a dependency of freight, but not a light one

        data = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(tar)
    elif compression == "none":
        data = tar
    else:
        raise ValueError(f"unknown compression {compression!r}: use none, gzip or zstd")
    return Blob(data, sha256(tar), compression)
