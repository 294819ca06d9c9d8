"""What a command loads is part of its start-up, which every command pays: a command
must not import the modules of jobs it does not do. Checked on the real command, in a
subprocess, against a real registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from freight.testing import random_image
from support.registry import Registry

pytestmark = pytest.mark.integration

# runs the command as `freight` does, then prints the freight modules it loaded
_RUN = """
import atexit, runpy, sys
atexit.register(lambda: print(" ".join(sorted(m for m in sys.modules
                                             if m.startswith("freight")))))
sys.argv = ["freight", *sys.argv[1:]]
runpy.run_module("freight", run_name="__main__")
"""


def _loaded(tmp_path: Path, *args: str) -> set[str]:
    env = {**os.environ, "FREIGHT_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", _RUN, *args], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())  # the last line: what atexit printed


def test_pushing_a_docker_archive_loads_no_referrer_or_sync_module(
        tmp_path: Path, registry: Registry) -> None:
    """A legacy docker archive has no manifest, so no referrer can name its image: the
    referrer modules (sync/travel.py and what it needs) stay unloaded."""
    archive = tmp_path / "image.tar"
    random_image(archive, layers=2, seed=7)
    loaded = _loaded(tmp_path, "push", "--quiet", str(archive),
                     f"{registry.host}/startup/archive:1")
    assert not {m for m in loaded if m.startswith("freight.sync")}
    assert "freight.referrers" not in loaded
    assert "freight.server" not in loaded


def test_a_registry_command_loads_no_archive_reader(tmp_path: Path,
                                                    registry: Registry) -> None:
    archive = tmp_path / "image.tar"
    random_image(archive, layers=1, seed=8)
    _loaded(tmp_path, "push", "--quiet", str(archive), f"{registry.host}/startup/tags:1")
    loaded = _loaded(tmp_path, "tags", f"{registry.host}/startup/tags")
    readers = {"freight.sources.docker_archive", "freight.sources.oci_layout",
               "freight.sources.archives", "freight.engine.core", "freight.sync.travel"}
    assert not loaded & readers


def test_a_listing_loads_no_manifest_model(tmp_path: Path, registry: Registry) -> None:
    """`freight tags` and `freight catalog` read JSON lists of names: the manifest model,
    the inspect and manage modules and the transfer results (each a few frozen dataclasses,
    ~1 ms apiece to create) stay unloaded."""
    archive = tmp_path / "image.tar"
    random_image(archive, layers=1, seed=10)
    _loaded(tmp_path, "push", "--quiet", str(archive), f"{registry.host}/startup/list:1")
    heavy = {"freight.manifest", "freight.inspect", "freight.manage", "freight.results",
             "freight.sources.model", "freight.sources.registry", "freight.cli.views"}
    for command in (["tags", f"{registry.host}/startup/list"], ["catalog", registry.host]):
        loaded = _loaded(tmp_path, *command)
        assert "freight.listings" in loaded
        assert not loaded & heavy, command


def test_a_pull_loads_no_archive_reader_and_no_registry_sink(tmp_path: Path,
                                                             registry: Registry) -> None:
    archive = tmp_path / "image.tar"
    random_image(archive, layers=1, seed=9)
    ref = f"{registry.host}/startup/pull:1"
    _loaded(tmp_path, "push", "--quiet", str(archive), ref)
    loaded = _loaded(tmp_path, "pull", "--quiet", ref, str(tmp_path / "out.tar"))
    assert (tmp_path / "out.tar").is_file()
    assert not loaded & {"freight.sources.docker_archive", "freight.sources.oci_layout",
                         "freight.sources.archives", "freight.sinks.registry",
                         "freight.sinks.resume"}


def test_a_registry_to_registry_copy_loads_no_local_sink(tmp_path: Path,
                                                         registry: Registry) -> None:
    """Referrers travel with a copy from a registry (sync/travel.py loads), but the store
    that writes them into a layout, and with it the layout and tar sinks, only for a local
    destination."""
    archive = tmp_path / "image.tar"
    random_image(archive, layers=1, seed=11)
    _loaded(tmp_path, "push", "--quiet", str(archive), f"{registry.host}/startup/copy:1")
    loaded = _loaded(tmp_path, "copy", "--quiet", f"{registry.host}/startup/copy:1",
                     f"{registry.host}/startup/copied:1")
    assert "freight.sync.travel" in loaded
    local = {"freight.sync.layout_store", "freight.sinks.layout", "freight.sinks.docker_tar"}
    assert not loaded & local
