"""`copy_with_referrers`: `freight.copy`, then the referrers of what was copied.

A wrapper for now: when the transfer engine learns about referrers this moves into it.
"""

from __future__ import annotations

from freight.connect import Connection
from freight.reference import Reference
from freight.referrers import Finder
from freight.results import ImageResult
from freight.sync.carry import carry
from freight.sync.store import RegistryStore

DEFAULT_JOBS = 4  # like freight.copy


def copy_with_referrers(source: str, destination: str, *, referrers: bool = True,
                        jobs: int = DEFAULT_JOBS,
                        connection: Connection | None = None) -> list[ImageResult]:
    """`freight.copy(source, destination)` carrying every referrer of each image copied
    (signatures, SBOMs, attestations, recursively), with identical digests."""
    from freight.registry_copy import copy

    connection = connection or Connection()
    results = copy(source, destination, jobs=jobs, connection=connection)
    if not referrers:
        return results
    src, dst = Reference.parse(source), Reference.parse(destination)
    src_client = connection.client(src.registry, jobs=jobs)
    dst_client = connection.client(dst.registry, jobs=jobs)
    try:
        finder = Finder(src_client, src.repository)
        src_store = RegistryStore(src_client, src.repository)
        dst_store = RegistryStore(dst_client, dst.repository, push=True)
        for result in results:
            carry(finder.find(result.digest), src_store, dst_store)
    finally:
        src_client.close()
        dst_client.close()
    return results
