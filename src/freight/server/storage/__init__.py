"""Where the registry keeps its content: the `Storage` protocol (base.py), the filesystem
backend (the default) and the S3 backend (`s3://BUCKET/PREFIX`, for stateless replicas)."""

from __future__ import annotations

from pathlib import Path

from freight.errors import UsageError
from freight.server.storage.base import Stamped, Storage, StoredBlob, TagEntry
from freight.server.storage.filesystem import FilesystemStorage, fsync_dir, iter_repositories


def open_storage(where: str | Path, *, s3_redirect: bool = False) -> Storage:
    """The backend for `where`: `s3://BUCKET/PREFIX` (bucket checked now) or a directory.

    boto3 is imported only for S3 (start-up speed of the CLI).
    """
    if isinstance(where, str) and where.startswith("s3://"):
        try:
            import boto3  # noqa: F401 - only to fail early and clearly
        except ImportError:
            raise UsageError("S3 storage needs boto3: pip install 'freight[s3]'") from None
        from freight.server.storage.s3 import S3Storage

        storage = S3Storage(where, redirect=s3_redirect)
        storage.check()
        return storage
    return FilesystemStorage(Path(where))


__all__ = ["FilesystemStorage", "Stamped", "Storage", "StoredBlob", "TagEntry", "fsync_dir",
           "iter_repositories", "open_storage"]
