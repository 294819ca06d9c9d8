"""`copy_with_referrers`: `freight.copy` with the image's referrers (its default now).

Kept for the callers that named it; `freight.copy(..., referrers=True)` does the same
(see freight.sync.travel).
"""

from __future__ import annotations

from typing import Any

from freight.results import ImageResult


def copy_with_referrers(source: str, destination: str, *, referrers: bool = True,
                        **options: Any) -> list[ImageResult]:
    """`freight.copy(source, destination, **options)`, carrying every referrer of each
    image copied (signatures, SBOMs, attestations, recursively), with identical digests,
    in the form the destination supports."""
    from freight.copying import copy

    return copy(source, destination, referrers=referrers, **options)
