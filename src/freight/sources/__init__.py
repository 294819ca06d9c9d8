"""Where images come from. Each source reads lazily and yields `SourceImage`s (see model.py).

`open_archive` (archives.py) takes any local input: a `docker save` archive in any format
docker writes (optionally gzip/zstd-wrapped), an OCI archive, an OCI layout directory, or a
skopeo `dir:` directory; registry.py reads a registry repository.

The names below load on first use: a registry command imports `freight.sources.registry`
without every archive reader (and tarfile) behind `open_archive`.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freight.sources.archives import LocalSource, open_archive
    from freight.sources.model import SourceImage

__all__ = ["LocalSource", "SourceImage", "open_archive"]
_WHERE = {"LocalSource": "freight.sources.archives", "open_archive": "freight.sources.archives",
          "SourceImage": "freight.sources.model"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'freight.sources' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
