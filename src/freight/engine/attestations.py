"""BuildKit's attestation manifests: index entries (platform `unknown/unknown`) holding the
provenance and SBOM of one sibling image, named by the entry's annotations. A statement
about a manifest holds for that manifest only: when the sibling is rewritten on the way
(its layers compressed), its attestation is left out of the new index, with a note."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from freight.digest import Digest
from freight.engine.plan import ImageStep
from freight.manifest import Descriptor
from freight.sources.model import ImageNode, Node

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


def rewritten(step: ImageStep) -> bool:
    """Whether the run writes a manifest of its own for `step` (a new digest), as
    `Engine._manifest` decides."""
    return step.kind is not None or step.node.manifest is None


def kept_steps(node: Node, steps: Iterator[ImageStep],
               note: Callable[[str], None]) -> list[ImageStep]:
    """For a dry run: the steps under `node` (taken from `steps`, in tree order) that a
    real run would move, in the order it moves them. An attestation of an image that is
    rewritten is left out, with `note`, as the real run does."""
    if isinstance(node, ImageNode):
        return [next(steps)]
    kept: list[ImageStep] = []
    changed: set[Digest] = set()
    later: list[tuple[Digest, ImageStep, Digest]] = []
    for desc, child in node.children:
        named = attested(desc)
        if named is not None and isinstance(child, ImageNode):
            later.append((desc.digest, next(steps), named))
            continue
        own = kept_steps(child, steps, note)
        if isinstance(child, ImageNode) and rewritten(own[0]):
            changed.add(desc.digest)
        kept.extend(own)
    for attestation, step, named in later:
        if named in changed:
            note(f"attestation manifest {attestation.short} would be left out: it describes "
                 f"{named.short}, whose layers change on the way")
        else:
            kept.append(step)
    return kept
