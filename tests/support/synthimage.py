"""`docker save` archives (legacy format) made in Python, of any size, without a docker engine.

Layer contents are pseudo-random bytes from a fixed seed: the same call gives the same
archive, so digests can be compared across runs, and the bytes do not compress, so a test
moves as many bytes as it asks for.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

MB = 1 << 20
FILE_BYTES = 4 * MB  # size of each generated file inside a layer
SEED = 4242


@dataclass(frozen=True)
class SynthImage:
    archive: Path
    reference: str  # the RepoTag inside the archive
    image_id: str  # sha256 of the config: what the pushed manifest's config digest must be
    layer_sizes: tuple[int, ...]  # bytes of each uncompressed layer tar


def make_archive(
    out: Path, layer_mb: list[float], *, reference: str = "synth/big:1", seed: int = SEED
) -> SynthImage:
    """A docker-save archive whose layers hold roughly ``layer_mb`` MiB of random data each."""
    rng = random.Random(seed)
    layers = [_layer(rng, int(mb * MB), index) for index, mb in enumerate(layer_mb)]
    diff_ids = ["sha256:" + hashlib.sha256(layer).hexdigest() for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    members = [(f"{config_hex}.json", config)]
    names = []
    for diff_id, layer in zip(diff_ids, layers, strict=True):
        name = f"{diff_id.removeprefix('sha256:')}/layer.tar"
        names.append(name)
        members.append((name, layer))
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": [reference], "Layers": names}]
    members.append(("manifest.json", json.dumps(manifest).encode()))
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return SynthImage(out, reference, f"sha256:{config_hex}", tuple(len(x) for x in layers))


def _layer(rng: random.Random, size: int, index: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        left, part = size, 0
        while left > 0 or part == 0:
            n = min(FILE_BYTES, max(left, 0))
            info = tarfile.TarInfo(f"data/{index}/{part:04d}.bin")
            info.size, info.mtime = n, 0
            tar.addfile(info, io.BytesIO(rng.randbytes(n)))
            left -= n
            part += 1
    return out.getvalue()
