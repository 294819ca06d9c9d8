"""`Storage` on an S3 bucket (any S3-compatible store), for stateless replicas.

The keys are those of base.py under the bucket prefix; upload sessions are in s3_uploads.py.
Every process works on the bucket alone, so any number of replicas (or uvicorn workers) on
one bucket are one registry. Correctness under concurrency rests on the store:

- every PUT is atomic and reads after it see it (S3 and SeaweedFS are strongly consistent);
- content-addressed objects (blobs, manifests, links) are the same bytes whoever writes
  them, so concurrent writers cannot disagree; they are written with `If-None-Match: *`,
  which skips the rewrite when the object exists (412);
- a tag is one object holding a digest: concurrent pushes of one tag end with one of the
  manifests, whole (last writer wins, as in distribution and on the filesystem);
- the bytes of an upload session are written as objects at their offset with
  `If-None-Match: *`, so two replicas never both store the same part of a session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO, cast

from freight.digest import Digest
from freight.errors import FreightError
from freight.server.cache import Immutable
from freight.server.storage import base
from freight.server.storage.base import Stamped, StoredBlob, TagEntry
from freight.server.storage.s3_objects import S3Location, S3Objects
from freight.server.storage.s3_uploads import S3Uploads

SIZE_CACHE_ENTRIES = 100_000  # blob sizes remembered (~15 MB): one HEAD less per blob read


class S3Storage:
    """`Storage` in `s3://bucket/prefix`; `redirect` sends blob GETs to presigned URLs."""

    def __init__(self, location: S3Location | str, *, redirect: bool = False,
                 objects: S3Objects | None = None) -> None:
        where = S3Location.parse(location) if isinstance(location, str) else location
        self.objects = objects if objects is not None else S3Objects(where)
        self.location = str(where)
        self.redirect = redirect
        self.uploads = S3Uploads(self)
        self._sizes: Immutable[Digest, int] = Immutable(SIZE_CACHE_ENTRIES)

    def check(self) -> None:
        """UsageError unless the bucket can be reached (before serving anything)."""
        self.objects.check_bucket()

    # -- blobs -------------------------------------------------------------------------------

    def has_blob(self, digest: Digest) -> bool:
        return self.objects.head(base.blob_key(digest)) is not None

    def blob_size(self, repo: str, digest: Digest) -> int | None:
        # The link is always read (it is what a delete or gc removes); the size of a digest
        # never changes, so after the first HEAD of the bytes it is known (one request less).
        if self.objects.head(base.layer_key(repo, digest)) is None:
            return None
        size = self._sizes.get(digest)
        if size is None:
            found = self.objects.head(base.blob_key(digest))
            if found is None:
                return None
            self._sizes.put(digest, size := found.size)
        return size

    def open_blob(self, digest: Digest) -> BinaryIO:
        return cast(BinaryIO, self.objects.reader(base.blob_key(digest)))

    def blob_url(self, digest: Digest) -> str | None:
        return self.objects.presign(base.blob_key(digest)) if self.redirect else None

    def link_blob(self, repo: str, digest: Digest) -> None:
        # Always rewritten (never If-None-Match): the link's time is what protects a blob
        # that is pushed or mounted again from a garbage collection running meanwhile.
        self.objects.put(base.layer_key(repo, digest), b"")

    def mount_blob(self, repo: str, source_repo: str, digest: Digest) -> bool:
        if self.blob_size(source_repo, digest) is None:
            return False
        self.link_blob(repo, digest)
        return True

    def unlink_blob(self, repo: str, digest: Digest) -> bool:
        return self._delete_if_present(base.layer_key(repo, digest))

    def _delete_if_present(self, key: str) -> bool:
        if self.objects.head(key) is None:
            return False
        self.objects.delete(key)
        return True

    # -- manifests and tags ------------------------------------------------------------------

    def put_manifest(self, repo: str, digest: Digest, content_type: str, data: bytes,
                     *, tag: str | None, subject: Digest | None) -> None:
        self.objects.put(base.blob_key(digest), data, exclusive=True)
        # Bytes, then revision, then tag: whatever a reader finds points at complete content.
        self.objects.put(base.revision_key(repo, digest), content_type.encode())
        if subject is not None:
            self.objects.put(base.referrer_key(repo, subject, digest), b"")
        if tag is not None:
            self.objects.put(base.tag_key(repo, tag), str(digest).encode())

    def manifest_type(self, repo: str, digest: Digest) -> str | None:
        # No HEAD of the bytes: they are written before the revision and gc removes only
        # bytes no revision names, so a revision implies them (one request less per GET).
        content_type = self.objects.get(base.revision_key(repo, digest))
        return content_type.decode() if content_type is not None else None

    def resolve_tag(self, repo: str, tag: str) -> Digest | None:
        data = self.objects.get(base.tag_key(repo, tag))
        if data is None:
            return None
        try:
            return Digest.parse(data.decode().strip())
        except (FreightError, UnicodeDecodeError):
            return None

    def delete_manifest(self, repo: str, digest: Digest) -> bool:
        if not self._delete_if_present(base.revision_key(repo, digest)):
            return False
        for entry in self.tag_entries(repo):
            if entry.digest == digest:
                self.objects.delete(base.tag_key(repo, entry.tag))
        return True

    def delete_tag(self, repo: str, tag: str) -> bool:
        return self._delete_if_present(base.tag_key(repo, tag))

    def tags(self, repo: str) -> list[str] | None:
        if not self.objects.exists_below(base.repo_key(repo) + "/_"):
            return None
        prefix = base.tag_key(repo, "")
        return sorted(item.key[len(prefix):] for item in self.objects.list(prefix))

    def repositories(self) -> list[str]:
        return sorted(self._repositories("repositories/"))

    def _repositories(self, prefix: str) -> Iterator[str]:
        for name in self.objects.dirs(prefix):
            if name.startswith("_"):
                continue
            below = list(self.objects.dirs(f"{prefix}{name}/"))
            if "_layers" in below or "_manifests" in below:
                yield f"{prefix}{name}".removeprefix("repositories/")
            if any(not sub.startswith("_") for sub in below):
                yield from self._repositories(f"{prefix}{name}/")

    def referrers(self, repo: str, subject: Digest) -> list[Digest]:
        found = []
        for digest in self._digests(base.referrers_key(repo, subject) + "/"):
            if self.manifest_type(repo, digest.digest) is not None:  # skip deleted referrers
                found.append(digest.digest)
        return sorted(found)

    def _digests(self, prefix: str) -> list[Stamped]:
        """Objects `<prefix><alg>/<hex>` as digests with their times."""
        out = []
        for item in self.objects.list(prefix):
            algorithm, _, encoded = item.key[len(prefix):].partition("/")
            if Digest.is_valid(f"{algorithm}:{encoded}"):
                out.append(Stamped(Digest(algorithm, encoded), item.mtime))
        return out

    # -- for garbage collection ----------------------------------------------------------------

    def revisions(self, repo: str) -> list[Stamped]:
        return self._digests(base.repo_key(repo) + "/_manifests/revisions/")

    def layer_links(self, repo: str) -> list[Stamped]:
        return self._digests(base.repo_key(repo) + "/_layers/")

    def tag_entries(self, repo: str) -> list[TagEntry]:
        prefix, entries = base.tag_key(repo, ""), []
        for item in self.objects.list(prefix):
            tag = item.key[len(prefix):]
            digest = self.resolve_tag(repo, tag)
            if digest is not None:
                entries.append(TagEntry(tag, digest, item.mtime))
        return entries

    def stored_blobs(self) -> Iterator[StoredBlob]:
        for item in self.objects.list("blobs/"):
            parts = item.key.split("/")
            if len(parts) == 4 and Digest.is_valid(f"{parts[1]}:{parts[3]}"):
                yield StoredBlob(Digest(parts[1], parts[3]), item.size, item.mtime)

    def read_blob(self, digest: Digest, limit: int) -> bytes:
        data = self.objects.get(base.blob_key(digest), byte_range=f"bytes=0-{limit - 1}")
        if data is None:
            raise FileNotFoundError(str(digest))
        return data

    def delete_blob_data(self, digest: Digest) -> None:
        self.objects.delete(base.blob_key(digest))

    def purge_temporary(self, cutoff: float, *, dry_run: bool) -> int:
        """Abort multipart uploads (blob assembly interrupted by a crash) begun before `cutoff`."""
        client, bucket = self.objects.client, self.objects.bucket
        reply = client.list_multipart_uploads(Bucket=bucket, Prefix=self.objects.full("blobs/"))
        removed = 0
        for upload in reply.get("Uploads", []):
            if upload["Initiated"].timestamp() > cutoff:
                continue
            removed += 1
            if not dry_run:
                client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                              UploadId=upload["UploadId"])
        return removed
