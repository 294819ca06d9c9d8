"""Fixtures for transport tests: scripted stub registries on loopback, clients without
waits (retries still happen, only the sleeping is skipped and recorded)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from freight.transport.client import RegistryClient
from freight.transport.credentials import Credentials
from freight.transport.retry import RetryPolicy

from .stubregistry import Shared, StubRegistry

StubFactory = Callable[..., StubRegistry]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """freight's cache (upload journal included) per test, never the user's."""
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def stubs() -> Iterator[StubFactory]:
    started: list[StubRegistry] = []

    def start(**kwargs: object) -> StubRegistry:
        stub = StubRegistry(**kwargs)  # type: ignore[arg-type]
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.stop()


@pytest.fixture
def pair(stubs: StubFactory) -> tuple[StubRegistry, StubRegistry]:
    """A registry whose upload Locations point at a second host sharing its sessions."""
    shared = Shared()
    registry = stubs(location="other", users={"u": "p"}, shared=shared)
    registry.other = stubs(shared=shared)
    return registry, registry.other


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make(sleeps: list[float]) -> Iterator[Callable[..., RegistryClient]]:
    """RegistryClients for a host, with any options; their retries skip the sleeping
    (recorded in `sleeps`), no credentials from config files; closed after the test."""
    made: list[RegistryClient] = []

    def build(host: str, **options: object) -> RegistryClient:
        options.setdefault("config_credentials", False)
        client = RegistryClient(host, retry=RetryPolicy(sleep=sleeps.append),
                                **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


@pytest.fixture
def client_for(make: Callable[..., RegistryClient]) -> Callable[..., RegistryClient]:
    """`make` for a stub registry."""
    def for_stub(stub: StubRegistry, *, credentials: Credentials | None = None) -> RegistryClient:
        return make(stub.host, credentials=credentials)

    return for_stub
