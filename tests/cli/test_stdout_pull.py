"""`freight pull REF -` and `freight copy SRC docker-archive:-`: the tar on standard output,
whole or not at all, with the result lines on stderr and no temporary file left."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from freight.testing import random_image
from support.freightcli import UserDirs, freight_argv
from support.registry import Registry

pytestmark = pytest.mark.integration


def _pushed(registry: Registry, tmp_path: Path, name: str,
            layers: int | list[int] = 3) -> str:
    archive = tmp_path / f"{name}.tar"
    random_image(archive, layers=layers, seed=11)
    ref = f"{registry.host}/stdout/{name}:1"
    done = subprocess.run([*freight_argv(), "push", "-q", str(archive), ref],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return ref


def _freight(dirs: UserDirs, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*freight_argv(), *args], capture_output=True, timeout=120,
                          env={**os.environ, **dirs.env()}, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args", [["pull", "{ref}", "-"],
                                  ["pull", "--format", "oci-archive", "{ref}", "-"],
                                  ["pull", "{ref}", "docker-archive:-"],
                                  ["copy", "{ref}", "docker-archive:-"]],
                         ids=["pull", "pull-oci-archive", "pull-location", "copy"])
def test_the_tar_goes_to_stdout_and_pushes_back(registry: Registry, tmp_path: Path,
                                                args: list[str]) -> None:
    ref = _pushed(registry, tmp_path, "app")
    dirs = UserDirs.under(tmp_path)
    done = _freight(dirs, *[a.format(ref=ref) for a in args])
    assert done.returncode == 0, done.stderr
    assert ref.encode() in done.stderr  # the result line is not mixed into the tar
    out = tmp_path / "out.tar"
    out.write_bytes(done.stdout)
    with tarfile.open(out) as tar:
        assert "index.json" in tar.getnames()
    again = _freight(dirs, "push", "-q", str(out), f"{registry.host}/stdout/again:1")
    assert again.returncode == 0, again.stderr
    assert dirs.leftovers() == []


def test_a_reader_that_stops_early_is_an_error(registry: Registry, tmp_path: Path) -> None:
    ref = _pushed(registry, tmp_path, "early", layers=[400_000] * 3)  # more than a pipe holds
    dirs = UserDirs.under(tmp_path)
    pull = subprocess.Popen([*freight_argv(), "pull", "-q", ref, "-"],
                            env={**os.environ, **dirs.env()}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert pull.stdout is not None
    pull.stdout.read(512)  # one header, then the reader goes away
    pull.stdout.close()
    _, err = pull.communicate(timeout=120)
    assert pull.returncode == 2, err
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "standard output was closed" in lines[0], err
    assert dirs.leftovers() == []


def test_a_layout_cannot_go_to_stdout(registry: Registry, tmp_path: Path) -> None:
    ref = _pushed(registry, tmp_path, "layout")
    done = _freight(UserDirs.under(tmp_path), "pull", "--format", "oci", ref, "-")
    assert done.returncode == 2
    assert b"an OCI layout is a directory" in done.stderr and not done.stdout


def test_a_stdout_without_a_descriptor_gets_the_tar_written(registry: Registry,
                                                           tmp_path: Path) -> None:
    """In process (a test runner, a notebook) standard output may have no file descriptor
    for sendfile: the tar is written to it instead."""
    import io

    from click.testing import CliRunner

    from freight.cli import main

    ref = _pushed(registry, tmp_path, "inprocess")
    run = CliRunner().invoke(main, ["pull", "-q", ref, "-"], catch_exceptions=False)
    assert run.exit_code == 0, run.stderr
    with tarfile.open(fileobj=io.BytesIO(run.stdout_bytes)) as tar:
        assert {"index.json", "manifest.json"} <= set(tar.getnames())
    assert ref in run.stderr
