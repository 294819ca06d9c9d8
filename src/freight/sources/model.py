"""What a source yields: images as trees of blobs that can be opened lazily."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from freight.digest import Digest
from freight.errors import FreightError
from freight.manifest import Descriptor, Index, Manifest, Platform

Opener = Callable[[], BinaryIO]

MAX_INDEX_DEPTH = 4  # an index naming an index naming…: real images nest at most twice
MAX_TREE_NODES = 10_000  # manifests and indexes under one root; real images hold tens


@dataclass(frozen=True)
class Blob:
    """Bytes in a source. `digest` is what the bytes must hash to, when the source says."""

    media_type: str
    size: int
    open: Opener = field(compare=False)
    digest: Digest | None = None
    diff_id: Digest | None = None  # for filesystem layers: digest of the uncompressed tar
    what: str = ""  # for messages: "layer 2 of app:1 (abc/layer.tar)"
    origin: str | None = None  # the registry host the bytes come from; None for local files
    # A non-distributable layer (Windows base layers, `nondistributable` OCI types): fetched
    # from these URLs by whoever runs the image, never copied, as docker and skopeo do.
    urls: tuple[str, ...] = ()
    # The descriptor's annotations (zstd:chunked's table of contents, a title): about these
    # bytes, so kept in a rebuilt manifest for as long as the bytes are sent unchanged.
    annotations: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ImageNode:
    """One single-platform image: a config and its layers, in rootfs order."""

    config: Blob
    layers: tuple[Blob, ...]
    manifest: Manifest | None = None  # the source's own manifest, pushed as-is when unchanged
    platform: Platform | None = None


@dataclass(frozen=True)
class IndexNode:
    """An index; each child keeps its descriptor (platform, annotations) from the source."""

    index: Index
    children: tuple[tuple[Descriptor, Node], ...]


Node = ImageNode | IndexNode


@dataclass(frozen=True)
class SourceImage:
    """A root image of a source, with the names the source gives it."""

    root: Node
    names: tuple[str, ...]  # references the source gives it ("busybox:latest"), may be empty
    label: str  # for messages: the first name or a short image id
    bare_tags: tuple[str, ...] = ()  # tags without a repository (OCI layout `ref.name: v1`)
    notes: tuple[str, ...] = ()  # warnings to show (e.g. platforms missing from the archive)

    @property
    def root_digest(self) -> Digest | None:
        """The digest the source gives the image's root manifest or index (None: the source
        has no manifest for it, e.g. a legacy docker archive; such an image has no
        referrers either)."""
        root = self.root
        if isinstance(root, IndexNode):
            return root.index.digest
        return root.manifest.digest if root.manifest is not None else None

    @property
    def image_id(self) -> Digest | None:
        root = self.root
        if isinstance(root, ImageNode):
            return root.config.digest
        return None


@dataclass
class TreeWalk:
    """The bounds of reading one root's tree, so that a hostile index (nested ever deeper,
    or naming one sub-index thousands of times over) ends in one error (`error`, about
    `what`) instead of a RecursionError or a walk without end."""

    what: str
    error: type[FreightError]
    nodes: int = 0
    deepest: int = 0  # the greatest depth entered so far
    # each digest read once a walk: its node, how many nodes its tree counts, how deep it goes
    read: dict[Digest, tuple[Node, int, int]] = field(default_factory=dict)

    def enter(self, depth: int, count: int = 1) -> None:
        """Count `count` more manifests and indexes, at `depth` indexes below the root."""
        self.nodes += count
        self.deepest = max(self.deepest, depth)
        if depth > MAX_INDEX_DEPTH:
            raise self.error(f"{self.what}: indexes nested more than {MAX_INDEX_DEPTH} deep")
        if self.nodes > MAX_TREE_NODES:
            raise self.error(f"{self.what}: more than {MAX_TREE_NODES} manifests and indexes "
                             "under one image")

    def visit(self, desc: Descriptor, depth: int, read: Callable[[], Node]) -> Node:
        """The node `desc` names, at `depth`, read once a walk: a digest named again is not
        read again, but its whole tree is counted again, at its new depth. An image takes
        the platform its descriptor gives, else the one `read` found (its config's)."""
        seen = self.read.get(desc.digest)
        if seen is not None:
            node, count, height = seen
            self.enter(depth + height, count)
        else:
            before, deepest = self.nodes, self.deepest
            self.deepest = depth
            self.enter(depth)
            node = read()
            self.read[desc.digest] = (node, self.nodes - before, self.deepest - depth)
            self.deepest = max(deepest, self.deepest)
        if isinstance(node, ImageNode) and desc.platform and node.platform != desc.platform:
            return replace(node, platform=desc.platform)
        return node
