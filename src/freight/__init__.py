"""freight: move container images between archives, OCI layouts and registries, no daemon."""

from freight.copy import BlobResult
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
from freight.push import PushResult, push
from freight.reference import Reference

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "BlobResult",
    "Digest",
    "DigestMismatch",
    "FreightError",
    "NetworkError",
    "NotFound",
    "PushResult",
    "Reference",
    "RegistryError",
    "SourceError",
    "UsageError",
    "__version__",
    "push",
]
