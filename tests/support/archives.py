"""Producing image archives the way users do: docker save, ctr export, gzip/zstd wrapping."""

from __future__ import annotations

import gzip
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import zstandard

from .docker import DockerEngine

COPY_BUFFER = 1 << 20


def docker_save(docker: DockerEngine, out: Path, *references: str) -> Path:
    """``docker save -o out REFS``; by 20.10 this is always the legacy format."""
    docker.run("save", "--output", str(out), *references)
    return out


def gzip_wrap(source: Path, out: Path) -> Path:
    """Like ``docker save | gzip > out``."""
    with source.open("rb") as src, gzip.open(out, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst, COPY_BUFFER)
    return out


def zstd_wrap(source: Path, out: Path) -> Path:
    """Like ``docker save | zstd > out``."""
    with source.open("rb") as src, out.open("wb") as dst:
        zstandard.ZstdCompressor(level=3).copy_stream(src, dst)
    return out


def read_member(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None, f"{name} in {archive} is not a file"
        return extracted.read()


def docker_manifest(archive: Path) -> list[dict[str, Any]]:
    """The ``manifest.json`` of a docker-save style archive."""
    value: list[dict[str, Any]] = json.loads(read_member(archive, "manifest.json"))
    return value


def symlinked_members(archive: Path) -> dict[str, str]:
    """Symlink members of a tar: name → link target."""
    with tarfile.open(archive) as tar:
        return {m.name: m.linkname for m in tar.getmembers() if m.issym()}
