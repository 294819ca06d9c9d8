"""Independent consumers of pushed images: a clean docker engine, and skopeo.

Docker 20.10 cannot pull zstd layers ("unsupported media type"), so zstd pushes are
checked with ``skopeo copy`` into an OCI layout instead (skopeo verifies every digest it
copies), plus the DiffID check of ``verify.verify_image``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .docker import DockerEngine
from .env import require_binary
from .images import TestImage
from .verify import LAYER_TYPES, decompress, sha256, sniff

SKOPEO_TIMEOUT_SECONDS = 300


def pull_and_run(puller: DockerEngine, reference: str, image: TestImage) -> None:
    """Pull into the empty engine, check the image ID and what it prints, then remove it."""
    puller.run("pull", reference)
    try:
        assert puller.image_id(reference) == image.image_id, "pulled image ID differs"
        assert puller.run_image(reference).strip() == image.output
    finally:
        puller.remove_images(reference)


def skopeo_copy_to_layout(reference: str, layout: Path) -> Path:
    """``skopeo copy docker://REF oci:LAYOUT:pulled`` over plain HTTP; returns the layout."""
    skopeo = require_binary("skopeo", package="skopeo")
    done = subprocess.run(
        [
            skopeo, "--insecure-policy", "copy", "--src-tls-verify=false",
            f"docker://{reference}", f"oci:{layout}:pulled",
        ],
        capture_output=True, text=True, timeout=SKOPEO_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, f"skopeo copy failed:\n{done.stderr}"
    return layout


def verify_layout_image(layout: Path, image: TestImage, compression: str) -> None:
    """The image in an OCI layout has ``compression`` layers that decompress to its DiffIDs."""
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
    assert manifest["config"]["digest"] == image.image_id
    config = json.loads(_blob(layout, image.image_id))
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        data = _blob(layout, layer["digest"])
        assert sniff(data) == LAYER_TYPES[layer["mediaType"]][0] == compression
        assert sha256(decompress(data, compression)) == diff_id


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, _, encoded = digest.partition(":")
    return (layout / "blobs" / algorithm / encoded).read_bytes()
