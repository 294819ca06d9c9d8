"""Fixtures that several test modules define alike, made once here and named in each
module (`registry = module_registry("pairs")`): a conftest fixture named `registry` would
hide the session's CNCF distribution registry from the other modules of its folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from freight.testing import serve_in_thread


def module_registry(name: str) -> Callable[..., Any]:
    """A module-scoped fixture: `HOST:PORT` of an embedded registry of the module's own
    (freight.testing.serve_in_thread), its storage in a temporary `name` directory."""

    @pytest.fixture(scope="module")
    def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        with serve_in_thread(tmp_path_factory.mktemp(name)) as served:
            yield served.host

    return registry


def own_cache(*, own_tmpdir: bool = False) -> Callable[..., Any]:
    """An autouse fixture: each test gets its own freight cache (and, with `own_tmpdir`,
    its own empty TMPDIR, so a test can check that nothing was left behind)."""

    @pytest.fixture(autouse=True)
    def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FREIGHT_CACHE_DIR", str(tmp_path / "cache"))
        if own_tmpdir:
            monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
            (tmp_path / "tmp").mkdir()

    return _own_cache
