"""Digests: hashing while bytes stream past, and the error that names both digests."""

from __future__ import annotations

import pytest

from freight.digest import Digest, Hasher, hashing, verified
from freight.errors import DigestMismatch, UsageError

DATA = [b"hello ", b"world"]
RIGHT = Digest.of(b"hello world")
WRONG = Digest.of(b"something else")


def test_hashing_passes_chunks_through_and_counts_them() -> None:
    hasher = Hasher()
    assert list(hashing(DATA, hasher)) == DATA
    assert (hasher.digest, hasher.size) == (RIGHT, 11)


def test_a_mismatch_names_what_and_both_digests() -> None:
    hasher = Hasher()
    hasher.update(b"hello world")
    hasher.check(RIGHT, "layer 1")  # the right one passes
    with pytest.raises(DigestMismatch) as caught:
        hasher.check(WRONG, "layer 1 of app")
    error = caught.value
    assert (error.expected, error.actual) == (str(WRONG), str(RIGHT))
    assert str(error).startswith("layer 1 of app: the content does not match")
    assert str(RIGHT) in str(error) and str(WRONG) in str(error)


def test_verified_streams_then_checks_digest_and_size() -> None:
    assert b"".join(verified(DATA, RIGHT, 11, "blob")) == b"hello world"
    assert b"".join(verified(DATA, RIGHT, None, "blob")) == b"hello world"
    with pytest.raises(DigestMismatch, match="blob"):
        b"".join(verified(DATA, WRONG, 11, "blob"))
    with pytest.raises(DigestMismatch, match=r"blob \(size 11, expected 12\)"):
        b"".join(verified(DATA, RIGHT, 12, "blob"))


def test_sha512_streams_are_hashed_with_sha512() -> None:
    import hashlib

    expected = Digest("sha512", hashlib.sha512(b"hello world").hexdigest())
    assert b"".join(verified(DATA, expected, 11, "blob")) == b"hello world"


@pytest.mark.parametrize(("text", "says"), [
    ("sha256", "not a digest"), ("sha256:", "not a digest"), ("SHA256:" + "a" * 64, "not a digest"),
    ("md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
    ("sha256:" + "A" * 64, "malformed sha256 digest"),
])
def test_what_is_wrong_with_a_digest(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        Digest.parse(text)
    assert not Digest.is_valid(text)


def test_a_digest_prints_as_it_parses_and_shortens_like_docker() -> None:
    digest = Digest.parse("sha256:" + "0123456789ab" + "c" * 52)
    assert str(digest) == "sha256:0123456789ab" + "c" * 52 and digest.short == "0123456789ab"
    assert Digest.is_valid(str(digest))


def test_a_size_mismatch_still_names_both_digests() -> None:
    with pytest.raises(DigestMismatch) as caught:
        b"".join(verified(DATA, RIGHT, 12, "blob"))
    assert (caught.value.expected, caught.value.actual) == (str(RIGHT), str(RIGHT))
