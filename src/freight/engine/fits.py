"""What a sink can hold, checked before anything moves: a docker archive takes container
images only, with every layer in the tar; registries and OCI layouts take artifacts too, and
manifests that name non-distributable layers they do not store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from freight import mediatypes as mt
from freight.engine.plan import ImageStep
from freight.errors import UsageError

if TYPE_CHECKING:
    from freight.sinks import Sink


def check_fits(steps: list[ImageStep], sink: Sink) -> None:
    """Refuse, before anything moves, what the sink cannot hold: an artifact (a Helm chart,
    an SBOM) or a layer left at its URLs for a docker archive, since `docker load` reads
    every config as an image's and every layer from the tar."""
    for step in steps:
        config = step.node.config
        if sink.images_only and not mt.is_image_config(config.media_type):
            raise UsageError(
                f"{config.what.removeprefix('config of ') or 'the image'} is not a container "
                f"image (its config is {config.media_type or 'untyped'}): docker load cannot "
                "take it; write oci-archive:FILE or oci:DIR instead")
        if sink.holds_external:
            continue
        for layer in step.layers:
            if layer.external:
                raise UsageError(
                    f"{layer.blob.what} is non-distributable (fetched from "
                    f"{layer.blob.urls[0]} by whoever runs the image; freight never "
                    "downloads such layers), and a docker archive must hold every layer: "
                    "write to oci:DIR, oci-archive:FILE or a registry instead")
