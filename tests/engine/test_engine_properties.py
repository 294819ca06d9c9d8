"""The engine finishes, whatever the image: a property test over generated images.

Each example builds an archive (docker legacy format with symlinked duplicates, or an OCI
layout) of 1 to 10 layers of random sizes, duplicates anywhere, layers uncompressed, gzip or
zstd; puts some of them at the registry (same repository: skipped) or in the cache (another
repository: mounted) first; then pushes it with every compression setting, 1 to 8 jobs,
streaming on or off, to an embedded registry in this process. A push that has not finished
within DEADLINE seconds fails the test with every thread's stack (a hang is a failure, not
a stuck CI); what the registry then holds must verify against the config's diff_ids.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tarfile
import threading
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import zstandard
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import freight
from freight.convert import SETTINGS

DEADLINE = float(os.environ.get("FREIGHT_PROPERTY_DEADLINE", "120"))  # seconds; a push takes < 1
EXAMPLES = int(os.environ.get("FREIGHT_PROPERTY_EXAMPLES", "30"))


@dataclass(frozen=True)
class LayerSpec:
    content: int  # equal numbers: identical layers (docker writes the second as a symlink)
    size: int
    compression: str  # "tar", "gzip", "zstd" as stored in the archive


def pattern(content: int, size: int) -> bytes:
    return (hashlib.sha256(str(content).encode()).digest() * (size // 32 + 1))[:size]


def layer_tar(content: int, size: int,
              data: Callable[[int, int], bytes] = pattern) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"layer-{content}")
        info.size, info.mtime = size, 0
        tar.addfile(info, io.BytesIO(data(content, size)))
    return out.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        c = zlib.compressobj(1, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_archive(path: Path, specs: list[LayerSpec], tag: str,
                   data: Callable[[int, int], bytes] = pattern) -> list[str]:
    """A legacy `docker save` archive; returns the config's diff_ids."""
    plain = [layer_tar(s.content, s.size, data) for s in specs]
    diff_ids = [sha(p) for p in plain]
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    names, seen = [], {}
    with tarfile.open(path, "w") as tar:
        _add(tar, hashlib.sha256(config).hexdigest() + ".json", config)
        for i, (spec, data) in enumerate(zip(specs, plain, strict=True)):
            name = f"{i:064d}/layer.tar"
            if spec.content in seen:  # docker's duplicate: a relative symlink
                link = tarfile.TarInfo(name)
                link.type, link.linkname = tarfile.SYMTYPE, f"../{seen[spec.content]}"
                tar.addfile(link)
            else:
                _add(tar, name, compress(data, spec.compression))
                seen[spec.content] = name
            names.append(name)
        entry = {"Config": hashlib.sha256(config).hexdigest() + ".json",
                 "RepoTags": [f"prop/app:{tag}"], "Layers": names}
        _add(tar, "manifest.json", json.dumps([entry]).encode())
    return diff_ids


LAYER_TYPES = {"tar": "application/vnd.oci.image.layer.v1.tar",
               "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}


def oci_layout(root: Path, specs: list[LayerSpec], tag: str) -> list[str]:
    """An OCI image layout directory; returns the config's diff_ids."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = sha(data)
        (blobs / digest.split(":")[1]).write_bytes(data)
        return digest

    plain = [layer_tar(s.content, s.size) for s in specs]
    diff_ids = [sha(p) for p in plain]
    stored: dict[int, bytes] = {}
    layers = []
    for spec, data in zip(specs, plain, strict=True):
        blob = stored.setdefault(spec.content, compress(data, spec.compression))
        kind = next(k for k, v in stored.items() if v is blob)
        compression = next(s.compression for s in specs if s.content == kind)
        layers.append({"mediaType": LAYER_TYPES[compression], "digest": put(blob),
                       "size": len(blob)})
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config), "size": len(config)},
                           "layers": layers}).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return diff_ids


def run_with_deadline(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a thread; past DEADLINE, fail with the stack of every thread."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="property-push")
    thread.start()
    thread.join(DEADLINE)
    if thread.is_alive():
        stacks = "\n".join(f"--- {t.name}\n" + "".join(traceback.format_stack(
            sys._current_frames()[t.ident])) for t in threading.enumerate()
            if t.ident in sys._current_frames())
        pytest.fail(f"push did not finish within {DEADLINE} s (a hang); threads:\n{stacks}")
    if "error" in box:
        raise box["error"]
    return box["value"]


def decompress(data: bytes, media_type: str) -> bytes:
    if media_type.endswith(("gzip", "+gzip")):
        return zlib.decompress(data, 47)
    if media_type.endswith("+zstd"):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data


def verify(url: str, repo: str, tag: str, diff_ids: list[str]) -> None:
    """What the registry holds under repo:tag is the image: layers match the diff_ids."""
    with httpx.Client(base_url=url, timeout=30) as client:
        reply = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ", ".join(
            ["application/vnd.oci.image.manifest.v1+json",
             "application/vnd.docker.distribution.manifest.v2+json"])})
        assert reply.status_code == 200, reply.text
        manifest = reply.json()
        config = client.get(f"/v2/{repo}/blobs/{manifest['config']['digest']}").json()
        assert config["rootfs"]["diff_ids"] == diff_ids
        assert len(manifest["layers"]) == len(diff_ids)
        for desc, diff_id in zip(manifest["layers"], diff_ids, strict=True):
            blob = client.get(f"/v2/{repo}/blobs/{desc['digest']}").content
            assert sha(blob) == desc["digest"] and len(blob) == desc["size"]
            assert sha(decompress(blob, desc["mediaType"])) == diff_id


layer_specs = st.lists(st.builds(LayerSpec, content=st.integers(0, 4),
                                 size=st.integers(0, 300_000),
                                 compression=st.sampled_from(["tar", "gzip", "zstd"])),
                       min_size=1, max_size=10)


def _consistent(specs: list[LayerSpec]) -> list[LayerSpec]:
    """Identical contents are identical layers: same size and compression as the first."""
    first: dict[int, LayerSpec] = {}
    return [first.setdefault(s.content, s) for s in specs]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from server.conftest import serving

    with serving(tmp_path_factory.mktemp("property-registry")) as live:
        yield live.url.removeprefix("http://")


_counter = iter(range(1_000_000))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(specs=layer_specs, layout=st.booleans(), compression=st.sampled_from(SETTINGS),
       jobs=st.integers(1, 8), stream=st.sampled_from([None, True, False]),
       before=st.sampled_from(["nothing", "same-repo", "other-repo"]),
       prefix=st.integers(0, 10))
# the hang of issue 10: a duplicate, then a smaller layer to compress after it in size order
@example(specs=[LayerSpec(1, 200_000, "tar"), LayerSpec(2, 100_000, "tar"),
                LayerSpec(1, 200_000, "tar"), LayerSpec(3, 10_000, "tar")],
         layout=False, compression="gzip", jobs=1, stream=False, before="nothing", prefix=0)
@example(specs=[LayerSpec(1, 200_000, "tar"), LayerSpec(1, 200_000, "tar"),
                LayerSpec(3, 10_000, "tar")],
         layout=False, compression="zstd", jobs=2, stream=True, before="nothing", prefix=0)
def test_every_push_finishes_and_verifies(registry: str, tmp_path_factory: pytest.TempPathFactory,
                                          monkeypatch: pytest.MonkeyPatch,
                                          specs: list[LayerSpec], layout: bool,
                                          compression: str, jobs: int, stream: bool | None,
                                          before: str, prefix: int) -> None:
    specs = _consistent(specs)
    n = next(_counter)
    work = tmp_path_factory.mktemp(f"prop{n}")
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(work / "cache"))
    repo, tag = f"prop/app{n}", "v1"
    if before != "nothing" and prefix:
        early = work / "early"
        builder = oci_layout if layout else docker_archive
        builder(early if layout else early.with_suffix(".tar"), specs[:prefix], "v0")
        source = early if layout else early.with_suffix(".tar")
        target = repo if before == "same-repo" else f"prop/other{n}"
        run_with_deadline(lambda: freight.push(source, f"{registry}/{target}:v0",
                                               compression=compression, jobs=jobs))
    if layout:
        diff_ids = oci_layout(work / "layout", specs, tag)
        source = work / "layout"
    else:
        source = work / "app.tar"
        diff_ids = docker_archive(source, specs, tag)
    results = run_with_deadline(lambda: freight.push(
        source, f"{registry}/{repo}:{tag}", compression=compression, jobs=jobs, stream=stream))
    assert [str(r.reference) for r in results] == [f"{registry}/{repo}:{tag}"]
    verify(f"http://{registry}", repo, tag, diff_ids)
