"""The tags referrers live under, with no dependencies (image sources read them too).

The distribution spec's fallback keeps a subject's referrers in an index tagged
`<alg>-<hex>`; cosign keeps its signatures, attestations and SBOMs under that tag with
the suffixes `.sig`, `.att` and `.sbom` (sigstore/cosign specs/SIGNATURE_SPEC.md).
"""

from __future__ import annotations

from freight.digest import Digest

COSIGN_SUFFIXES = (".sig", ".att", ".sbom")  # cosign's tag schema (SIGNATURE_SPEC.md)
_TAG_ALGORITHM, _TAG_ENCODED = 32, 64  # distribution-spec: truncation of the referrers tag
_HEX = frozenset("0123456789abcdef")


def referrers_tag(digest: Digest) -> str:
    """The tag-schema fallback tag of `digest`: `<alg>-<hex>`, truncated as the spec says."""
    return f"{digest.algorithm[:_TAG_ALGORITHM]}-{digest.encoded[:_TAG_ENCODED]}"


def cosign_tag(digest: Digest, suffix: str) -> str:
    return referrers_tag(digest) + suffix


def is_referrer_tag(tag: str) -> bool:
    """Tags that hold referrers (tag schema or cosign), not images of their own."""
    head, _, rest = tag.partition("-")
    encoded, dot, suffix = rest.partition(".")
    return head == "sha256" and len(encoded) == 64 and set(encoded) <= _HEX \
        and (not dot or f".{suffix}" in COSIGN_SUFFIXES)
