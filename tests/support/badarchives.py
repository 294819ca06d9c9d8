"""Bad inputs, made by rewriting a real legacy ``docker save`` archive with tarfile.

Test archives are a few MB, so members are held in memory here (tests only).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Member = tuple[tarfile.TarInfo, bytes | None]
Edit = Callable[[list[Member]], list[Member]]


def read_members(archive: Path) -> list[Member]:
    members: list[Member] = []
    with tarfile.open(archive) as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info) if info.isfile() else None
            members.append((info, data.read() if data else None))
    return members


def write_members(members: list[Member], out: Path) -> Path:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out


def rewrite(source: Path, out: Path, edit: Edit) -> Path:
    return write_members(edit(read_members(source)), out)


def _manifest(members: list[Member]) -> list[dict[str, Any]]:
    for info, data in members:
        if info.name == "manifest.json" and data is not None:
            value: list[dict[str, Any]] = json.loads(data)
            return value
    raise AssertionError("no manifest.json")


def _replace(members: list[Member], name: str, data: bytes) -> list[Member]:
    return [(info, data if info.name == name else old) for info, old in members]


def _with_manifest(members: list[Member], manifest: Any) -> list[Member]:
    return _replace(members, "manifest.json", json.dumps(manifest).encode())


def missing_layer(members: list[Member]) -> list[Member]:
    """Drop the top layer's ``layer.tar``; manifest.json still names it."""
    top = _manifest(members)[0]["Layers"][-1]
    return [(info, data) for info, data in members if info.name != top]


def wrong_diff_id(members: list[Member]) -> list[Member]:
    """Replace the top layer with a valid tar whose digest is not the recorded DiffID."""
    top = _manifest(members)[0]["Layers"][-1]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        payload = b"not the layer the config describes\n"
        info = tarfile.TarInfo("intruder.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return _replace(members, top, buffer.getvalue())


def escaping_layer_path(members: list[Member]) -> list[Member]:
    """A manifest.json layer path that climbs out of the archive."""
    manifest = _manifest(members)
    manifest[0]["Layers"][0] = "../etc/passwd"
    return _with_manifest(members, manifest)


def absolute_config_path(members: list[Member]) -> list[Member]:
    """A manifest.json config path that is absolute."""
    manifest = _manifest(members)
    manifest[0]["Config"] = "/etc/passwd"
    return _with_manifest(members, manifest)


def malformed_manifest(members: list[Member]) -> list[Member]:
    """manifest.json that is not JSON at all (cut mid-value)."""
    return _replace(members, "manifest.json", b'[{"Config": "abc.json", "RepoTags": [')


def misshapen_manifest(members: list[Member]) -> list[Member]:
    """manifest.json that is JSON but not a list of image entries."""
    return _replace(members, "manifest.json", b'{"Config": 42, "Layers": "layer.tar"}')


def truncated_in_layer(members: list[Member]) -> list[Member]:
    """Metadata first, then the largest layer: the writer of ``truncate`` cuts inside it."""
    return sorted(members, key=lambda member: (member[1] or b"").__len__())


def truncate(path: Path, out: Path, *, fraction: float) -> Path:
    """The first ``fraction`` of a file, like an interrupted download."""
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def random_bytes(out: Path, size: int = 64 * 1024) -> Path:
    out.write_bytes(random.Random(1234).randbytes(size))
    return out


def empty(out: Path) -> Path:
    out.write_bytes(b"")
    return out


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


EDITS: dict[str, Edit] = {
    "missing-layer": missing_layer,
    "wrong-diff-id": wrong_diff_id,
    "escaping-layer-path": escaping_layer_path,
    "absolute-config-path": absolute_config_path,
    "malformed-manifest": malformed_manifest,
    "misshapen-manifest": misshapen_manifest,
}


def make_bad(kind: str, legacy: Path, out: Path) -> Path:
    """One bad archive by name (see ``BAD_KINDS``), derived from the ``legacy`` archive."""
    if kind == "empty":
        return empty(out)
    if kind == "random-bytes":
        return random_bytes(out)
    if kind == "truncated":
        return truncate(legacy, out, fraction=0.6)
    if kind == "truncated-in-layer":
        reordered = rewrite(legacy, out.with_suffix(".full.tar"), truncated_in_layer)
        return truncate(reordered, out, fraction=0.7)
    return rewrite(legacy, out, EDITS[kind])


BAD_KINDS = ("empty", "random-bytes", "truncated", "truncated-in-layer", *EDITS)
