"""Test images on disk, made in Python without a docker engine, in every format freight reads.

`random_image()` is the quick way (in the spirit of go-containerregistry's `random.Image`):
N layers of pseudo-random bytes, the same bytes for the same seed. `write_images()` takes
images spelled out layer by layer (`ImageSpec`), for tests that need shared or chosen layers.
Both return what was written (`ImageSet`): every digest a test may want to check against.

    >>> from freight.testing import random_image
    >>> made = random_image(tmp_path / "app.tar", layers=[1000, 0, 5000],
    ...                     duplicates={2: 0}, compression="gzip")
    >>> made.image.diff_ids  # what a registry copy must verify against
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from freight.testing.formats import Format, Prepared, oci_manifest, write
from freight.testing.layers import Blob, Compression, compressed, random_layer, sha256

DEFAULT_LAYERS = 2  # a base and one more: the smallest image where order matters
MAX_RANDOM_LAYER_BYTES = 64 * 1024  # random sizes stay small: tests run on shared cores
DEFAULT_TAG = "random/image:1"


@dataclass(frozen=True)
class ImageSpec:
    """An image to write: its layers (uncompressed tars, in order) and tags.

    Equal layers are one blob; in a legacy `docker save` archive a repeat at another depth
    is written as a symlink to the first copy, as docker does.
    """

    layers: Sequence[bytes]
    tags: Sequence[str] = ()
    architecture: str = "amd64"
    os: str = "linux"
    cmd: Sequence[str] = ("/bin/true",)


@dataclass(frozen=True)
class WrittenImage:
    """One image as written: config, layer blobs (as stored) and its OCI manifest."""

    tags: tuple[str, ...]
    config: bytes
    layers: tuple[Blob, ...]
    manifest: bytes  # the OCI manifest of the layers as stored; an OCI layout holds these bytes

    @property
    def config_digest(self) -> str:
        """The image ID: what a pushed manifest's config digest must be."""
        return sha256(self.config)

    @property
    def manifest_digest(self) -> str:
        return sha256(self.manifest)

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """Bytes of each layer as stored (compressed, if it is)."""
        return tuple(layer.size for layer in self.layers)


@dataclass(frozen=True)
class ImageSet:
    """What `random_image` or `write_images` wrote to `path`, in `format`."""

    path: Path
    format: Format
    images: tuple[WrittenImage, ...] = field(default_factory=tuple)

    @property
    def image(self) -> WrittenImage:
        """The image, when there is exactly one."""
        if len(self.images) != 1:
            raise ValueError(f"{self.path} holds {len(self.images)} images, not one")
        return self.images[0]


Compressions = Compression | Sequence[Compression]  # one for all layers, or one per layer


def write_images(path: str | os.PathLike[str], images: Sequence[ImageSpec], *,
                 format: Format = "docker", compression: Compressions = "none",
                 symlink_duplicates: bool = True) -> ImageSet:
    """Write `images` to `path` in `format`, each layer stored with `compression` (or with
    `compression[i]` for layer i of each image, to mix compressed and plain layers).

    Formats: `docker` (legacy `docker save`), `docker25` (Docker 25+ `docker save`: an OCI
    layout plus manifest.json), `oci` (an OCI image layout directory), `oci-archive` (a tar
    of one). `symlink_duplicates=False` writes repeated layers again in a legacy archive.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)  # a test's tmp_path / "sub" / "app.tar"
    prepared = tuple(_prepare(spec, compression) for spec in images)
    write(out, prepared, format, symlink_duplicates=symlink_duplicates)
    written = tuple(WrittenImage(p.tags, p.config, p.layers, p.manifest) for p in prepared)
    return ImageSet(out, format, written)


def random_image(path: str | os.PathLike[str], *, layers: int | Sequence[int] = DEFAULT_LAYERS,
                 seed: int = 0, format: Format = "docker", compression: Compressions = "none",
                 duplicates: Mapping[int, int] | None = None, images: int = 1,
                 tags: Sequence[str] | None = None) -> ImageSet:
    """Write `images` images of pseudo-random layers to `path`; the same seed, the same bytes.

    `layers` is a count (random sizes up to `MAX_RANDOM_LAYER_BYTES`) or the content size of
    each layer in bytes. `duplicates` maps a layer position to an earlier one it repeats
    (`{2: 0}`: the third layer is the first again). Images are independent; `tags` gives one
    tag per image (default `random/image:1`, or `random/image-K:1` for several; `()` for
    none). See `write_images` for `format` and `compression`.
    """
    rng = random.Random(seed)
    names = _tags(images, tags)
    specs = []
    for number in range(images):
        sizes = _sizes(rng, layers)
        contents = [random_layer(size, seed=rng.randrange(1 << 32)) for size in sizes]
        specs.append(ImageSpec(_repeat(contents, duplicates or {}), names[number]))
    return write_images(path, specs, format=format, compression=compression)


def config_for(spec: ImageSpec) -> bytes:
    """The image config of `spec`: platform, command and the diff_ids of its layers."""
    return json.dumps({
        "architecture": spec.architecture,
        "os": spec.os,
        "config": {"Cmd": list(spec.cmd)},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in spec.layers]},
    }, separators=(",", ":")).encode()


def _prepare(spec: ImageSpec, compression: Compressions) -> Prepared:
    config = config_for(spec)
    each = [compression] * len(spec.layers) if isinstance(compression, str) else compression
    if len(each) != len(spec.layers):
        raise ValueError(f"compression: one per layer, got {len(each)} for "
                         f"{len(spec.layers)} layers")
    blobs = tuple(compressed(layer, kind) for layer, kind in zip(spec.layers, each, strict=True))
    return Prepared(tuple(spec.tags), config, blobs, oci_manifest(config, blobs))


def _sizes(rng: random.Random, layers: int | Sequence[int]) -> list[int]:
    if isinstance(layers, int):
        return [rng.randrange(MAX_RANDOM_LAYER_BYTES + 1) for _ in range(layers)]
    return list(layers)


def _repeat(contents: list[bytes], duplicates: Mapping[int, int]) -> list[bytes]:
    for position, original in sorted(duplicates.items()):
        if not 0 <= original < position < len(contents):
            raise ValueError(f"duplicates: layer {position} cannot repeat layer {original} "
                             f"of {len(contents)} (it must repeat an earlier one)")
        contents[position] = contents[original]
    return contents


def _tags(images: int, tags: Sequence[str] | None) -> list[tuple[str, ...]]:
    if tags is None:
        if images == 1:
            return [(DEFAULT_TAG,)]
        return [(f"random/image-{number}:1",) for number in range(1, images + 1)]
    if len(tags) == 0:
        return [() for _ in range(images)]
    if len(tags) != images:
        raise ValueError(f"tags: one per image, got {len(tags)} for {images} images")
    return [(tag,) for tag in tags]
