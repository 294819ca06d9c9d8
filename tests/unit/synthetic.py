"""Small, real image archives built in Python (no docker needed) for unit tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar with fixed metadata (same input, same bytes)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layers: list[bytes], cmd: str = "/bin/hello") -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": [cmd]},
        "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
    }).encode()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    tar.addfile(info)


def legacy_archive(path: Path, images: list[tuple[list[str], list[bytes]]], *,
                   symlink_duplicates: bool = True, gzip_layers: bool = False) -> Path:
    """A `docker save` (legacy format) archive; identical layers become symlinks like docker's."""
    entries = []
    with tarfile.open(path, "w") as tar:
        seen: dict[str, str] = {}
        for n, (tags, layers) in enumerate(images):
            config = config_for(layers)
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            add(tar, config_name, config)
            names = []
            for i, data in enumerate(layers):
                name = f"{n:02d}{i:02d}{'0' * 60}/layer.tar"
                key = sha(data)
                if key in seen and symlink_duplicates:
                    add_symlink(tar, name, "../" + seen[key])
                else:
                    add(tar, name, gzip.compress(data, mtime=0) if gzip_layers else data)
                    seen.setdefault(key, name)
                names.append(name)
            entries.append({"Config": config_name, "RepoTags": tags, "Layers": names})
        add(tar, "manifest.json", json.dumps(entries).encode())
    return path


def sample_layers() -> list[bytes]:
    return [layer_tar({"bin/hello": b"hello\n" * 5000}),
            layer_tar({"data/x": bytes(range(256)) * 400})]
