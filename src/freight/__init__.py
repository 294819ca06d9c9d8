"""freight: move container images between archives, OCI layouts and registries, no daemon."""

from freight.connect import Connection
from freight.digest import Digest
from freight.engine import BlobResult
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
from freight.pull import pull
from freight.push import push
from freight.reference import Reference
from freight.registry_copy import copy
from freight.results import ImageResult, PullResult, PushResult

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
