"""Layer conversion: each setting gives bytes that match their media type, deterministically."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
import zstandard

from freight import mediatypes as mt
from freight.convert import convert, target_compression
from freight.digest import Digest
from freight.errors import DigestMismatch, SourceError
from freight.testing import layer_tar


def _layer() -> bytes:
    return layer_tar({"big": bytes(range(256)) * 20000, "small": b"x"})  # > one 1 MiB block


@pytest.mark.parametrize(("setting", "source", "expected"), [
    ("gzip", mt.OCI_LAYER, mt.GZIP), ("gzip", mt.DOCKER_LAYER_GZIP, None),
    ("zstd", mt.OCI_LAYER_GZIP, mt.ZSTD), ("none", mt.OCI_LAYER_ZSTD, mt.NONE),
    ("none", mt.OCI_LAYER, None), ("keep", mt.OCI_LAYER, None),
    ("gzip", "application/vnd.in-toto+json", None),
])
def test_target(setting: str, source: str, expected: str | None) -> None:
    assert target_compression(setting, source) == expected


@pytest.mark.parametrize("target", [mt.GZIP, mt.ZSTD, mt.NONE])
def test_output_matches_type_and_is_deterministic(tmp_path: Path, target: str) -> None:
    data = _layer()
    diff_id = Digest.of(data)
    outs = [convert(io.BytesIO(data), source_compression=mt.NONE, target=target,
                    spool_dir=str(tmp_path), expected=diff_id, diff_id=diff_id, what="layer")
            for _ in range(2)]
    assert outs[0].digest == outs[1].digest
    out = Path(outs[0].path).read_bytes()
    assert Digest.of(out) == outs[0].digest and len(out) == outs[0].size
    assert mt.sniff_compression(out) == target
    unzstd = zstandard.ZstdDecompressor().decompressobj().decompress
    plain = {mt.GZIP: gzip.decompress, mt.NONE: bytes, mt.ZSTD: unzstd}[target](out)
    assert plain == data


@pytest.mark.parametrize("source", [mt.GZIP, mt.ZSTD])
def test_decompresses_compressed_sources(tmp_path: Path, source: str) -> None:
    data = _layer()
    packed = gzip.compress(data) if source == mt.GZIP else zstandard.ZstdCompressor().compress(data)
    out = convert(io.BytesIO(packed), source_compression=source, target=mt.NONE,
                  spool_dir=str(tmp_path), expected=Digest.of(packed), diff_id=Digest.of(data),
                  what="layer")
    assert out.digest == Digest.of(data)


def test_diff_id_mismatch_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    data = _layer()
    with pytest.raises(DigestMismatch, match="diff_id"):
        convert(io.BytesIO(data), source_compression=mt.NONE, target=mt.GZIP,
                spool_dir=str(tmp_path), expected=None, diff_id=Digest.of(b"other"), what="layer")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_gzip_is_a_source_error(tmp_path: Path) -> None:
    packed = gzip.compress(_layer())
    broken = packed[:100] + bytes(len(packed) - 100)
    with pytest.raises(SourceError):
        convert(io.BytesIO(broken), source_compression=mt.GZIP, target=mt.NONE,
                spool_dir=str(tmp_path), expected=None, diff_id=None, what="layer")
    assert list(tmp_path.iterdir()) == []
