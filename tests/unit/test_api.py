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


def test_the_functions_stay_functions_once_their_modules_are_loaded() -> None:
    """Importing the engine or the modules behind push, pull and copy never rebinds
    `freight.transfer`, `push`, `pull` or `copy` to a module (the engine's package was
    named `freight.transfer`, so `freight.transfer(...)` failed after any push)."""
    import types

    import freight.copying
    import freight.engine.run
    import freight.pulling
    import freight.pushing

    assert freight.engine.run and freight.copying and freight.pulling and freight.pushing
    for name in ("transfer", "push", "pull", "copy"):
        value = getattr(freight, name)
        assert callable(value) and not isinstance(value, types.ModuleType), name
    from freight import transfer

    assert transfer is freight.engine.run.transfer
