"""A tar that `docker load` accepts and that is at the same time an OCI image layout.

Every byte is written once, straight into its place in the tar: when a blob starts, its
member header and its whole size are reserved at the end of the file (under a lock), and
the blob's bytes go there with `pwrite` while other blobs fill their own places. The
layout's small files (`oci-layout`, `index.json`, `manifest.json`, `repositories`) follow
at `finish()`; `docker load`, containerd and skopeo read members in any order. The tar is
written under a temporary name beside the output and renamed only when complete: on any
failure nothing appears at the output path. For standard output (`output=None`) the tar
is built the same way in TMPDIR and sent once complete, so a reader (`| docker load`)
never sees part of an image.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
import tarfile
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freight import mediatypes as mt
from freight.digest import Digest, Hasher
from freight.engine.streaming import StreamingSink
from freight.errors import DigestMismatch, FreightError, UsageError
from freight.manifest import Descriptor, Index, Manifest
from freight.reference import DOCKER_HUB, Reference
from freight.results import Action
from freight.sinks.layout import LAYOUT_HEADER, READ_BLOCK, Tagged, root_entries

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE  # a tar ends with two zero blocks, padded to a whole record


def familiar(ref: Reference) -> str:
    """`docker.io/library/busybox:1` → `busybox:1`, as docker names images."""
    name = ref.name.removeprefix(f"{DOCKER_HUB}/").removeprefix("library/")
    return f"{name}:{ref.tag or 'latest'}"


class DockerTarSink:
    """Writes the tar for `output` (None: standard output); `finish()` completes and
    renames (or sends) it. With `docker` False it is a plain OCI archive (no manifest.json
    or repositories)."""

    registry: str | None = None
    repository = ""

    def __init__(self, output: Path | None, *, docker: bool = True,
                 stored: Action = Action.DOWNLOADED) -> None:
        self.output, self.docker, self.stored = output, docker, stored
        self.holds_external = not docker  # `docker load` reads every layer from the tar
        self.images_only = docker  # and every config as an image's
        if output is None:
            fd, tmp = tempfile.mkstemp(prefix="freight-stdout-", suffix=".tar")
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp",
                                       dir=output.parent)
        self._fd: int | None = fd
        self._tmp = Path(tmp)
        self._end = 0  # where the next member goes
        self._lock = threading.Lock()
        self._places: dict[Digest, int] = {}  # blob -> where its bytes start
        self._done: set[Digest] = set()  # blobs whose bytes are all there, verified
        self._manifests: dict[Digest, bytes] = {}
        self._dirs: set[str] = set()
        self.tagged: list[Tagged] = []
        self._directory("blobs")

    # -- the Sink protocol --------------------------------------------------------------

    def has_blob(self, digest: Digest) -> bool:
        with self._lock:
            return digest in self._done

    def mount(self, digest: Digest, source: str) -> bool:
        return False

    def streamer(self) -> StreamingSink | None:
        return None

    def upload(self, digest: Digest, size: int, opener: Callable[[], Any], *,
               verify: bool = True,
               progress: Callable[[int], None] = lambda n: None, what: str = "blob") -> None:
        offset = self._place(digest, size)
        hasher = Hasher(digest.algorithm)
        with opener() as src:
            while block := src.read(READ_BLOCK):
                if hasher.size + len(block) > size:  # never into the next member's place
                    raise DigestMismatch(f"{what} (more than the {size} bytes expected)",
                                         str(digest), "(not computed)")
                hasher.update(block)
                self._write_at(offset + hasher.size - len(block), block)
                progress(len(block))
        if hasher.digest != digest or hasher.size != size:
            raise DigestMismatch(f"{what} ({hasher.size} bytes, expected {size})",
                                 str(digest), str(hasher.digest))
        with self._lock:
            self._done.add(digest)

    def put_manifest(self, reference: str, raw: bytes, media_type: str) -> Digest:
        digest = Digest.of(raw)
        if not self.has_blob(digest):
            self.upload(digest, len(raw), lambda: io.BytesIO(raw), what="manifest")
        self._manifests[digest] = raw
        return digest

    # -- what a local destination adds --------------------------------------------------

    def add_root(self, descriptor: Descriptor, reference: Reference | None) -> None:
        """Record a pulled root for `index.json` (call after its manifest is stored)."""
        with self._lock:
            self.tagged.append(Tagged(descriptor, reference))

    def finish(self) -> None:
        """Write the layout's files and the end of the tar, then rename it into place."""
        try:
            missing = set(self._places) - self._done
            if missing:
                raise FreightError(f"{len(missing)} blob(s) of {self.name} were not "
                                   "completely written")
            self._small("oci-layout", LAYOUT_HEADER + b"\n")
            self._small("index.json", Index.build(mt.OCI_INDEX, root_entries(self.tagged)).raw)
            if self.docker:
                self._docker_files()
            end = -(-(self._end + 2 * BLOCK) // RECORD) * RECORD
            assert self._fd is not None
            os.ftruncate(self._fd, end)  # the zero blocks: the file reads zeros past _end
            if self.output is None:
                send_to_stdout(self._fd, end)
            os.close(self._fd)
            self._fd = None
            if self.output is not None:
                os.replace(self._tmp, self.output)
        finally:
            self.abort()

    @property
    def name(self) -> str:
        return str(self.output) if self.output is not None else "standard output"

    def abort(self) -> None:
        """Remove the unfinished tar (after `finish()`, only the file descriptor is left)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._tmp.unlink(missing_ok=True)

    # -- the tar ------------------------------------------------------------------------

    def _place(self, digest: Digest, size: int) -> int:
        """Where the blob's bytes go: a new member at the end, or the place of an earlier
        attempt at the same blob (a failed attempt leaves its place to the next one)."""
        with self._lock:
            if digest in self._places:
                return self._places[digest]
            directory = f"blobs/{digest.algorithm}"
            self._directory(directory)
            start = self._member(f"{directory}/{digest.encoded}", size)
            self._places[digest] = start
            return start

    def _directory(self, name: str) -> None:
        if name not in self._dirs:
            self._dirs.add(name)
            info = _info(name, 0)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            self._header(info)

    def _member(self, name: str, size: int) -> int:
        """Reserve a regular file member of `size` bytes at the end; return where its data
        starts. Call with the lock held."""
        start = self._header(_info(name, size))
        self._end = start + -(-size // BLOCK) * BLOCK
        return start

    def _header(self, info: tarfile.TarInfo) -> int:
        header = info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        self._write_at(self._end, header)
        self._end += len(header)
        return self._end

    def _small(self, name: str, data: bytes) -> None:
        with self._lock:
            start = self._member(name, len(data))
        self._write_at(start, data)

    def _write_at(self, offset: int, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, offset)
            view, offset = view[written:], offset + written

    def _docker_files(self) -> None:
        entries: dict[str, dict[str, object]] = {}
        repositories: dict[str, dict[str, str]] = {}
        for tagged in self.tagged:
            manifest = self._manifest(tagged)
            key = str(manifest.digest)
            entry = entries.setdefault(key, {
                "Config": _member_name(manifest.config.digest), "RepoTags": [],
                "Layers": [_member_name(d.digest) for d in manifest.layers]})
            if tagged.reference is None:
                continue  # docker loads it untagged
            name = familiar(tagged.reference)
            tags = entry["RepoTags"]
            assert isinstance(tags, list)
            tags.append(name)
            repo, tag = name.rsplit(":", 1)
            repositories.setdefault(repo, {})[tag] = manifest.config.digest.encoded
        self._small("manifest.json", json.dumps(list(entries.values())).encode())
        self._small("repositories", json.dumps(repositories).encode())

    def _manifest(self, tagged: Tagged) -> Manifest:
        if not mt.is_manifest(tagged.descriptor.media_type):
            raise UsageError(f"{tagged.reference or 'the image'} is a multi-platform index: "
                             "docker load takes "
                             "one platform (use --platform), or pull with --format oci")
        raw = self._manifests[tagged.descriptor.digest]
        return Manifest.parse(raw, tagged.descriptor.media_type)


def _member_name(digest: Digest) -> str:
    """Where a blob is in the tar (sha512 blobs included: `blobs/sha512/<hex>`)."""
    return f"blobs/{digest.algorithm}/{digest.encoded}"


def _info(name: str, size: int) -> tarfile.TarInfo:
    """Fixed ownership and times: the same pull gives the same tar."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def send_to_stdout(fd: int, size: int) -> None:
    """The first `size` bytes of the file `fd` to standard output (sendfile where the OS
    can; a stream without a descriptor, as in a test runner, gets them written). A reader
    that stops early (`| head`) is an error: the tar did not arrive whole."""
    sys.stdout.flush()
    try:
        out: int | None = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        out = None
    try:
        offset = 0
        while offset < size:
            sent = _send(fd, out, offset, size - offset)
            if not sent:
                raise FreightError(f"the tar for standard output ended at byte {offset} of "
                                   f"{size}")
            offset += sent
        if out is None:
            sys.stdout.buffer.flush()
    except BrokenPipeError:
        if out is not None:  # Python would complain again when it flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), out)
        raise UsageError("standard output was closed before the whole tar was written "
                         "(the reading command stopped)") from None


def _send(fd: int, out: int | None, offset: int, count: int) -> int:
    if out is not None:
        try:
            return os.sendfile(out, fd, offset, count)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOSYS):  # no sendfile to that file
                raise
    block = os.pread(fd, min(READ_BLOCK, count), offset)
    if out is None:
        sys.stdout.buffer.write(block)
        return len(block)
    return os.write(out, block)
