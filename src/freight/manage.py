"""Changing what a registry holds: tag an existing manifest, delete a tag or a manifest.

`tag` moves no blobs: it fetches the manifest's exact bytes and media type and PUTs them
under each new tag, so the digest cannot change (protocol.md §3.2).

`delete` of a digest deletes the manifest (and, on distribution, every tag pointing at
it). `delete` of a tag uses OCI tag deletion, `DELETE /v2/<name>/manifests/<tag>`
(protocol.md §3.5). Registries without it (distribution 2.8 answers 400 DIGEST_INVALID)
get an error naming the digest to delete instead; `resolve=True` deletes that manifest
directly. A registry with deletes disabled answers 405 UNSUPPORTED, and no retry helps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from freight.connect import Connection
from freight.digest import Digest
from freight.distribution import urls
from freight.errors import NotFound, RegistryError, UsageError
from freight.reference import Reference, validate_tag
from freight.remote import as_reference, open_client
from freight.sources.registry import Fetched, RegistryReader
from freight.transport.client import RegistryClient

TAG_DELETE_REFUSED = frozenset({400})  # distribution 2.8: DIGEST_INVALID for a tag DELETE
DELETES_DISABLED = frozenset({405})  # UNSUPPORTED: deletes off, read-only, or a proxy cache


@dataclass(frozen=True)
class TagResult:
    """`source` (pinned to `digest`) is now also reachable as each of `tags`."""

    source: Reference
    digest: Digest
    media_type: str
    tags: tuple[Reference, ...]


@dataclass(frozen=True)
class DeleteResult:
    """What was deleted: a tag (`deleted.tag`) or a manifest (`deleted.digest`).

    `digest` is the manifest's digest when it is known (always for a manifest delete).
    """

    reference: Reference
    deleted: Reference
    digest: Digest | None

    @property
    def kind(self) -> str:
        """`manifest` or `tag`."""
        return "manifest" if self.deleted.digest is not None else "tag"


def tag(
    ref: str | Reference, new_tags: Iterable[str], *, connection: Connection | None = None,
) -> TagResult:
    """Tag the manifest `ref` names with each of `new_tags`, in the same repository."""
    source = as_reference(ref)
    wanted = tuple(validate_tag(t) for t in new_tags)
    if not wanted:
        raise UsageError("give at least one new tag")
    with open_client(connection, source.registry) as client:
        client.auth.want(f"repository:{source.repository}:pull,push")
        fetched = RegistryReader(client, source.repository).manifest(source.reference)
        if not fetched.media_type:
            raise RegistryError(f"{source}: the registry did not say what kind of manifest "
                                "it is (no Content-Type or mediaType); cannot tag it")
        tagged = tuple(_put(client, source, fetched, t) for t in wanted)
    return TagResult(replace(source, digest=fetched.digest), fetched.digest,
                     fetched.media_type, tagged)


def delete(
    ref: str | Reference, *, resolve: bool = False, connection: Connection | None = None,
) -> DeleteResult:
    """Delete the manifest `ref`'s digest names, or the tag it names.

    With `resolve`, a tag is first resolved to its manifest's digest and that manifest is
    deleted (with every tag pointing at it): the way to untag on registries without tag
    deletion. Without it, a registry that refuses tag deletion raises RegistryError naming
    the digest to delete instead.
    """
    target = as_reference(ref)
    with open_client(connection, target.registry) as client:
        reader = RegistryReader(client, target.repository)
        client.auth.want(f"repository:{target.repository}:delete")
        if target.digest is not None:
            return _delete_manifest(client, target, target.digest)
        if resolve:
            fetched = reader.manifest(target.reference)
            return _delete_manifest(client, target, fetched.digest)
        return _delete_tag(client, reader, target)


def _put(client: RegistryClient, source: Reference, fetched: Fetched, new_tag: str) -> Reference:
    target = source.with_tag(new_tag)
    reply = client.request(
        "PUT", urls.manifest_path(source.repository, new_tag), ok=(200, 201, 202),
        headers={"Content-Type": fetched.media_type}, content=fetched.raw,
        what=f"tagging {fetched.digest.short} as {new_tag}")
    said = reply.headers.get("Docker-Content-Digest")
    if said and said != str(fetched.digest):
        raise RegistryError(f"{client.host} stored {target} as {said}, not {fetched.digest}: "
                            "it changed the manifest's bytes")
    return replace(target, digest=fetched.digest)


def _delete_manifest(client: RegistryClient, asked: Reference, digest: Digest) -> DeleteResult:
    pinned = asked.with_digest(digest)
    try:
        client.request("DELETE", urls.manifest_path(asked.repository, str(digest)),
                       ok=(200, 202, 204), what=f"deleting {pinned}")
    except RegistryError as exc:
        if exc.status in DELETES_DISABLED:
            raise _disabled(client, exc) from None
        raise
    return DeleteResult(asked, pinned, digest)


def _delete_tag(client: RegistryClient, reader: RegistryReader, asked: Reference) -> DeleteResult:
    tag_name = asked.reference
    untagged = asked.with_tag(tag_name)
    try:
        client.request("DELETE", urls.manifest_path(asked.repository, tag_name),
                       ok=(200, 202, 204), what=f"deleting the tag {untagged}")
    except RegistryError as exc:
        if exc.status in DELETES_DISABLED:
            raise _disabled(client, exc) from None
        if exc.status in TAG_DELETE_REFUSED:
            raise _tag_delete_refused(client, reader, untagged, exc) from None
        raise
    return DeleteResult(asked, untagged, None)


def _disabled(client: RegistryClient, exc: RegistryError) -> RegistryError:
    return RegistryError(
        f"{client.host} does not allow deletes (HTTP {exc.status} {exc.code or ''}): they "
        "are disabled there (distribution: storage.delete.enabled) or it is read-only",
        status=exc.status, code=exc.code, detail=exc.detail)


def _tag_delete_refused(client: RegistryClient, reader: RegistryReader, untagged: Reference,
                        exc: RegistryError) -> RegistryError:
    """Why the tag DELETE failed, with the exact command that deletes by digest instead."""
    try:
        digest = reader.manifest(untagged.reference).digest
    except NotFound as missing:
        return missing  # a registry without tag deletion answers 400 even for unknown tags
    pinned = untagged.with_digest(digest)
    return RegistryError(
        f"{client.host} does not support deleting a tag (HTTP {exc.status} "
        f"{exc.code or ''}); delete the manifest by digest instead, which removes every tag "
        f"pointing at it: freight delete {pinned} (or: freight delete --resolve {untagged})",
        status=exc.status, code=exc.code, detail=exc.detail)
