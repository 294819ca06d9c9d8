"""Archives and directories that skopeo and podman write, pushed by freight: every format
they have, including skopeo's `dir:` (whose layers can be plain tars labelled gzip: freight
takes the bytes for what they are and writes a manifest that says so)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import freight
from engine.test_engine_properties import verify
from freight.testing import ImageSpec, random_layer, write_images

pytestmark = pytest.mark.integration
TAG = "produced/app:1"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true but {name} is not installed", pytrace=False)
        pytest.skip(f"{name} is not installed")
    return path


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{argv}: {done.stderr}"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from server.conftest import serving

    with serving(tmp_path_factory.mktemp("producers-registry")) as live:
        yield live.url.removeprefix("http://")


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A legacy docker-save archive: a plain-tar base and a second layer."""
    where = tmp_path_factory.mktemp("producers") / "app.tar"
    written = write_images(where, [ImageSpec([random_layer(40_000, seed=7),
                                              random_layer(9_000, seed=8)], [TAG])])
    return where, list(written.image.diff_ids)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory,
           original: tuple[Path, list[str]]) -> list[str]:
    root = tmp_path_factory.mktemp("podman")
    argv = [_tool("podman"), "--storage-driver", "vfs", "--root", str(root / "root"),
            "--runroot", str(root / "run")]
    _run(*argv, "load", "-i", str(original[0]))
    return argv


SKOPEO = ["docker-archive", "oci-archive", "oci", "dir"]
PODMAN = ["docker-archive", "oci-archive", "oci-dir", "docker-dir"]


@pytest.mark.parametrize("transport", SKOPEO)
def test_what_skopeo_writes_pushes_right(registry: str, original: tuple[Path, list[str]],
                                         tmp_path: Path, transport: str) -> None:
    archive, diff_ids = original
    out = tmp_path / "out"
    target = f"{transport}:{out}" + (f":{TAG}" if transport == "docker-archive" else "")
    _run(_tool("skopeo"), "--insecure-policy", "copy", f"docker-archive:{archive}", target)
    repo = f"skopeo/{transport}"
    freight.push(out, f"{registry}/{repo}:1")
    verify(f"http://{registry}", repo, "1", diff_ids)


@pytest.mark.parametrize("format", PODMAN)
def test_what_podman_saves_pushes_right(registry: str, original: tuple[Path, list[str]],
                                        podman: list[str], tmp_path: Path,
                                        format: str) -> None:
    out = tmp_path / "out"
    _run(*podman, "save", "--format", format, "-o", str(out), f"localhost/{TAG}")
    repo = f"podman/{format}"
    freight.push(out, f"{registry}/{repo}:1")
    verify(f"http://{registry}", repo, "1", original[1])


def test_a_skopeo_dir_pushes_as_its_docker_archive_does(
        registry: str, original: tuple[Path, list[str]], tmp_path: Path) -> None:
    """skopeo's dir: keeps docker-archive's layers as plain tars under a gzip label; with
    the default compression both give the very same image."""
    archive, _ = original
    _run(_tool("skopeo"), "--insecure-policy", "copy", f"docker-archive:{archive}",
         f"dir:{tmp_path / 'dir'}")
    (from_dir,) = freight.push(f"dir:{tmp_path / 'dir'}", f"{registry}/same/dir:1")
    (from_tar,) = freight.push(archive, f"{registry}/same/tar:1")
    assert from_dir.digest == from_tar.digest


def test_a_dir_is_not_a_destination(tmp_path: Path) -> None:
    with pytest.raises(freight.UsageError, match="does not write them"):
        freight.copy(f"oci:{tmp_path}/nothing", f"dir:{tmp_path / 'out'}")


@pytest.mark.parametrize("kind", ["oci", "oci-archive"])
def test_a_tag_after_an_oci_destination_is_what_skopeo_reads_back(
        registry: str, original: tuple[Path, list[str]], tmp_path: Path, kind: str) -> None:
    """`oci:DIR:v1` names the tag, as in skopeo: skopeo finds the image by `v1` in what
    freight wrote, and the layout keeps the image's own name for docker and containerd."""
    archive, diff_ids = original
    out = tmp_path / ("layout" if kind == "oci" else "image.tar")
    (written,) = freight.copy(str(archive), f"{kind}:{out}:v1")
    assert str(written.reference) == f"docker.io/{TAG.rsplit(':', 1)[0]}:v1"
    _run(_tool("skopeo"), "--insecure-policy", "copy", "--dest-tls-verify=false",
         f"{kind}:{out}:v1", f"docker://{registry}/back/{kind}:1")
    verify(f"http://{registry}", f"back/{kind}", "1", diff_ids)
