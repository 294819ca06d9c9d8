"""The benchmark's test images, built once and cached under the work dir.

* `debian-base`: a `debootstrap --variant=minbase bookworm` rootfs, `docker import`ed
  (apt's .deb cache removed, as Debian's official images do).
* `bench/app:1` (~250 MB, 3 layers): debian-base plus two layers of mixed data, 60:40.
* `bench/big:1` (~800 MB, 4 layers): bench/app:1 plus one more layer, for the RSS target.

Each data layer is a third real library files (compress ~3x), a third generated text
(compresses well) and a third random bytes (does not compress), all from a fixed seed.
The layers use COPY, not RUN: the result is the same layer, and no container has to run.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench_procs import BenchError, Docker

MB = 1 << 20
APP_TARGET_BYTES = 250 * MB  # the brief: ~250 MB uncompressed
BIG_TARGET_BYTES = 800 * MB  # the brief's RSS target image
FILE_BYTES = 1 * MB  # size of each generated file; many files, as in a real layer
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/share")  # real binary data
SEED = 20250520  # fixed, so every machine builds the same text and random files
APP = "bench/app:1"
BIG = "bench/big:1"
BASE = "debian-base"


@dataclass(frozen=True)
class Archives:
    """The two `docker save` archives and what they hold."""

    app: Path
    big: Path
    meta: dict[str, object]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 `.sources` or one-line format)."""
    texts = [p.read_text() for p in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
    for text in texts:
        for stanza in text.split("\n\n"):
            uri = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.MULTILINE)
            if uri and suites and "bookworm" in suites.group(1).split():
                return uri.group(1)
    legacy = Path("/etc/apt/sources.list")
    lines = legacy.read_text().splitlines() if legacy.exists() else []
    for line in lines:
        match = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", line)
        if match:
            return match.group(1)
    raise BenchError("no bookworm mirror in /etc/apt/sources.list{,.d}; pass --mirror")


def ensure_images(docker: Docker, workdir: Path, mirror: str | None) -> Archives:
    """Build (or reuse) both images and their archives; both images end up in `docker`."""
    images = workdir / "images"
    images.mkdir(parents=True, exist_ok=True)
    app, big, meta_path = images / "app.tar", images / "big.tar", images / "meta.json"
    if app.exists() and big.exists() and meta_path.exists():
        for archive, ref in ((app, APP), (big, BIG)):
            if not _has_image(docker, ref):
                docker.run("load", "-i", str(archive))
        return Archives(app, big, json.loads(meta_path.read_text()))
    if not _has_image(docker, BASE):
        _import_base(docker, workdir, mirror or debian_mirror())
    base_size = _image_size(docker, BASE)
    rest = max(APP_TARGET_BYTES - base_size, 60 * MB)
    files = _library_files()
    _build(docker, workdir / "ctx-app", BASE, APP, [rest * 6 // 10, rest * 4 // 10], files, 0)
    _build(docker, workdir / "ctx-big", APP, BIG,
           [BIG_TARGET_BYTES - _image_size(docker, APP)], files, 2)
    for archive, ref in ((app, APP), (big, BIG)):
        docker.run("save", "-o", str(archive), ref)
    meta = {"app": _describe(app), "big": _describe(big), "base_bytes": base_size}
    meta_path.write_text(json.dumps(meta, indent=2))
    return Archives(app, big, meta)


def _has_image(docker: Docker, ref: str) -> bool:
    return docker.run("image", "inspect", ref, check=False).returncode == 0


def _image_size(docker: Docker, ref: str) -> int:
    return int(docker.run("image", "inspect", "-f", "{{.Size}}", ref).stdout.strip())


def _import_base(docker: Docker, workdir: Path, mirror: str) -> None:
    rootfs = workdir / "rootfs"
    if not (rootfs / "etc" / "debian_version").exists():
        print(f"debootstrap --variant=minbase bookworm from {mirror} ...", flush=True)
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), mirror],
                       check=True, stdout=subprocess.DEVNULL)
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()  # apt-get clean, as Debian's own images do
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."],
                           stdout=subprocess.PIPE)
    assert tar.stdout is not None
    docker.run("import", "-", BASE, stdin=tar.stdout.fileno())
    tar.stdout.close()
    if tar.wait() != 0:
        raise BenchError(f"tar of {rootfs} failed")


def _build(docker: Docker, context: Path, base: str, ref: str, layer_sizes: list[int],
           files: Iterator[Path], first_index: int) -> None:
    """`docker build` an image of `base` plus one COPY layer per entry of `layer_sizes`."""
    context.mkdir(parents=True, exist_ok=True)
    lines = [f"FROM {base}"]
    for offset, size in enumerate(layer_sizes):
        name = f"data{first_index + offset}"
        print(f"generating {size / MB:.0f} MB for {ref} layer {name} ...", flush=True)
        _write_mixed(context / name, size, files, SEED + first_index + offset)
        lines.append(f"COPY {name} /opt/bench/{name}")
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    docker.run("build", "--network", "none", "-t", ref, str(context))
    subprocess.run(["rm", "-rf", str(context)], check=True)


def _write_mixed(target: Path, size: int, files: Iterator[Path], seed: int) -> None:
    rng = random.Random(seed)
    third = size // 3
    _copy_library_files(target / "lib", third, files)
    _write_generated(target / "text", third, lambda n: _text(rng, n))
    _write_generated(target / "random", size - 2 * third, rng.randbytes)


def _library_files() -> Iterator[Path]:
    """Regular files from the system library dirs, in a fixed order, each once."""
    seen: set[Path] = set()
    for root in LIBRARY_DIRS:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and not path.is_symlink() and path.resolve() not in seen:
                seen.add(path.resolve())
                yield path


def _copy_library_files(target: Path, budget: int, files: Iterator[Path]) -> None:
    target.mkdir(parents=True)
    written = 0
    for index, path in enumerate(files):
        if written >= budget:
            return
        data = path.read_bytes()[: budget - written]
        (target / f"{index:06d}-{path.name}").write_bytes(data)
        written += len(data)
    raise BenchError("ran out of library files to copy into the test image")


def _write_generated(target: Path, budget: int, make: Callable[[int], bytes]) -> None:
    target.mkdir(parents=True)
    for index in range(0, budget, FILE_BYTES):
        (target / f"{index // FILE_BYTES:06d}").write_bytes(make(min(FILE_BYTES, budget - index)))


def _text(rng: random.Random, size: int) -> bytes:
    """Log-like lines: words from a small vocabulary, numbers, timestamps."""
    out = bytearray()
    while len(out) < size:
        words = " ".join(rng.choices(_VOCABULARY, k=rng.randint(4, 14)))
        out += f"2025-05-{rng.randint(1, 28):02d} {rng.randint(0, 99999):05d} {words}\n".encode()
    return bytes(out[:size])


def _word(rng: random.Random) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 10)))


_VOCABULARY = [_word(random.Random(i)) for i in range(4096)]


def _describe(archive: Path) -> dict[str, object]:
    """Archive size, format and layer sizes, read from the archive itself."""
    import tarfile

    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layers = manifest[0]["Layers"]
        sizes = [tar.getmember(name).size for name in layers]
    legacy = all(name.endswith("/layer.tar") for name in layers)
    return {"path": str(archive), "bytes": archive.stat().st_size, "layers": sizes,
            "format": "legacy (<id>/layer.tar)" if legacy else "oci (blobs/sha256)"}



def cached_archives(workdir: Path) -> Archives | None:
    """The archives `ensure_images` built earlier, without starting a dockerd; else None."""
    images = workdir / "images"
    app, big, meta_path = images / "app.tar", images / "big.tar", images / "meta.json"
    if app.exists() and big.exists() and meta_path.exists():
        return Archives(app, big, json.loads(meta_path.read_text()))
    return None


def app_variants(app: Path, dest: Path, count: int) -> list[Path]:
    """`count` distinct copies of the app image: `bench/app-vN:1`, built once, cached.

    Each layer of variant N gets one small extra file (`opt/bench/variant`) appended, so
    every layer (and the config) has a digest of its own: concurrent pushes of the
    variants share no blob, yet move the same amount and kind of data as the app image."""
    import hashlib
    import io
    import shutil
    import tarfile

    dest.mkdir(parents=True, exist_ok=True)
    out = [dest / f"app-v{n}.tar" for n in range(count)]
    missing = [n for n, path in enumerate(out) if not path.exists()]
    if not missing:
        return out
    with tarfile.open(app) as source:
        entry = json.load(source.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(source.extractfile(entry["Config"]))  # type: ignore[arg-type]
        for n in missing:
            work = dest / f"work-{n}"
            work.mkdir(exist_ok=True)
            diff_ids = []
            for index, name in enumerate(entry["Layers"]):
                layer = work / f"{index}.tar"
                with source.extractfile(name) as f, layer.open("wb") as w:  # type: ignore[union-attr]
                    shutil.copyfileobj(f, w, 1 << 20)
                with tarfile.open(layer, "a", format=tarfile.PAX_FORMAT) as t:
                    marker = f"variant {n} layer {index}\n".encode()
                    info = tarfile.TarInfo("opt/bench/variant")
                    info.size, info.mtime, info.mode = len(marker), 0, 0o644
                    t.addfile(info, io.BytesIO(marker))
                digest = hashlib.sha256()
                with layer.open("rb") as f:
                    while block := f.read(1 << 20):
                        digest.update(block)
                diff_ids.append(f"sha256:{digest.hexdigest()}")
            new_config = json.dumps({**config, "rootfs": {"type": "layers",
                                                          "diff_ids": diff_ids}}).encode()
            config_name = f"{hashlib.sha256(new_config).hexdigest()}.json"
            layers = [f"{d.split(':')[1]}/layer.tar" for d in diff_ids]
            manifest = json.dumps([{"Config": config_name, "RepoTags": [f"bench/app-v{n}:1"],
                                    "Layers": layers}]).encode()
            partial = out[n].with_suffix(".partial")
            with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as t:
                for index, name in enumerate(layers):
                    t.add(work / f"{index}.tar", arcname=name)
                for name, data in ((config_name, new_config), ("manifest.json", manifest)):
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime, info.mode = len(data), 0, 0o644
                    t.addfile(info, io.BytesIO(data))
            partial.rename(out[n])
            shutil.rmtree(work)
    return out
