"""Real test images, built by the classic docker builder FROM a busybox-static base.

Each image's default command prints one known line, so a pushed-then-pulled image can be
checked by running it.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .docker import DockerEngine
from .env import require_binary

FIXED_MTIME = 1_577_836_800  # 2020-01-01: byte-identical layer tars need identical mtimes
APPLETS = ("sh", "echo", "cat", "ls", "true", "env", "test")
BASE_REF = "freight-test/base:1"


@dataclass(frozen=True)
class TestImage:
    """A built image: its familiar reference (a RepoTag), ID and what running it prints."""

    __test__ = False  # not a pytest test class

    reference: str
    image_id: str
    output: str

    @property
    def repository(self) -> str:
        return self.reference.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]


@dataclass(frozen=True)
class TestImages:
    __test__ = False

    app: TestImage  # base + COPY + RUN: three layers
    dup: TestImage  # layers 2 and 4 identical (docker save writes a symlink), 3 smaller
    one: TestImage  # one, two, three: small images sharing the base layer
    two: TestImage
    three: TestImage

    @property
    def all(self) -> list[TestImage]:
        return [self.app, self.dup, self.one, self.two, self.three]


def busybox_rootfs_tar(path: Path) -> Path:
    """A rootfs tar with a static busybox and applet symlinks, made without extracting."""
    busybox = Path(require_binary("busybox", package="busybox-static"))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("bin", "etc", "tmp"):
            tar.addfile(_info(name, tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755))
        info = _info("bin/busybox", tarfile.REGTYPE, 0o755)
        info.size = busybox.stat().st_size
        with busybox.open("rb") as data:
            tar.addfile(info, data)
        for applet in APPLETS:
            link = _info(f"bin/{applet}", tarfile.SYMTYPE, 0o777)
            link.linkname = "busybox"
            tar.addfile(link)
    return path


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, FIXED_MTIME
    return info


def _context(directory: Path, dockerfile: str, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (directory / name).write_text(text)
        os.utime(directory / name, (FIXED_MTIME, FIXED_MTIME))
    return directory


def build(docker: DockerEngine, context: Path, reference: str, output: str) -> TestImage:
    docker.run("build", "--network", "none", "--tag", reference, str(context))
    return TestImage(reference, docker.image_id(reference), output)


def _app(docker: DockerEngine, workdir: Path) -> TestImage:
    line = "hello from the freight app image"
    dockerfile = (
        f"FROM {BASE_REF}\n"
        "COPY hello.txt /etc/freight/hello.txt\n"
        "RUN echo 'written by RUN' > /etc/freight/run.txt\n"
        'CMD ["cat", "/etc/freight/hello.txt"]\n'
    )
    context = _context(workdir / "app", dockerfile, {"hello.txt": line + "\n"})
    return build(docker, context, "freight-test/app:1", line)


def _dup(docker: DockerEngine, workdir: Path) -> TestImage:
    """COPY a, COPY b, COPY a again: layers 2 and 4 are the same tar (same DiffID).

    The duplicate sits in the middle of the size order, with a smaller layer to compress
    after it (a is a few KiB, b a few bytes): the shape that hung the old engine's
    compression turnstile. The two files differ in size on purpose anyway: the vfs
    driver's naive diff compares size and mtime only, so a same-size file with the same
    mtime would give an empty (skipped) layer.
    """
    line = "freight duplicate-layer image " * 120  # some KiB: a's layer outweighs b's
    dockerfile = (
        f'FROM {BASE_REF}\nCOPY a.txt /msg\nCOPY b.txt /msg\nCOPY a.txt /msg\nCMD ["cat", "/msg"]\n'
    )
    files = {"a.txt": line.strip() + "\n", "b.txt": "b\n"}
    context = _context(workdir / "dup", dockerfile, files)
    return build(docker, context, "freight-test/dup:1", line.strip())


def _small(docker: DockerEngine, workdir: Path, name: str) -> TestImage:
    line = f"freight multi-image archive: image {name}"
    dockerfile = f'FROM {BASE_REF}\nCOPY msg.txt /msg\nCMD ["cat", "/msg"]\n'
    context = _context(workdir / name, dockerfile, {"msg.txt": line + "\n"})
    return build(docker, context, f"freight-test/{name}:1", line)


def build_all(docker: DockerEngine, workdir: Path) -> TestImages:
    """Import the base and build every test image (about a minute on vfs)."""
    base = busybox_rootfs_tar(workdir / "busybox-rootfs.tar")
    docker.run("import", str(base), BASE_REF)
    return TestImages(
        app=_app(docker, workdir),
        dup=_dup(docker, workdir),
        one=_small(docker, workdir, "one"),
        two=_small(docker, workdir, "two"),
        three=_small(docker, workdir, "three"),
    )
