"""Write a small, real `docker save` archive (legacy format, two layers) for the quick start.

Usage: python examples/sample_archive.py OUT.tar
`docker load -i OUT.tar` accepts it; freight pushes it like any archive docker writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile


def _layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o755
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def main(out: str) -> None:
    layers = [
        _layer({"etc/motd": b"shipped by freight\n", "usr/share/doc/sample.txt": b"x" * 200_000}),
        _layer({"app/hello.sh": b"#!/bin/sh\necho hello from freight\n",
                "app/data.bin": bytes(range(256)) * 8192}),
    ]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/app/hello.sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_paths = [f"{d.split(':')[1]}/layer.tar" for d in diff_ids]
    with tarfile.open(out, "w") as tar:
        _add(tar, config_name, config)
        for path, layer in zip(layer_paths, layers, strict=True):
            _add(tar, path, layer)
        manifest = [{"Config": config_name, "RepoTags": ["sample/hello:1"], "Layers": layer_paths}]
        _add(tar, "manifest.json", json.dumps(manifest).encode())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sample.tar")
