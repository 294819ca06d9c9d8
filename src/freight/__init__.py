"""freight: move container images between archives, OCI layouts and registries, no daemon."""

from typing import TYPE_CHECKING, Any

from freight.digest import Digest
from freight.errors import (
    AuthError,
    DigestMismatch,
    FreightError,
    NetworkError,
    NotFound,
    RegistryError,
    SourceError,
    UsageError,
)
from freight.reference import Reference

if TYPE_CHECKING:
    from freight.connect import Connection
    from freight.copying import copy
    from freight.inspect import ConfigInfo, DigestInfo, ManifestInfo

    # get_*: `freight.digest` and `freight.manifest` would hide the submodules of those names
    from freight.inspect import config as get_config
    from freight.inspect import digest as get_digest
    from freight.inspect import manifest as get_manifest
    from freight.listings import Catalog, TagList, catalog, tags
    from freight.manage import DeleteResult, TagResult, delete, tag
    from freight.results import Action, BlobResult, ImageResult, PullResult, PushResult

# the rest loads on first use: `import freight` stays cheap (start-up is part of every
# command), and the modules behind push, pull and copy are named pushing, pulling and
# copying, so importing them never rebinds `freight.push` to a module
_LAZY = {
    "Connection": ("freight.connect", "Connection"),
    "push": ("freight.pushing", "push"),
    "pull": ("freight.pulling", "pull"),
    "transfer": ("freight.engine", "transfer"),
    "TransferOptions": ("freight.engine", "TransferOptions"),
    **{name: ("freight.results", name) for name in (
        "Action", "BlobResult", "ImageResult", "PullResult", "PushResult")},
    **{name: ("freight.inspect", name) for name in ("ConfigInfo", "DigestInfo", "ManifestInfo")},
    **{name: ("freight.listings", name) for name in ("Catalog", "TagList", "catalog", "tags")},
    "get_config": ("freight.inspect", "config"),
    "get_digest": ("freight.inspect", "digest"),
    "get_manifest": ("freight.inspect", "manifest"),
    **{name: ("freight.manage", name) for name in ("DeleteResult", "TagResult", "delete",
                                                     "tag")},
    "copy": ("freight.copying", "copy"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'freight' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "Action",
    "AuthError",
    "BlobResult",
    "Catalog",
    "ConfigInfo",
    "Connection",
    "DeleteResult",
    "Digest",
    "DigestInfo",
    "DigestMismatch",
    "FreightError",
    "ImageResult",
    "ManifestInfo",
    "NetworkError",
    "NotFound",
    "PullResult",
    "PushResult",
    "Reference",
    "RegistryError",
    "SourceError",
    "TagList",
    "TagResult",
    "TransferOptions",
    "UsageError",
    "__version__",
    "catalog",
    "copy",
    "delete",
    "get_config",
    "get_digest",
    "get_manifest",
    "pull",
    "push",
    "tag",
    "tags",
    "transfer",
]
