"""Single blobs and tokens, for scripts (crane's `blob` and `auth token`).

`get_blob` streams a blob to a file, verifying digest and size on the way; the bytes go to
a temporary file beside the target that is renamed into place only once verified, so a
failure leaves nothing at the target. `put_blob` hashes a file, skips the upload when the
registry has the blob, else uploads it in one PUT (re-sendable: the body is re-read from
the file on a retry). `bearer_token` runs the registry's token dance for a repository and
returns the token itself.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from freight.connect import Connection
from freight.digest import Digest, Hasher
from freight.distribution import urls
from freight.errors import AuthError, RegistryError, SourceError, UsageError
from freight.reference import Reference
from freight.remote import as_reference, as_repository, open_client
from freight.sources.registry import RegistryReader

READ_BLOCK = 1 << 20


def get_blob(ref: str | Reference, out: str | Path | BinaryIO, *,
             connection: Connection | None = None) -> tuple[Digest, int]:
    """Write the blob `ref` (REPO@DIGEST) to `out` (a path, or an open binary file); returns
    (digest, size). RegistryError when the bytes do not match the digest."""
    reference = as_reference(ref)
    if reference.digest is None:
        raise UsageError(f"{ref} names no blob: write REPO@sha256:… (a digest from "
                         "freight manifest)")
    with open_client(connection, reference.registry) as client:
        reader = RegistryReader(client, reference.repository)
        with reader.open_blob(reference.digest) as stream:
            chunks = iter(lambda: stream.read(READ_BLOCK), b"")
            if isinstance(out, (str, Path)):
                return _to_path(chunks, Path(out), reference)
            return _write(chunks, out, reference)


def _to_path(chunks: Iterator[bytes], path: Path, ref: Reference) -> tuple[Digest, int]:
    if path.is_dir():
        raise UsageError(f"{path} is a directory: give -o a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent} does not exist (freight creates no directories)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            result = _write(chunks, f, ref)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result


def _write(chunks: Iterator[bytes], out: BinaryIO, ref: Reference) -> tuple[Digest, int]:
    assert ref.digest is not None
    hasher = Hasher(ref.digest.algorithm)
    for chunk in chunks:
        hasher.update(chunk)
        out.write(chunk)
    if hasher.digest != ref.digest:
        raise RegistryError(f"{ref.registry} sent blob bytes whose digest is {hasher.digest}, "
                            f"not {ref.digest} (the registry's copy is damaged)")
    return hasher.digest, hasher.size


def file_digest(path: Path) -> tuple[Digest, int]:
    hasher = Hasher()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(READ_BLOCK), b""):
                hasher.update(block)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    return hasher.digest, hasher.size


def put_blob(repo: str | Reference, path: str | Path, *,
             connection: Connection | None = None) -> tuple[Digest, int, bool]:
    """Upload the file `path` as a blob of `repo`; returns (digest, size, uploaded) where
    `uploaded` is False when the registry had it already."""
    repository, file = as_repository(repo), Path(path)
    digest, size = file_digest(file)
    with open_client(connection, repository.registry) as client:
        client.auth.want(f"repository:{repository.repository}:pull,push")
        head = client.request("HEAD", urls.blob_path(repository.repository, digest),
                              ok=(200, 404), what=f"checking for blob {digest.short}")
        if head.status_code == 200:
            return digest, size, False
        started = client.request("POST", urls.uploads_path(repository.repository),
                                 ok=(202,), what="starting an upload")
        location = started.headers.get("Location")
        if not location:
            raise RegistryError(f"{client.host} started an upload but sent no Location")
        target = urls.add_query(urls.resolve_location(location, str(started.url)), "digest",
                                str(digest))
        client.request("PUT", target, ok=(201,), body=lambda: _read_file(file),
                       headers={"Content-Type": "application/octet-stream",
                                "Content-Length": str(size)},
                       what=f"uploading blob {digest.short}")
    return digest, size, True


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        yield from iter(lambda: f.read(READ_BLOCK), b"")


def bearer_token(repo: str | Reference, *, push: bool = False,
                 connection: Connection | None = None) -> str:
    """A bearer token for `repo` (pull, or pull and push), from the registry's token server."""
    repository = as_repository(repo)
    actions = "pull,push" if push else "pull"
    with open_client(connection, repository.registry) as client:
        client.auth.want(f"repository:{repository.repository}:{actions}")
        client.ping()
        header = client.auth.header_for(client.http.build_request("GET", "/v2/"))
    if header is None:
        raise UsageError(f"{repository.registry} asks for no authentication: there is no "
                         "token to print")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError(f"{repository.registry} uses {scheme} authentication, not bearer "
                        "tokens: there is no token to print")
    return token
