"""OCI image layouts: a directory, an OCI archive, or the layout inside a Docker 25+ save.

`index.json` is followed down to manifests; media types, digests and sizes come from the
descriptors. An index whose platforms are only partly present (docker's containerd store
saves that way) is narrowed to one platform that is complete, with a note naming what is
missing. Metadata blobs are verified when read; layers while they stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import SourceError
from freight.manifest import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    host_platform,
    load_json,
)
from freight.sources.files import Files, compression_of, read_small
from freight.sources.model import Blob, ImageNode, IndexNode, Node, Opener, SourceImage, TreeWalk

IMAGE_NAME = "io.containerd.image.name"  # full reference, written by docker and containerd
REF_NAME = "org.opencontainers.image.ref.name"  # a tag (docker) or a reference (others)


_PLAIN_LAYERS = frozenset({mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD,
                           mt.DOCKER_LAYER, mt.DOCKER_LAYER_GZIP})


def is_layout(files: Files) -> bool:
    return files.size("oci-layout") is not None and files.size("index.json") is not None


class Missing(Exception):
    """A blob the layout's index refers to is not in the layout."""


@dataclass
class LayoutReader:
    """Follows descriptors to blobs under `blobs/<alg>/<hex>` (see `blob_path`)."""

    files: Files
    notes: list[str] = field(default_factory=list, init=False)  # for the next image read

    def blob_path(self, digest: Digest) -> str:
        return f"blobs/{digest.algorithm}/{digest.encoded}"

    def exists(self, desc: Descriptor) -> bool:
        return self.files.size(self.blob_path(desc.digest)) is not None

    def metadata(self, desc: Descriptor, what: str) -> bytes:
        path = self.blob_path(desc.digest)
        if self.files.size(path) is None:
            raise Missing(f"{what} {desc.digest}")
        raw = read_small(self.files, path, what)
        if Digest.of(raw) != desc.digest or len(raw) != desc.size:
            raise SourceError(f"{self.files.label}: {what} {path} does not match its descriptor")
        return raw

    def node(self, desc: Descriptor, label: str, *, walk: TreeWalk | None = None,
             depth: int = 0) -> Node:
        walk = walk or TreeWalk(f"{self.files.label}: {label}", SourceError)
        if mt.is_index(desc.media_type):
            return walk.visit(desc, depth,
                              lambda: self.index_node(desc, label, walk=walk, depth=depth))
        if mt.is_manifest(desc.media_type):
            return walk.visit(desc, depth, lambda: self.image_node(desc, label))
        raise Missing(f"unsupported entry {desc.media_type or 'without media type'} {desc.digest}")

    def index_node(self, desc: Descriptor, label: str, *, walk: TreeWalk | None = None,
                   depth: int = 0) -> IndexNode:
        index = Index.parse(self.metadata(desc, "index"), desc.media_type, f"index of {label}")
        children = tuple((child, self.node(child, label, walk=walk, depth=depth + 1))
                         for child in index.manifests)
        return IndexNode(index, children)

    def image_node(self, desc: Descriptor, label: str) -> ImageNode:
        raw = self.metadata(desc, "manifest")
        manifest = Manifest.parse(raw, desc.media_type, f"manifest of {label}")
        config_raw = self.metadata(manifest.config, "config")
        config_blob = Blob(manifest.config.media_type, manifest.config.size,
                           self._opener(manifest.config.digest), manifest.config.digest,
                           what=f"config of {label}")
        diff_ids, plat = self._config_facts(manifest, config_raw, label)
        layers = self._layers(manifest, diff_ids, label)
        return ImageNode(config_blob, layers, manifest, plat)  # its descriptor's wins: TreeWalk

    def _config_facts(
        self, manifest: Manifest, raw: bytes, label: str
    ) -> tuple[tuple[Digest, ...] | None, Platform | None]:
        if not mt.is_image_config(manifest.config.media_type):
            return None, None  # an artifact: nothing to check layers against
        config = ImageConfig.parse(raw, f"config of {label}")
        return config.diff_ids, config.platform

    def _layers(
        self, manifest: Manifest, diff_ids: tuple[Digest, ...] | None, label: str
    ) -> tuple[Blob, ...]:
        descs = list(manifest.layers)
        if diff_ids is not None:
            descs = _docker_25_0_order(descs, diff_ids)
        blobs = []
        for i, desc in enumerate(descs):
            if not desc.urls and not self.exists(desc):  # else fetched from its URLs
                raise Missing(f"layer {desc.digest}")
            diff_id = None
            if diff_ids is not None and i < len(diff_ids):
                diff_id = diff_ids[i]
            what = f"layer {i + 1} of {label} ({desc.digest.short})"
            foreign = desc.urls or diff_ids is None  # fetched elsewhere, or an artifact's
            kind = desc.media_type if foreign else self._true_type(desc, what)
            blobs.append(Blob(kind, desc.size, self._opener(desc.digest), desc.digest,
                              diff_id, what, urls=desc.urls, annotations=desc.annotations))
        return tuple(blobs)

    def _true_type(self, desc: Descriptor, what: str) -> str:
        """The layer's media type as its bytes say: skopeo's dir: (and scripts) label plain
        tars gzip; such a layer is taken for what it is, and its manifest rewritten."""
        declared = mt.layer_compression(desc.media_type)
        if declared is None or desc.media_type not in _PLAIN_LAYERS:
            return desc.media_type  # not a layer, or a foreign one: its type says more
        actual = compression_of(self.files, self.blob_path(desc.digest))
        if actual == declared:
            return desc.media_type
        self.notes.append(f"{what} is labelled {declared} but its bytes are {actual}: "
                          "taken as they are, in a corrected manifest")
        return mt.layer_type(actual, docker=desc.media_type.startswith(mt.DOCKER_PREFIX))

    def take_notes(self) -> tuple[str, ...]:
        notes, self.notes = tuple(self.notes), []
        return notes

    def _opener(self, digest: Digest) -> Opener:
        path = self.blob_path(digest)
        return lambda: self.files.open(path)


def _docker_25_0_order(layers: list[Descriptor], diff_ids: tuple[Digest, ...]) -> list[Descriptor]:
    """Docker 25.0.0 wrote uncompressed layers in random order; put them in rootfs order."""
    by_digest = {d.digest: d for d in layers}
    if [d.digest for d in layers] != list(diff_ids) and set(by_digest) == set(diff_ids):
        return [by_digest[d] for d in diff_ids]
    return layers


def read_layout(files: Files, *, platform: Platform | None = None) -> list[SourceImage]:
    """One SourceImage per distinct root in `index.json`, in index order."""
    layout = load_json(read_small(files, "oci-layout", "layout header"), "oci-layout")
    if "imageLayoutVersion" not in layout:
        raise SourceError(f"{files.label}: oci-layout has no imageLayoutVersion")
    index = Index.parse(read_small(files, "index.json", "index"), mt.OCI_INDEX, "index.json")
    reader = LayoutReader(files)
    images = []
    for desc, names, bare in _images(reader, _group(index.manifests)):
        label = names[0] if names else (f"{bare[0]}" if bare else f"image {desc.digest.short}")
        images.append(_root(reader, desc, names, bare, label, platform))
    if not images:
        raise SourceError(f"{files.label}: index.json lists no images")
    return images


_Named = tuple[Descriptor, tuple[str, ...], tuple[str, ...]]


def _group(entries: tuple[Descriptor, ...]) -> list[_Named]:
    """Entries with the same digest are one image with several names (docker writes that)."""
    order: dict[Digest, tuple[Descriptor, list[str], list[str]]] = {}
    for desc in entries:
        _, names, bare = order.setdefault(desc.digest, (desc, [], []))
        full = desc.annotations.get(IMAGE_NAME)
        ref = desc.annotations.get(REF_NAME)
        if full:
            names.append(full)
        elif ref and ("/" in ref or ":" in ref):
            names.append(ref)
        if ref and "/" not in ref and ":" not in ref:
            bare.append(ref)  # `oci:DIR:v1` finds it by `v1`, as skopeo does
    return [(d, tuple(dict.fromkeys(n)), tuple(dict.fromkeys(b))) for d, n, b in order.values()]


def _images(reader: LayoutReader, grouped: list[_Named]) -> list[_Named]:
    """The roots that are images: not referrers (signatures, SBOMs, the `sha256-<hex>`
    tags), which travel with their subject instead. A layout of referrers alone keeps them."""
    images = [g for g in grouped if not _is_referrer(reader, *g)]
    return images or grouped


def _is_referrer(reader: LayoutReader, desc: Descriptor, names: tuple[str, ...],
                 bare: tuple[str, ...]) -> bool:
    from freight.referrer_tags import is_referrer_tag

    tags = [*bare, *(n.rpartition(":")[2] for n in names if "@" not in n)]
    if tags:
        return all(is_referrer_tag(t) for t in tags)
    if not mt.is_manifest(desc.media_type) or not reader.exists(desc):
        return False
    try:
        return "subject" in load_json(reader.metadata(desc, "manifest"), "manifest")
    except (Missing, SourceError):
        return False


def _root(
    reader: LayoutReader, desc: Descriptor, names: tuple[str, ...], bare: tuple[str, ...],
    label: str, platform: Platform | None,
) -> SourceImage:
    if mt.is_index(desc.media_type):
        node, notes = narrow(reader, desc, label, platform)
    else:
        try:
            node, notes = reader.node(desc, label), ()
        except Missing as exc:
            where = f"{reader.files.label}: {label}"
            raise SourceError(f"{where}: {exc} is not in the archive") from None
    return SourceImage(node, names, label, bare, notes + reader.take_notes())


def narrow(
    reader: LayoutReader, desc: Descriptor, label: str, platform: Platform | None
) -> tuple[Node, tuple[str, ...]]:
    """The whole index if complete and no platform is asked for, else one complete child."""
    index = Index.parse(reader.metadata(desc, "index"), desc.media_type, f"index of {label}")
    present: list[tuple[Descriptor, Node]] = []
    missing: list[str] = []
    walk = TreeWalk(f"{reader.files.label}: {label}", SourceError)
    walk.enter(0)  # the index itself
    for child in index.manifests:
        try:
            present.append((child, reader.node(child, label, walk=walk, depth=1)))
        except Missing as exc:
            missing.append(f"{child.platform or 'no platform'} ({exc} absent)")
    if not missing and platform is None:
        return IndexNode(index, tuple(present)), ()
    chosen = _choose(present, platform)
    if chosen is None:
        want = platform or "any platform"
        raise SourceError(f"{reader.files.label}: {label}: no complete image for {want} in the "
                          f"archive (missing: {'; '.join(missing) or 'none'})")
    notes: tuple[str, ...] = ()
    if missing and platform is None:  # asked for one platform: the others are no news
        notes = (f"{label}: pushing {chosen[0].platform} only; the archive lacks "
                 + "; ".join(missing),)
    return chosen[1], notes


def _choose(
    present: list[tuple[Descriptor, Node]], platform: Platform | None
) -> tuple[Descriptor, Node] | None:
    images = [(d, n) for d, n in present
              if d.platform is not None and d.platform.os != "unknown"]
    want = platform or host_platform()
    for desc, node in images:
        if desc.platform is not None and want.matches(desc.platform):
            return desc, node
    if platform is None and images:
        return images[0]
    return None
