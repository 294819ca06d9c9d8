"""Helpers for testing code that uses freight, and freight itself.

* `random_image(path, ...)`: a test image on disk, in any format freight reads (legacy and
  Docker 25+ `docker save` archives, OCI layouts and OCI archives), made without docker;
  `write_images(path, [ImageSpec(...)])` when the layers must be chosen.
* `serve_in_thread()`: the embedded registry on 127.0.0.1 in a thread, for the duration of
  a `with` block.
* `freight.testing.pytest_plugin`: the same as fixtures (`freight_registry`, `freight_image`);
  enable with `pytest_plugins = ["freight.testing.pytest_plugin"]`.

Nothing here is imported by `import freight`: test helpers cost a program nothing.
"""

from freight.testing.formats import FORMATS, Format
from freight.testing.images import (
    ImageSet,
    ImageSpec,
    WrittenImage,
    config_for,
    random_image,
    write_images,
)
from freight.testing.layers import Blob, Compression, layer_tar, random_layer, sha256
from freight.testing.registry import Registry, serve_in_thread

__all__ = [
    "FORMATS",
    "Blob",
    "Compression",
    "Format",
    "ImageSet",
    "ImageSpec",
    "Registry",
    "WrittenImage",
    "config_for",
    "layer_tar",
    "random_image",
    "random_layer",
    "serve_in_thread",
    "sha256",
    "write_images",
]
