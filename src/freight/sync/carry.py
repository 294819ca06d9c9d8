"""Writing referrers at a destination, in the form it supports.

Every referrer manifest is copied unchanged (same digest). A destination with the
referrers API indexes them itself (it answers `OCI-Subject` on the PUT); for one without,
the referrers tag `sha256-<hex>` is kept: the source's tag-schema index is copied verbatim,
and referrers found through the API are merged into the destination's index (read, add
what is missing, write), one subject at a time. Cosign's tags are copied as tags.
"""

from __future__ import annotations

import threading
from collections import defaultdict

from freight import mediatypes as mt
from freight.digest import Digest
from freight.errors import NotFound
from freight.manifest import Descriptor, Index
from freight.referrers import COSIGN, Listing, Referrer, referrers_tag
from freight.sync.store import Source, Store
from freight.sync.treecopy import Tally, copy_tree

_locks: defaultdict[tuple[str, Digest], threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _lock(dst: Store, subject: Digest) -> threading.Lock:
    """One writer at a time for a subject's referrers tag (tags v1 and latest may share
    a digest, and their copies run in parallel)."""
    with _locks_guard:
        return _locks[(dst.name, subject)]


def carry(listing: Listing, src: Source, dst: Store, *, tally: Tally | None = None) -> int:
    """Copy every referrer in `listing` (recursively) from `src` to `dst`; return how many
    manifests had to be written (0 when the destination had them all)."""
    tally = tally or Tally()
    before = tally.manifests
    for referrer in listing.referrers:
        _copy_one(referrer, src, dst, tally)
        if referrer.children:
            carry(referrer.children, src, dst, tally=tally)
    with _lock(dst, listing.subject):
        _keep_index(listing, src, dst, tally)
    return tally.manifests - before


def _copy_one(referrer: Referrer, src: Source, dst: Store, tally: Tally) -> None:
    digest = referrer.descriptor.digest
    if referrer.via == COSIGN and referrer.tag:
        have = dst.head_manifest(referrer.tag)
        if have is None or have.digest != digest:
            copy_tree(src, dst, digest, tag=referrer.tag, tally=tally)
    elif dst.head_manifest(str(digest)) is None:
        copy_tree(src, dst, digest, tally=tally)


def _keep_index(listing: Listing, src: Source, dst: Store, tally: Tally) -> None:
    tag = referrers_tag(listing.subject)
    if listing.index is not None:  # the source keeps a referrers tag: the same one here
        have = dst.head_manifest(tag)
        if have is not None and have.digest == listing.index.digest:
            return
        raw, kind = src.get_manifest(str(listing.index.digest))
        _entries_first(Index.parse(raw, kind, f"referrers tag {tag}"), src, dst, tally)
        if have is None:
            dst.put_manifest(tag, raw, kind)
            tally.add(manifests=1)
            return
        try:
            _merge(dst, tag, list(Index.parse(raw, kind).manifests), tally)
        except NotFound:  # a bundle knows the far side's tag, not its content: replace it
            dst.put_manifest(tag, raw, kind)
            tally.add(manifests=1)
        return
    listed = [r.descriptor for r in listing.referrers if r.via != COSIGN]
    if listed and not dst.supports_referrers():
        _merge(dst, tag, listed, tally)


def _entries_first(index: Index, src: Source, dst: Store, tally: Tally) -> None:
    """Every referrer the source's referrers tag lists, at the destination before the tag
    (found without it: a layout that lists only the tag); a HEAD each, as they are few."""
    for entry in index.manifests:
        if dst.head_manifest(str(entry.digest)) is None:
            copy_tree(src, dst, entry.digest, tally=tally)


def add_to_index(dst: Store, subject: Digest, descriptors: list[Descriptor]) -> None:
    """List `descriptors` in `dst`'s referrers tag of `subject` (a registry without the
    referrers API: the client keeps the index, as the distribution spec says)."""
    with _lock(dst, subject):
        _merge(dst, referrers_tag(subject), descriptors, Tally())


def _merge(dst: Store, tag: str, wanted: list[Descriptor], tally: Tally) -> None:
    """Make `dst`'s referrers index `tag` list every descriptor of `wanted`."""
    fresh = Index.build(mt.OCI_INDEX, wanted)
    have = dst.head_manifest(tag)
    if have is not None and have.digest == fresh.digest:
        return
    entries = list(wanted)
    if have is not None:
        raw, kind = dst.get_manifest(str(have.digest))
        present = list(Index.parse(raw, kind, f"referrers tag {tag}").manifests)
        known = {d.digest for d in present}
        entries = present + [d for d in wanted if d.digest not in known]
        if len(entries) == len(present):
            return
    merged = Index.build(mt.OCI_INDEX, entries)
    dst.put_manifest(tag, merged.raw, mt.OCI_INDEX)
    tally.add(manifests=1)
