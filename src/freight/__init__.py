"""freight: move container images between archives, OCI layouts and registries, no daemon."""

from typing import TYPE_CHECKING, Any

from freight.connect import Connection
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

# imported here, not lazily: `freight.push` and `freight.pull` are also submodules, and an
# import of a submodule would otherwise bind its name on the package to the module
from freight.pull import pull
from freight.push import push
from freight.reference import Reference
from freight.results import BlobResult, ImageResult, PullResult, PushResult

if TYPE_CHECKING:
    from freight.copying import copy
    from freight.inspect import (
        Catalog,
        ConfigInfo,
        DigestInfo,
        ManifestInfo,
        TagList,
        catalog,
        tags,
    )

    # get_*: `freight.digest` and `freight.manifest` would hide the submodules of those names
    from freight.inspect import config as get_config
    from freight.inspect import digest as get_digest
    from freight.inspect import manifest as get_manifest
    from freight.manage import DeleteResult, TagResult, delete, tag

# the rest loads on first use: a push needs none of it, and start-up is part of every push
_LAZY = {
    **{name: ("freight.inspect", name) for name in (
        "Catalog", "ConfigInfo", "DigestInfo", "ManifestInfo", "TagList", "catalog", "tags")},
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
]
