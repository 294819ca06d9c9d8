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
from freight.pull import pull
from freight.push import push
from freight.reference import Reference
from freight.registry_copy import copy
from freight.results import ImageResult, PullResult, PushResult

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BlobResult",
    "Connection",
    "Digest",
    "DigestMismatch",
    "FreightError",
    "ImageResult",
    "NetworkError",
    "NotFound",
    "PullResult",
    "PushResult",
    "Reference",
    "RegistryError",
    "SourceError",
    "UsageError",
    "__version__",
    "copy",
    "pull",
    "push",
]
