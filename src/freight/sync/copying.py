"""`copy_with_referrers`: `freight.copy`, then the referrers of what was copied.

A wrapper over the transfer engine for now: when the engine learns about referrers
(layouts and archives too), this moves into it. Referrers travel between registries;
for other locations the copy is `freight.copy`'s alone.
"""

from __future__ import annotations

from typing import Any

from freight.connect import Connection
from freight.locations import RegistryLocation, parse_location
from freight.reference import Reference
from freight.referrers import Finder
from freight.results import ImageResult
from freight.sync.carry import carry
from freight.sync.store import RegistryStore


def copy_with_referrers(source: str, destination: str, *, referrers: bool = True,
                        connection: Connection | None = None,
                        source_connection: Connection | None = None,
                        **options: Any) -> list[ImageResult]:
    """`freight.copy(source, destination, **options)`, carrying every referrer of each
    image copied between registries (signatures, SBOMs, attestations, recursively), with
    identical digests, in the form the destination supports."""
    from freight.copying import copy

    connection = connection or Connection()
    results = copy(source, destination, connection=connection,
                   source_connection=source_connection, **options)
    src = _registry_reference(source)
    if not referrers or src is None or _registry_reference(destination, bare=True) is None:
        return results
    src_client = (source_connection or connection).client(src.registry)
    dst_clients: dict[str, Any] = {}
    try:
        finder = Finder(src_client, src.repository)
        src_store = RegistryStore(src_client, src.repository)
        for result in results:
            if not isinstance(result.reference, Reference):
                continue
            ref = result.reference
            client = dst_clients.get(ref.registry) or connection.client(ref.registry)
            dst_clients[ref.registry] = client
            carry(finder.find(result.digest), src_store,
                  RegistryStore(client, ref.repository, push=True))
    finally:
        src_client.close()
        for client in dst_clients.values():
            client.close()
    return results


def _registry_reference(text: str, *, bare: bool = False) -> Reference | None:
    """The registry reference `text` names (a bare host only when `bare`), else None."""
    location = parse_location(text)
    if not isinstance(location, RegistryLocation):
        return None
    if location.reference is None:
        return Reference(location.host, "x") if bare else None
    return location.reference
