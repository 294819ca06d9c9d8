"""No work twice on the wire: each blob is asked about at most once per run, the blobs the
probe found missing are sent without asking again, and identical layers go once.

Counted at a proxy in front of a real distribution registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import freight
from freight.testing import ImageSpec, random_layer, write_images
from support.proxy import RegistryProxy
from support.registry import Registry

from .test_engine_properties import LayerSpec, docker_archive

pytestmark = pytest.mark.integration

# a duplicated layer in the middle, one smaller after it, uncompressed and compressed
SPECS = [LayerSpec(1, 60_000, "tar"), LayerSpec(2, 30_000, "gzip"), LayerSpec(1, 60_000, "tar"),
         LayerSpec(3, 10_000, "zstd")]
BLOBS = 4  # the config and three distinct layers


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))


def _blob_heads(proxy: RegistryProxy) -> Counter[str]:
    return Counter(e.path for e in proxy.exchanges if e.method == "HEAD" and e.kind == "blob")


def _uploads(proxy: RegistryProxy) -> int:
    return sum(1 for e in proxy.exchanges if e.kind == "upload" and e.method == "POST")


@pytest.mark.parametrize("stream", [False, True])
def test_a_push_asks_about_each_blob_once(
        fresh_registry: Registry, proxy_for, tmp_path: Path, stream: bool) -> None:
    proxy = proxy_for(fresh_registry)
    docker_archive(tmp_path / "app.tar", SPECS, "v1")
    (image,) = freight.push(tmp_path / "app.tar", f"{proxy.host}/counts/app:v1", stream=stream)
    heads = _blob_heads(proxy)
    assert set(heads.values()) == {1} and len(heads) == BLOBS, heads
    assert _uploads(proxy) == BLOBS
    again_before = len(proxy.exchanges)
    freight.push(tmp_path / "app.tar", f"{proxy.host}/counts/app:v1", stream=stream)
    again = proxy.exchanges[again_before:]
    assert not [e for e in again if e.kind == "upload"], "a re-push uploaded something"
    assert image.digest


def test_a_registry_copy_asks_about_each_blob_once(
        registry: Registry, fresh_registry: Registry, proxy_for, tmp_path: Path) -> None:
    docker_archive(tmp_path / "app.tar", SPECS, "v1")
    freight.push(tmp_path / "app.tar", f"{registry.host}/counts/src:v1")
    proxy = proxy_for(fresh_registry)
    freight.copy(f"{registry.host}/counts/src:v1", f"{proxy.host}/counts/dst:v1")
    heads = _blob_heads(proxy)
    assert set(heads.values()) == {1} and len(heads) == BLOBS, heads
    assert _uploads(proxy) == BLOBS


def test_a_second_repository_mounts_what_the_first_stored_this_run(
        fresh_registry: Registry, proxy_for, tmp_path: Path) -> None:
    """Two images sharing a base, pushed in one run to two repositories: the probe found
    the base missing in both; once the first stores it, the second mounts it instead of
    uploading (the mover must not give up the mount because it asked already)."""
    base = random_layer(80_000, seed=1)
    write_images(tmp_path / "two.tar", [
        ImageSpec([base, random_layer(9_000, seed=2)], ["counts/one:v1"]),
        ImageSpec([base, random_layer(9_000, seed=3)], ["counts/two:v1"])], format="oci-archive")
    proxy = proxy_for(fresh_registry)
    results = freight.copy(f"oci-archive:{tmp_path / 'two.tar'}", proxy.host, jobs=1)
    assert len(results) == 2
    mounted = [e for e in proxy.exchanges if e.kind == "mount" and e.status == 201]
    assert len(mounted) == 1, proxy.counts()
    assert _uploads(proxy) == 2 * 3 - 1  # configs, own layers, the base once
