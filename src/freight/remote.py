"""What the inspect and manage functions are given, parsed at the edge: references,
repositories and registries, and a client for them from a `Connection`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from freight.connect import Connection
from freight.errors import UsageError
from freight.locations import LocalLocation, parse_location
from freight.reference import Reference, parse_registry_or_reference
from freight.transport.client import RegistryClient


@contextmanager
def open_client(connection: Connection | None, registry: str) -> Iterator[RegistryClient]:
    """A client for `registry` (as written in a reference), closed on exit."""
    client = (connection or Connection()).client(registry)
    try:
        yield client
    finally:
        client.close()


def as_reference(ref: str | Reference) -> Reference:
    """A parsed reference; strings are parsed like docker parses them, `docker://` is
    accepted, a URL gets the fix suggested, and a local path is refused (not sent to
    Docker Hub as `docker.io/library/app.tar`)."""
    if isinstance(ref, Reference):
        return ref
    location = parse_location(ref)
    if isinstance(location, LocalLocation):
        raise UsageError(f"{ref!r} is a local path, not a registry reference; this command "
                         "reads registries (for an image on Docker Hub of that name, write "
                         f"docker://{ref})")
    if location.reference is None:
        raise UsageError(f"{ref!r} is a registry, not an image: add the repository, e.g. "
                         f"{ref}/app:1")
    return location.reference


def as_repository(repo: str | Reference) -> Reference:
    """A repository without tag or digest; a tag or digest is a usage error, not ignored."""
    ref = as_reference(repo)
    if ref.tag is not None or ref.digest is not None:
        raise UsageError(f"{ref} names an image, not a repository: "
                         f"give {ref.name} without a tag or digest")
    return ref


def as_registry(registry: str) -> str:
    """A bare registry host (`localhost:5000`, `registry.example`), not a repository."""
    if registry.startswith("docker://"):
        registry = registry.removeprefix("docker://").rstrip("/")
    elif registry.startswith(("http://", "https://")):
        bare = registry.split("://", 1)[1].rstrip("/")
        raise UsageError(f"{registry!r} is a URL: give the registry as {bare!r} (use "
                         "--plain-http for a registry without TLS)")
    parsed = parse_registry_or_reference(registry)
    if isinstance(parsed, Reference):
        raise UsageError(f"{registry!r} is a repository, not a registry: give only the host "
                         "(a name with a dot or a port, or localhost)")
    return parsed
