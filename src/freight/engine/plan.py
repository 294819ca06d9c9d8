"""The planner: what a transfer moves, in what order, and which manifests it writes. No I/O.

Given image trees and a compression setting, it decides for every layer whether its bytes
go as they are or are converted (and to what media type), which manifest type each image
gets (None: the source's own manifest, byte for byte, when nothing changes), and the one
order in which conversions run: each distinct conversion once, image by image, biggest
layer first (its upload then overlaps the compression of the smaller ones).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from freight import mediatypes as mt
from freight.convert import target_compression
from freight.digest import Digest
from freight.sources.model import Blob, ImageNode, IndexNode, Node

MemoKey = tuple[object, str]  # (what the layer is: diff_id, digest or the Blob, target)


@dataclass(frozen=True)
class LayerStep:
    blob: Blob
    target: str | None  # the compression to convert to; None sends the bytes as they are
    media_type: str  # the layer's media type in the manifest written

    @property
    def external(self) -> bool:
        """A non-distributable layer: named in the manifest, its bytes left at its URLs."""
        return bool(self.blob.urls)

    @property
    def memo(self) -> MemoKey | None:
        """Identifies the conversion: identical layers (docker's symlinked duplicates, a
        base layer shared by several images) share one."""
        if self.target is None:
            return None
        return memo_key(self.blob, self.target)


@dataclass(frozen=True)
class ImageStep:
    node: ImageNode
    kind: str | None  # the manifest type to write; None keeps the source's manifest
    config_type: str
    layers: tuple[LayerStep, ...]


def memo_key(blob: Blob, target: str) -> MemoKey:
    return (blob.diff_id or blob.digest or blob, target)


def plan_image(node: ImageNode, setting: str, *, oci: bool = False) -> ImageStep:
    """An artifact's blobs go as they are, whatever the setting: they are not filesystem
    layers, and compressing one would hand its users other bytes. With `oci`, an image
    whose manifest is Docker's gets an OCI one (the same blobs, OCI media types)."""
    artifact = not mt.is_image_config(node.config.media_type)
    targets = [None if b.urls or artifact else target_compression(setting, b.media_type)
               for b in node.layers]
    kind = manifest_kind(node, targets, oci=oci and not artifact)
    layers = tuple(LayerStep(b, t, _layer_type(b, t, kind))
                   for b, t in zip(node.layers, targets, strict=True))
    return ImageStep(node, kind, _config_type(node.config, kind), layers)


def manifest_kind(node: ImageNode, targets: list[str | None], *,
                  oci: bool = False) -> str | None:
    """The manifest type to write; None keeps the source's manifest (nothing converted).

    Docker schema2 when the source is Docker (or a legacy archive) and every layer ends up
    gzip, since schema2 has no standard type for other layers; OCI otherwise, and always
    with `oci`. A source manifest whose layers are out of rootfs order (Docker 25.0.0 wrote
    them so), or whose layer labels the source corrected (a plain tar labelled gzip), is
    rebuilt.
    """
    as_listed = node.manifest is not None and [
        (d.digest, d.media_type) for d in node.manifest.layers] == [
        (b.digest, b.media_type) for b in node.layers]  # the order, and no label corrected
    format_kept = not oci or (node.manifest is not None
                              and node.manifest.media_type == mt.OCI_MANIFEST)
    if as_listed and not any(targets) and format_kept:
        return None
    if oci:
        return mt.OCI_MANIFEST
    finals = [t or mt.layer_compression(b.media_type)
              for t, b in zip(targets, node.layers, strict=True)]
    docker_source = node.manifest is None or node.manifest.media_type == mt.DOCKER_MANIFEST
    docker = docker_source and all(c == mt.GZIP for c in finals)
    return mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST


def _layer_type(blob: Blob, target: str | None, kind: str | None) -> str:
    if blob.urls and kind is not None:
        return mt.external_layer_type(blob.media_type, docker=kind == mt.DOCKER_MANIFEST)
    final = target or mt.layer_compression(blob.media_type)
    if kind is None or final is None:
        return blob.media_type  # not a filesystem layer, or the manifest is kept
    return mt.layer_type(final, docker=kind == mt.DOCKER_MANIFEST)


def _config_type(config: Blob, kind: str | None) -> str:
    if kind is not None and mt.is_image_config(config.media_type):
        return mt.DOCKER_CONFIG if kind == mt.DOCKER_MANIFEST else mt.OCI_CONFIG
    return config.media_type


def images_in(node: Node) -> Iterator[ImageNode]:
    """Every image of a tree, children in index order."""
    if isinstance(node, IndexNode):
        for _, child in node.children:
            yield from images_in(child)
    else:
        yield node


def conversion_order(steps: Iterable[ImageStep]) -> list[LayerStep]:
    """Each distinct conversion once: image by image, biggest layer first within one."""
    seen: set[MemoKey] = set()
    order: list[LayerStep] = []
    for step in steps:
        for layer in sorted(step.layers, key=lambda s: -s.blob.size):
            if layer.memo is not None and layer.memo not in seen:
                seen.add(layer.memo)
                order.append(layer)
    return order


def blob_key(blob: Blob) -> Digest | Blob:
    """What makes two source blobs the same one (for totals and results)."""
    return blob.digest or blob


def distinct_blobs(steps: Iterable[ImageStep]) -> list[Blob]:
    """Every config and layer that moves once, in first-seen order (not the layers left at
    their URLs)."""
    found: dict[Digest | Blob, Blob] = {}
    for step in steps:
        for blob in (step.node.config, *step.node.layers):
            if not blob.urls:
                found.setdefault(blob_key(blob), blob)
    return list(found.values())
