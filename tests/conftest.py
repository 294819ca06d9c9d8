"""Session fixtures for real components: registries, docker engines, containerd, images,
archives. Each starts real processes on loopback and stops them at the end of the session.

Missing components skip the tests that need them, except with CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from freight.testing import serve_in_thread
from support import archives, badarchives, docker25
from support.containerd import Containerd, start_containerd
from support.docker import DockerEngine, start_docker
from support.images import TestImages, build_all
from support.proxy import RegistryProxy
from support.registry import Registry, start_registry

RegistryFactory = Callable[..., Registry]

# pytest-timeout counts a session fixture's set-up toward the first test that uses it:
# starting a docker engine and building the test images takes a minute on vfs, several on
# a busy machine. Tests that need these get this instead of the default (pyproject.toml).
SLOW_SETUP_FIXTURES = frozenset({"docker", "docker_puller", "containerd"})
SLOW_SETUP_TIMEOUT = 1200  # seconds


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SLOW_SETUP_FIXTURES and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_SETUP_TIMEOUT))
    if items:  # the last test's time also pays every session fixture's tear-down (docker
        # engines, SeaweedFS...: a minute), whatever short limit its module sets
        items[-1].add_marker(pytest.mark.timeout(SLOW_SETUP_TIMEOUT))


_STATE_NUMBERS = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _user_states(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the tests' user state lives; session and module fixtures (which run before
    any test's own) share one state of their own, never the user's."""
    root = tmp_path_factory.mktemp("user-states")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_CONFIG", str(root / "fixtures" / "docker"))
        patch.setenv("FREIGHT_CACHE_DIR", str(root / "fixtures" / "cache"))
        yield root


@pytest.fixture(autouse=True)
def _own_user_state(_user_states: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's default credentials file and freight cache are its own, not yet made:
    a test (or a mutant that drops an explicit `config=`) never reads or writes the user's
    ~/.docker, and what one test's pushes taught the cache (mount hints, conversions)
    never changes what another test's push does."""
    state = _user_states / str(next(_STATE_NUMBERS))
    monkeypatch.setenv("DOCKER_CONFIG", str(state / "docker"))
    monkeypatch.setenv("FREIGHT_CACHE_DIR", str(state / "cache"))


def _short_tempdir(prefix: str) -> Path:
    """Daemon state lives in /tmp directly: unix socket paths must stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="session")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """``registry_factory(users={"alice": "secret"})`` starts another registry (htpasswd auth
    when ``users`` is given); all are stopped at session end."""
    started: list[Registry] = []

    def start(*, users: dict[str, str] | None = None, name: str = "registry",
              read_only: bool = False) -> Registry:
        registry = start_registry(tmp_path_factory.mktemp(name), users=users, name=name,
                                  read_only=read_only)
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()


@pytest.fixture(scope="session")
def registry(registry_factory: RegistryFactory) -> Registry:
    """The shared distribution registry, no auth, deletes enabled: ``.host``, ``.url``."""
    return registry_factory()


@pytest.fixture
def fresh_registry(registry_factory: RegistryFactory) -> Registry:
    """A registry of one's own, for tests that count requests or need an empty store."""
    return registry_factory(name="fresh")


@pytest.fixture
def proxy_for() -> Iterator[Callable[[Registry], RegistryProxy]]:
    """``proxy_for(registry)`` puts a counting, fault-injecting proxy in front of it."""
    proxies: list[RegistryProxy] = []

    def start(registry: Registry) -> RegistryProxy:
        proxy = RegistryProxy(registry.host).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_Daemon = TypeVar("_Daemon", bound=_Stoppable)


def _daemon(prefix: str, start: Callable[[Path], _Daemon]) -> Iterator[_Daemon]:
    """A daemon started in a fresh short temp dir; stopped, and the dir deleted, after."""
    root = _short_tempdir(prefix)
    try:
        daemon = start(root)
        yield daemon
        daemon.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def docker() -> Iterator[DockerEngine]:
    """A private dockerd (vfs, no network) that builds and saves the test images."""
    yield from _daemon("freight-docker-", start_docker)


@pytest.fixture(scope="session")
def docker_puller() -> Iterator[DockerEngine]:
    """A second, empty dockerd for pulls: layers it pulls cannot come from a local cache."""
    yield from _daemon("freight-puller-", start_docker)


@pytest.fixture(scope="session")
def containerd() -> Iterator[Containerd]:
    yield from _daemon("freight-ctrd-", start_containerd)


@pytest.fixture(scope="session")
def images(docker: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> TestImages:
    """The test images, built once per session (see support/images.py)."""
    return build_all(docker, tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def archive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("archives")


@pytest.fixture(scope="session")
def legacy_archive(docker: DockerEngine, images: TestImages, archive_dir: Path) -> Path:
    """``docker save freight-test/app:1`` (legacy format: docker 20.10)."""
    return archives.docker_save(docker, archive_dir / "app.tar", images.app.reference)


@pytest.fixture(scope="session")
def symlink_archive(docker: DockerEngine, images: TestImages, archive_dir: Path) -> Path:
    """``docker save`` of the duplicate-layer image: one ``layer.tar`` is a symlink."""
    out = archives.docker_save(docker, archive_dir / "dup.tar", images.dup.reference)
    assert any(name.endswith("/layer.tar") for name in archives.symlinked_members(out))
    return out


@pytest.fixture(scope="session")
def multi_archive(docker: DockerEngine, images: TestImages, archive_dir: Path) -> Path:
    """Three images sharing the base layer, four RepoTags (``one`` has two tags)."""
    docker.run("tag", images.one.reference, "freight-test/one:latest")
    refs = [images.app.reference, images.one.reference, "freight-test/one:latest"]
    return archives.docker_save(docker, archive_dir / "multi.tar", *refs, images.two.reference)


@pytest.fixture(scope="session")
def untagged_archive(docker: DockerEngine, images: TestImages, archive_dir: Path) -> Path:
    """``docker save <image ID>``: manifest.json has ``"RepoTags": null``."""
    return archives.docker_save(docker, archive_dir / "untagged.tar", images.three.image_id)


@pytest.fixture(scope="session")
def gzip_archive(legacy_archive: Path, archive_dir: Path) -> Path:
    """``docker save app | gzip``."""
    return archives.gzip_wrap(legacy_archive, archive_dir / "app.tar.gz")


@pytest.fixture(scope="session")
def zstd_archive(legacy_archive: Path, archive_dir: Path) -> Path:
    """``docker save app | zstd``."""
    return archives.zstd_wrap(legacy_archive, archive_dir / "app.tar.zst")


@pytest.fixture(scope="session")
def docker25_archive(legacy_archive: Path, archive_dir: Path) -> Path:
    """app in the Docker 25+ ``docker save`` layout (OCI layout + manifest.json), laid out
    from the legacy archive as moby v25 writes it (see support/docker25.py)."""
    return docker25.convert(legacy_archive, archive_dir / "app-docker25.tar")


@pytest.fixture(scope="session")
def docker25_shuffled_archive(legacy_archive: Path, archive_dir: Path) -> Path:
    """Like ``docker25_archive`` but with the v25.0.0 bug: the OCI manifest's layers are out
    of order (reversed); ``manifest.json`` and the config's diff_ids are in order."""
    out = archive_dir / "app-docker25-shuffled.tar"
    return docker25.convert(legacy_archive, out, shuffle_layers=True)


@pytest.fixture(scope="session")
def oci_archive_from_ctr(
    containerd: Containerd, images: TestImages, legacy_archive: Path, archive_dir: Path
) -> Path:
    """``ctr images export`` of app: OCI layout + manifest.json, uncompressed layers under a
    Docker schema2 manifest (what ctr 1.6 writes for an imported docker-save archive)."""
    ref = f"docker.io/{images.app.reference}"
    out = archive_dir / "app-ctr.tar"
    return containerd.reexport(legacy_archive, out, [ref], compress=False)


@pytest.fixture(scope="session")
def ctr_gzip_archive(
    containerd: Containerd, images: TestImages, legacy_archive: Path, archive_dir: Path
) -> Path:
    """``ctr images import --compress-blobs`` then export: gzip layers, as the containerd
    image store holds pulled images; manifest.json names compressed blobs."""
    ref = f"docker.io/{images.app.reference}"
    out = archive_dir / "app-ctr-gzip.tar"
    return containerd.reexport(legacy_archive, out, [ref], compress=True)


@pytest.fixture(scope="session")
def bad_archive(legacy_archive: Path, archive_dir: Path) -> Callable[[str], Path]:
    """``bad_archive(kind)`` for kind in ``badarchives.BAD_KINDS``; made once each."""
    made: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in made:
            made[kind] = badarchives.make_bad(kind, legacy_archive, archive_dir / f"bad-{kind}.tar")
        return made[kind]

    return make


@pytest.fixture
def serve_registry(tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory: each call starts a fresh embedded registry (in this process, a thread of
    its own; see freight.testing) and returns `127.0.0.1:PORT`."""
    numbers = itertools.count()
    with contextlib.ExitStack() as running:

        def start() -> str:
            root = tmp_path / f"registry-{next(numbers)}"
            return running.enter_context(serve_in_thread(root)).host

        yield start
