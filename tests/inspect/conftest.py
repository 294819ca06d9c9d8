"""Registries to inspect and manage: the embedded one (`freight serve`) and the CNCF
distribution registry (`docker-registry`, integration), with images pushed into them.

This directory has no `__init__.py` on purpose: as a package it would be named `inspect`
and shadow the standard library module of that name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from inspect_support import Target, start_served, stop

from freight.testing import ImageSpec, write_images
from support.samples import sample_layers


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """freight.push must not write this machine's freight cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FREIGHT_CACHE_DIR", str(tmp_path_factory.mktemp("freight-cache")))
        yield


@pytest.fixture(scope="module")
def served_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    proc, target = start_served(tmp_path_factory.mktemp("served") / "root")
    try:
        yield target
    finally:
        stop(proc)


@pytest.fixture(scope="module", params=["freight", pytest.param(
    "distribution", marks=pytest.mark.integration)])
def target(request: pytest.FixtureRequest) -> Target:
    """Each test runs against the embedded registry and against distribution 2.8."""
    if request.param == "freight":
        served: Target = request.getfixturevalue("served_target")
        return served
    registry = request.getfixturevalue("registry")  # tests/conftest.py: deletes enabled
    return Target(registry.host, "distribution")


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `docker save` archive of one two-layer image."""
    path = tmp_path_factory.mktemp("archive") / "app.tar"
    return write_images(path, [ImageSpec(sample_layers(), ["app:1"])]).path


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of this test's own (registries are shared within a module)."""
    name = request.node.name.lower()
    cleaned = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return f"inspect/{cleaned[:80].strip('-')}"
