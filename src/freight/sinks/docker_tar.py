"""A tar that `docker load` accepts and that is at the same time an OCI image layout.

The layout is staged in a hidden directory beside the output, then written as one tar
(`oci-layout`, `index.json`, `manifest.json`, `repositories`, `blobs/…`) to a temporary
name and renamed: on any failure nothing appears at the output path.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import UsageError
from freight.manifest import Manifest
from freight.reference import DOCKER_HUB, Reference
from freight.results import Action
from freight.sinks.layout import LayoutSink, Tagged


def familiar(ref: Reference) -> str:
    """`docker.io/library/busybox:1` → `busybox:1`, as docker names images."""
    name = ref.name.removeprefix(f"{DOCKER_HUB}/").removeprefix("library/")
    return f"{name}:{ref.tag or 'latest'}"


class DockerTarSink(LayoutSink):
    """Stages a layout next to `output`; `finish()` turns it into the tar. With `docker`
    False it is a plain OCI archive (no manifest.json or repositories)."""

    def __init__(self, output: Path, *, docker: bool = True,
                 stored: Action = Action.DOWNLOADED) -> None:
        self.output, self.docker = output, docker
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
        super().__init__(staging, stored=stored)

    def finish(self) -> None:
        super().finish()
        if self.docker:
            self._docker_files()
        fd, tmp = tempfile.mkstemp(prefix=f".{self.output.name}.", suffix=".tmp",
                                   dir=self.output.parent)
        os.close(fd)
        try:
            self._write_tar(Path(tmp))
            os.replace(tmp, self.output)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
            self.abort()

    def abort(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _docker_files(self) -> None:
        entries: dict[str, dict[str, object]] = {}
        repositories: dict[str, dict[str, str]] = {}
        for tagged in self.tagged:
            manifest = self._manifest(tagged)
            key = str(manifest.digest)
            entry = entries.setdefault(key, {
                "Config": _member(manifest.config.digest), "RepoTags": [],
                "Layers": [_member(d.digest) for d in manifest.layers]})
            if tagged.reference is None:
                continue  # docker loads it untagged
            name = familiar(tagged.reference)
            tags = entry["RepoTags"]
            assert isinstance(tags, list)
            tags.append(name)
            repo, tag = name.rsplit(":", 1)
            repositories.setdefault(repo, {})[tag] = manifest.config.digest.encoded
        (self.root / "manifest.json").write_text(json.dumps(list(entries.values())))
        (self.root / "repositories").write_text(json.dumps(repositories))

    def _manifest(self, tagged: Tagged) -> Manifest:
        if not mt.is_manifest(tagged.descriptor.media_type):
            raise UsageError(f"{tagged.reference or 'the image'} is a multi-platform index: "
                             "docker load takes "
                             "one platform (use --platform), or pull with --format oci")
        raw = self.blob_path(tagged.descriptor.digest).read_bytes()
        return Manifest.parse(raw, tagged.descriptor.media_type)

    def _write_tar(self, path: Path) -> None:
        names = ["oci-layout", "index.json"]
        names += ["manifest.json", "repositories"] if self.docker else []
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in names:
                tar.add(self.root / name, arcname=name, filter=_plain)
            tar.add(self.root / "blobs", arcname="blobs", recursive=False, filter=_plain)
            for blob in sorted((self.root / "blobs").rglob("*")):
                if blob.is_dir() or not blob.name.startswith("."):
                    tar.add(blob, arcname=str(blob.relative_to(self.root)), recursive=False,
                            filter=_plain)


def _member(digest: Digest) -> str:
    """Where a blob is in the tar (sha512 blobs included: `blobs/sha512/<hex>`)."""
    return f"blobs/{digest.algorithm}/{digest.encoded}"


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Fixed ownership and times: the same pull gives the same tar."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.isdir() else 0o644
    return info
