"""Reading what a registry holds: manifests, image configs and digests (the tags and the
catalog are freight.listings).

Manifests are fetched with
the full `Accept` list (§3.3) and hashed here; the digest a registry reports is never
trusted. An image config is read with a size cap and checked against its descriptor.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from freight import jsontext
from freight import mediatypes as mt
from freight.connect import Connection
from freight.digest import Digest, Hasher
from freight.errors import NotFound, RegistryError, UsageError
from freight.listings import missing_tag
from freight.locations import LocalLocation
from freight.manifest import Descriptor, Index, Manifest, Platform, host_platform
from freight.reference import Reference
from freight.remote import as_reference, open_client
from freight.sources.model import MAX_INDEX_DEPTH
from freight.sources.registry import Fetched, RegistryReader, malformed_from, pick

MAX_CONFIG_SIZE = 32 << 20  # an image config is JSON metadata; more than this is not one
READ_BLOCK = 1 << 16

Where = Reference | LocalLocation  # what was inspected: a registry reference or a local path


@dataclass(frozen=True)
class ManifestInfo:
    """A manifest or index exactly as stored: `raw` bytes, their digest and media type.

    `content` is the parsed image manifest or index (None for a kind freight does not read,
    e.g. an artifact whose type it does not know). When a platform was picked from an index,
    `platform` is it and `index` is the index's digest.
    """

    reference: Where
    digest: Digest
    media_type: str
    raw: bytes
    content: Manifest | Index | None
    platform: Platform | None = None
    index: Digest | None = None
    built: bool = False  # a local image without a manifest of its own: built from its blobs

    @property
    def pinned(self) -> Where:
        """The reference as asked, with the digest of what was found."""
        return _pinned(self.reference, self.digest)


@dataclass(frozen=True)
class ConfigInfo:
    """An image config: `raw` bytes (verified against `digest`) from the manifest `manifest`."""

    reference: Where
    manifest: Digest
    digest: Digest
    media_type: str
    raw: bytes
    platform: Platform | None = None

    def json(self) -> Any:
        """The config parsed as JSON."""
        return jsontext.parse(self.raw)


@dataclass(frozen=True)
class DigestInfo:
    """The digest `reference` resolves to (an index's own, or a platform's child)."""

    reference: Where
    digest: Digest
    media_type: str
    platform: Platform | None = None

    @property
    def pinned(self) -> Where:
        return _pinned(self.reference, self.digest)


def manifest(
    ref: str | Reference, *, platform: str | Platform | None = None,
    connection: Connection | None = None,
) -> ManifestInfo:
    """The manifest or index `ref` names; with `platform`, an index's child for it."""
    reference = as_reference(ref)
    wanted = _platform(platform)
    with open_client(connection, reference.registry) as client:
        reader = RegistryReader(client, reference.repository)
        found = resolve(reader, reference, wanted)
        if wanted is not None and isinstance(found.content, Manifest) and found.index is None:
            raw = read_small_blob(reader, found.content.config, f"the config of {found.pinned}")
            check_platform(str(reference), wanted, _config_platform(raw))
        return found


def config(
    ref: str | Reference, *, platform: str | Platform | None = None,
    connection: Connection | None = None,
) -> ConfigInfo:
    """The image config of `ref`; for an index, of its child for `platform` (default: this
    machine's, like `docker pull`)."""
    reference = as_reference(ref)
    wanted = _platform(platform) or host_platform()
    with open_client(connection, reference.registry) as client:
        reader = RegistryReader(client, reference.repository)
        found = resolve(reader, reference, wanted)
        if not isinstance(found.content, Manifest):
            kind = found.media_type or "manifest of unknown type"
            raise RegistryError(f"{found.pinned} is a {kind}, not an image manifest: "
                                "it has no image config")
        desc = found.content.config
        raw = read_small_blob(reader, desc, f"the config of {found.pinned}")
        if platform is not None and found.index is None:
            check_platform(str(reference), wanted, _config_platform(raw))
    return ConfigInfo(reference, found.digest, desc.digest, desc.media_type, raw,
                      found.platform)


def digest(
    ref: str | Reference, *, platform: str | Platform | None = None,
    connection: Connection | None = None,
) -> DigestInfo:
    """The digest of what `ref` names: for an index its own, or with `platform` its child's."""
    found = manifest(ref, platform=platform, connection=connection)
    return DigestInfo(found.reference, found.digest, found.media_type, found.platform)


def resolve(reader: RegistryReader, ref: Reference, platform: Platform | None) -> ManifestInfo:
    """Fetch `ref`; with `platform`, walk down indexes to the child manifest for it."""
    fetched = _fetch_named(reader, ref)
    found = _info(ref, fetched)
    depth = 0
    while platform is not None and isinstance(found.content, Index):
        depth += 1
        if depth > MAX_INDEX_DEPTH:
            raise RegistryError(f"{ref}: indexes nested more than {MAX_INDEX_DEPTH} deep")
        child = pick(found.content, platform, ref)
        fetched = reader.manifest(str(child.digest))
        top = found.index or found.digest
        found = replace(_info(ref, fetched), platform=child.platform, index=top)
    return found


def check_platform(what: str, wanted: Platform, have: Platform | None) -> None:
    """A single-platform image asked for with a --platform it is not: a usage error."""
    if have is None or not have.os or not have.architecture or wanted.matches(have):
        return
    raise UsageError(f"{what} is a single-platform image for {have}, not {wanted}; "
                     f"drop --platform or use --platform {have}")


def _config_platform(raw: bytes) -> Platform | None:
    try:
        data = jsontext.parse(raw)
    except ValueError:
        return None
    return Platform.from_json(data) if isinstance(data, dict) else None


def _fetch_named(reader: RegistryReader, ref: Reference) -> Fetched:
    """The manifest `ref` names; a missing tag's error says which tags there are."""
    try:
        return reader.manifest(ref.reference)
    except NotFound as exc:
        if ref.digest is not None:
            raise
        raise missing_tag(reader.client, ref, exc) from None


def _pinned(where: Where, digest: Digest) -> Where:
    return replace(where, digest=digest) if isinstance(where, Reference) else where


def read_small_blob(reader: RegistryReader, desc: Descriptor, what: str) -> bytes:
    """A blob small enough to hold (a config), checked against `desc`'s digest and size."""
    if desc.size > MAX_CONFIG_SIZE:
        raise RegistryError(f"{what} is {desc.size} bytes; more than {MAX_CONFIG_SIZE} is "
                            "not an image config")
    hasher = Hasher(desc.digest.algorithm)
    with reader.open_blob(desc.digest) as stream:
        data = b"".join(_bounded(iter(lambda: stream.read(READ_BLOCK), b""), desc.size, what))
    hasher.update(data)
    hasher.check(desc.digest, what)
    if hasher.size != desc.size:
        raise RegistryError(f"{what} is {hasher.size} bytes, not the {desc.size} its "
                            "manifest says")
    return data


def _bounded(chunks: Iterator[bytes], size: int, what: str) -> Iterator[bytes]:
    """`chunks`, failing as soon as they pass `size` bytes (a registry that never stops)."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > size:
            raise RegistryError(f"{what} is larger than the {size} bytes its manifest says")
        yield chunk


def _info(ref: Reference, fetched: Fetched) -> ManifestInfo:
    with malformed_from(ref.registry):
        content = _parse(fetched)
    return ManifestInfo(ref, fetched.digest, fetched.media_type, fetched.raw, content)


def _parse(fetched: Fetched) -> Manifest | Index | None:
    what = f"manifest {fetched.digest}"
    if mt.is_index(fetched.media_type):
        return Index.parse(fetched.raw, fetched.media_type, what)
    if mt.is_manifest(fetched.media_type):
        return Manifest.parse(fetched.raw, fetched.media_type, what)
    return None


def _platform(value: str | Platform | None) -> Platform | None:
    return Platform.parse(value) if isinstance(value, str) else value
