"""How inspect and manage results look: aligned text for people, plain dicts for --json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from freight.cli.formatting import human_size
from freight.inspect import ConfigInfo, DigestInfo, ManifestInfo
from freight.manifest import Descriptor, Index, Manifest

if TYPE_CHECKING:  # not loaded for the commands that do not print them
    from freight.local_inspect import ListedImage, ListedPlatform, Listing
    from freight.manage import DeleteResult, TagResult



def descriptor_json(desc: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"digest": str(desc.digest), "media_type": desc.media_type,
                           "size": desc.size}
    if desc.platform is not None:
        out["platform"] = str(desc.platform)
    return out


def manifest_json(info: ManifestInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "reference": str(info.reference), "digest": str(info.digest),
        "media_type": info.media_type, "size": len(info.raw),
        "platform": str(info.platform) if info.platform else None,
        "index": str(info.index) if info.index else None,
    }
    if isinstance(info.content, Manifest):
        out["config"] = descriptor_json(info.content.config)
        out["layers"] = [descriptor_json(d) for d in info.content.layers]
        out["layers_size"] = sum(d.size for d in info.content.layers)
    elif isinstance(info.content, Index):
        out["manifests"] = [descriptor_json(d) for d in info.content.manifests]
    return out


def manifest_lines(info: ManifestInfo) -> list[str]:
    lines = [_row("reference", str(info.reference)), _row("digest", str(info.digest)),
             _row("media type", info.media_type or "(not given)"),
             _row("size", human_size(len(info.raw)))]
    if info.platform is not None and info.index is not None:
        lines += [_row("platform", str(info.platform)), _row("from index", str(info.index))]
    if isinstance(info.content, Manifest):
        lines += _image_lines(info.content)
    elif isinstance(info.content, Index):
        lines += _index_lines(info.content)
    return lines


def _image_lines(content: Manifest) -> list[str]:
    total = sum(d.size for d in content.layers)
    lines = [_row("config", _describe(content.config)),
             _row("layers", f"{len(content.layers)}, {human_size(total)} in all")]
    width = len(str(len(content.layers)))
    lines += [f"  {n:>{width}}  {_describe(d)}" for n, d in enumerate(content.layers, 1)]
    return lines


def _index_lines(content: Index) -> list[str]:
    names = [str(d.platform) if d.platform else "(no platform)" for d in content.manifests]
    width = max((len(n) for n in names), default=0)
    lines = [_row("platforms", str(len(content.manifests)))]
    lines += [f"  {name:<{width}}  {_describe(d)}" for name, d in zip(names, content.manifests,
                                                                        strict=True)]
    return lines


def _describe(desc: Descriptor) -> str:
    return f"{desc.digest}  {human_size(desc.size):>10}  {desc.media_type}"


def _row(label: str, value: str) -> str:
    return f"{label:<11} {value}"


def config_json(info: ConfigInfo) -> dict[str, Any]:
    return {"reference": str(info.reference), "manifest": str(info.manifest),
            "digest": str(info.digest), "media_type": info.media_type,
            "platform": str(info.platform) if info.platform else None, "config": info.json()}


def digest_json(info: DigestInfo | ManifestInfo) -> dict[str, Any]:
    return {"reference": str(info.reference), "digest": str(info.digest),
            "media_type": info.media_type,
            "platform": str(info.platform) if info.platform else None}


def tag_json(result: TagResult) -> dict[str, Any]:
    return {"source": str(result.source), "digest": str(result.digest),
            "media_type": result.media_type, "tags": [str(t) for t in result.tags]}


def delete_json(result: DeleteResult) -> dict[str, Any]:
    return {"reference": str(result.reference), "deleted": str(result.deleted),
            "kind": result.kind, "digest": str(result.digest) if result.digest else None}


def delete_line(result: DeleteResult) -> str:
    if result.kind == "tag":
        return f"deleted tag {result.deleted}"
    return f"deleted manifest {result.deleted}"


# --- freight ls: the images of an archive or layout -------------------------------------

def listing_json(result: Listing) -> dict[str, Any]:
    return {"path": result.path, "images": [_listed_json(i) for i in result.images]}


def _listed_json(image: ListedImage) -> dict[str, Any]:
    return {"name": image.label, "names": list(image.names), "tags": list(image.tags),
            "image_id": str(image.image_id) if image.image_id else None,
            "digest": str(image.digest), "media_type": image.media_type,
            "built": image.built, "platforms": [_platform_json(p) for p in image.platforms]}


def _platform_json(row: ListedPlatform) -> dict[str, Any]:
    return {"platform": row.platform, "manifest": str(row.manifest),
            "config": str(row.config) if row.config else None, "size": row.size,
            "layers": [descriptor_json(d) for d in row.layers]}


def listing_rows(result: Listing) -> list[dict[str, Any]]:
    """One flat entry per image and platform, for --format."""
    rows = []
    for image in result.images:
        top = _listed_json(image)
        for row in top.pop("platforms"):
            rows.append({**top, **row, "layers": len(row["layers"]),
                         "human_size": human_size(row["size"])})
    return rows


def listing_lines(result: Listing) -> list[str]:
    lines: list[str] = []
    for image in result.images:
        others = [n for n in image.names if n != image.label] + list(image.tags)
        also = f"  (also {', '.join(others)})" if others else ""
        lines.append(f"{image.label}{also}")
        if image.image_id:
            lines.append(f"  {'image ID':<9} {image.image_id}")
        built = "  (no manifest in the archive: built from its blobs)" if image.built else ""
        lines.append(f"  {'digest':<9} {image.digest}{built}")
        for row in image.platforms:
            lines.append(f"  {row.platform or '(platform not given)'}: {len(row.layers)} "
                         f"layers, {human_size(row.size)}")
            width = len(str(len(row.layers)))
            lines += [f"    {n:>{width}}  {_describe(d)}" for n, d in enumerate(row.layers, 1)]
    return lines
