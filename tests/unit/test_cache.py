"""The cache keeps what it learns per registry apart: no two registries share an entry."""

from __future__ import annotations

from pathlib import Path

from freight.cache import Cache
from freight.digest import Digest

DIGEST = Digest.of(b"a blob")


def test_lookalike_registries_do_not_share_mount_locations(tmp_path: Path) -> None:
    """`host:5000` and `host_5000` (and `a/b` and `a_b`) were one directory: a blob
    remembered on one was mounted from a repository of the other."""
    cache = Cache(tmp_path)
    cache.remember_location("host:5000", DIGEST, "team/app")
    assert cache.locations("host_5000", DIGEST) == []
    assert not cache.has_pushed_to("host_5000")
    assert cache.locations("host:5000", DIGEST) == ["team/app"]
    assert cache.has_pushed_to("host:5000")


def test_dot_names_stay_inside_the_cache(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    cache.remember_location("..", DIGEST, "x")
    assert not (tmp_path / "locations").exists()
    assert cache.locations("..", DIGEST) == ["x"]
