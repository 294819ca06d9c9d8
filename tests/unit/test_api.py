"""The public API is what `freight.__all__` lists; changing it is a decision, not an accident."""

import freight

PUBLIC = {
    "AuthError", "BlobResult", "Catalog", "ConfigInfo", "Connection", "DeleteResult", "Digest",
    "DigestInfo", "DigestMismatch", "FreightError", "ImageResult", "ManifestInfo",
    "NetworkError", "NotFound", "PullResult", "PushResult", "Reference", "RegistryError",
    "SourceError", "TagList", "TagResult", "UsageError", "__version__", "catalog", "copy",
    "delete", "get_config", "get_digest", "get_manifest", "pull", "push", "tag", "tags",
    "Action", "TransferOptions", "transfer",
}


def test_all_is_pinned() -> None:
    assert set(freight.__all__) == PUBLIC
    assert set(dir(freight)) >= PUBLIC  # lazily loaded names too
    assert all(hasattr(freight, name) for name in freight.__all__)


def test_submodules_are_not_hidden() -> None:
    import freight.digest
    import freight.manifest

    assert hasattr(freight.digest, "Digest") and hasattr(freight.manifest, "Manifest")


def test_the_version_is_the_package_version() -> None:
    """`freight --version` prints freight.__version__ (read from no metadata, for start-up
    time): it must stay what pyproject.toml says."""
    import importlib.metadata

    import freight

    assert freight.__version__ == importlib.metadata.version("freight")
