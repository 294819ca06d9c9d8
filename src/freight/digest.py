"""Content digests: a parsed value, and hashing while bytes stream past."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from freight.errors import DigestMismatch, UsageError

_ENCODED = {"sha256": re.compile(r"[a-f0-9]{64}"), "sha512": re.compile(r"[a-f0-9]{128}")}
_GENERIC = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


@dataclass(frozen=True, order=True)
class Digest:
    """An `algorithm:hex` content digest; only sha256 and sha512 are accepted."""

    algorithm: str
    encoded: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse `sha256:<64 hex>`; raise UsageError for anything else."""
        if not _GENERIC.fullmatch(text):
            raise UsageError(f"not a digest: {text!r} (expected sha256:<64 hex digits>)")
        algorithm, encoded = text.split(":", 1)
        pattern = _ENCODED.get(algorithm)
        if pattern is None:
            raise UsageError(f"unsupported digest algorithm {algorithm!r} in {text!r}")
        if not pattern.fullmatch(encoded):
            raise UsageError(f"malformed {algorithm} digest: {text!r}")
        return cls(algorithm, encoded)

    @classmethod
    def is_valid(cls, text: str) -> bool:
        try:
            cls.parse(text)
        except UsageError:
            return False
        return True

    @classmethod
    def of(cls, data: bytes) -> Digest:
        """The sha256 digest of `data`."""
        return cls("sha256", hashlib.sha256(data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    @property
    def short(self) -> str:
        """12 hex digits, as docker shows image IDs."""
        return self.encoded[:12]


EMPTY_SHA256 = Digest("sha256", hashlib.sha256(b"").hexdigest())


class Hasher:
    """Counts and hashes bytes as they pass; `digest` and `size` read the result so far."""

    def __init__(self, algorithm: str = "sha256") -> None:
        self.algorithm = algorithm
        self._hash = hashlib.new(algorithm)
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> Digest:
        return Digest(self.algorithm, self._hash.hexdigest())

    def check(self, expected: Digest, what: str) -> None:
        """Raise DigestMismatch unless what passed hashes to `expected`."""
        if self.digest != expected:
            raise DigestMismatch(what, str(expected), str(self.digest))


def hashing(chunks: Iterable[bytes], hasher: Hasher) -> Iterator[bytes]:
    """Yield `chunks` unchanged while feeding them to `hasher`."""
    for chunk in chunks:
        hasher.update(chunk)
        yield chunk


def verified(
    chunks: Iterable[bytes], expected: Digest, size: int | None, what: str
) -> Iterator[bytes]:
    """Yield `chunks`, then raise DigestMismatch if they do not hash to `expected` and `size`."""
    hasher = Hasher(expected.algorithm)
    yield from hashing(chunks, hasher)
    hasher.check(expected, what)
    if size is not None and hasher.size != size:
        raise DigestMismatch(f"{what} (size {hasher.size}, expected {size})", str(expected),
                             str(hasher.digest))
