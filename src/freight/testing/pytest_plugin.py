"""pytest fixtures over `freight.testing`. Enable them in a conftest.py with

    pytest_plugins = ["freight.testing.pytest_plugin"]

`freight_registry`: a fresh in-process registry for each test (see `serve_in_thread`).
`freight_image`: a factory writing `random_image(...)` into the test's `tmp_path`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from freight.testing.images import ImageSet, random_image
from freight.testing.registry import Registry, serve_in_thread


class ImageFactory(Protocol):
    """`freight_image("app.tar", layers=3, ...)`: `random_image` under the test's tmp_path."""

    def __call__(self, name: str = "image.tar", **options: Any) -> ImageSet: ...


@pytest.fixture
def freight_registry(tmp_path: Path) -> Iterator[Registry]:
    """An empty registry of this test's own on 127.0.0.1, stored under tmp_path."""
    with serve_in_thread(tmp_path / "freight-registry") as registry:
        yield registry


@pytest.fixture
def freight_image(tmp_path: Path) -> ImageFactory:
    """A factory of random images written under tmp_path (same options as `random_image`)."""

    def make(name: str = "image.tar", **options: Any) -> ImageSet:
        return random_image(tmp_path / name, **options)

    return make
