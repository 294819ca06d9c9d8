"""BuildKit's attestation manifests: index entries (platform `unknown/unknown`) holding the
provenance and SBOM of one sibling image, named by the entry's annotations. A statement
about a manifest holds for that manifest only: when the sibling is rewritten on the way
(its layers compressed), its attestation is left out of the new index, with a note."""

from __future__ import annotations

from freight.digest import Digest
from freight.manifest import Descriptor

REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION = "attestation-manifest"


def attested(desc: Descriptor) -> Digest | None:
    """The digest of the sibling manifest an index entry attests, or None when the entry
    is no attestation (or names nothing readable)."""
    if desc.annotations.get(REFERENCE_TYPE) != ATTESTATION:
        return None
    try:
        return Digest.parse(desc.annotations.get(REFERENCE_DIGEST, ""))
    except Exception:  # UsageError for a malformed digest: then it names nothing
        return None


def left_out(attestation: Digest, named: Digest, became: Digest) -> str:
    """The note for an attestation left out of a rebuilt index."""
    return (f"attestation manifest {attestation.short} left out: it describes "
            f"{named.short}, which was written as {became.short} (layers changed on the "
            "way); use --compression keep to keep both")
