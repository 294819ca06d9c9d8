"""Registries for the sync, referrers and artifact tests: distribution 2.8 (no referrers
API: the tag schema) and the embedded registry (the API), each started fresh."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

RegistryMaker = Callable[[], str]


@pytest.fixture
def make_registry(request: pytest.FixtureRequest, registry_factory: Callable[..., object],
                  serve_registry: Callable[[], str]) -> RegistryMaker:
    """`make_registry()` starts an empty registry of the test's kind; returns its host."""
    kind = getattr(request, "param", "distribution")

    def make() -> str:
        if kind == "embedded":
            return serve_registry()
        return registry_factory(name="sync").host  # type: ignore[attr-defined]

    return make


@pytest.fixture
def http() -> Iterator[Callable[[str], httpx.Client]]:
    """`http(host)`: a plain httpx client for checking what a registry holds."""
    made: list[httpx.Client] = []

    def client(host: str) -> httpx.Client:
        made.append(httpx.Client(base_url=f"http://{host}", timeout=30))
        return made[-1]

    yield client
    for c in made:
        c.close()
