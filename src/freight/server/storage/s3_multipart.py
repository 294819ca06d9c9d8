"""Multipart uploads for the S3 backend: assembling a blob from a session's segments
(parts copied server-side) and writing a whole body straight to its blob key."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from freight.digest import Digest, Hasher
from freight.server.threads import offload

SEGMENT = 8 << 20  # bytes per stored piece of a body: >= the part minimum, bounded memory
MIN_PART = 5 << 20  # S3's minimum size of every part of a multipart upload but the last
COPY_THREADS = 4  # parts copied at once on commit (server-side: cheap for us)


@dataclass(frozen=True)
class Segment:
    key: str
    start: int
    size: int


class Multipart:
    """One multipart upload to `key`: parts copied or uploaded in parallel, then completed
    with `If-None-Match: *` (412: the blob appeared meanwhile, same bytes); aborted on error."""

    def __init__(self, objects: Any, key: str) -> None:
        self.objects, self.key = objects, objects.full(key)
        self.client, self.bucket = objects.client, objects.bucket

    def build(self, parts: list[list[Segment]], read: Any) -> None:
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
        upload_id = upload["UploadId"]
        try:
            with ThreadPoolExecutor(COPY_THREADS) as pool:
                etags = list(pool.map(lambda n: self._part(upload_id, n + 1, parts[n], read),
                                      range(len(parts))))
            done = {"Parts": [{"PartNumber": n + 1, "ETag": tag} for n, tag in enumerate(etags)]}
            try:
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=upload_id, MultipartUpload=done,
                    IfNoneMatch="*")
            except self.objects.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                    raise
                self._abort(upload_id)
        except BaseException:
            self._abort(upload_id)
            raise

    def _part(self, upload_id: str, number: int, run: list[Segment], read: Any) -> str:
        common = {"Bucket": self.bucket, "Key": self.key, "UploadId": upload_id,
                  "PartNumber": number}
        if len(run) == 1 and run[0].size >= MIN_PART:
            source = {"Bucket": self.bucket, "Key": self.objects.full(run[0].key)}
            reply = self.client.upload_part_copy(CopySource=source, **common)
            return str(reply["CopyPartResult"]["ETag"])
        reply = self.client.upload_part(Body=b"".join(read(s) for s in run), **common)
        return str(reply["ETag"])

    def _abort(self, upload_id: str) -> None:
        # Best effort: gc aborts stale multipart uploads later.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                               UploadId=upload_id)


class DirectWriter:
    """A body into one object: kept in memory up to `SEGMENT`, then a multipart upload of
    `SEGMENT`-sized parts (one in flight) completed by `finish` if the digest matches.

    `exists` answers whether the object is there already (then the body is only hashed);
    it is awaited only when the first bytes are to be stored, so the store's answer comes
    while the body arrives instead of before it."""

    def __init__(self, objects: Any, key: str, hasher: Hasher, *,
                 exists: asyncio.Future[bool]) -> None:
        self.objects, self.key, self.hasher, self.exists = objects, key, hasher, exists
        self.store = False
        self.batch: list[bytes] = []
        self.batch_size = 0
        self.upload_id: str | None = None
        self.etags: list[str] = []
        self.pending: asyncio.Future[None] | None = None

    async def add(self, chunk: bytes) -> None:
        self.batch.append(chunk)
        self.batch_size += len(chunk)
        if self.batch_size >= SEGMENT:
            await self._flush()

    async def _flush(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            await pending
        if self.batch:
            self.store = not await self.exists
            data = b"".join(self.batch)
            self.batch, self.batch_size = [], 0
            self.pending = asyncio.ensure_future(offload(self._part, data))

    def _part(self, data: bytes) -> None:
        self.hasher.update(data)
        if not self.store:
            return
        client, bucket, key = self.objects.client, self.objects.bucket, self.objects.full(self.key)
        if self.upload_id is None:
            self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        reply = client.upload_part(Bucket=bucket, Key=key, UploadId=self.upload_id,
                                   PartNumber=len(self.etags) + 1, Body=data)
        self.etags.append(str(reply["ETag"]))

    async def finish(self, digest: Digest) -> Digest:
        """Store the rest and make the object visible if the bytes hash to `digest`."""
        if self.upload_id is None and self.pending is None:  # small: one PUT, after the hash
            data = b"".join(self.batch)
            self.batch = []
            await offload(self.hasher.update, data)
            if self.hasher.digest == digest and not await self.exists:
                await offload(self.objects.put, self.key, data, exclusive=True)
            return self.hasher.digest
        await self._flush()
        await self._flush()  # waits for the last part
        if self.hasher.digest == digest and self.upload_id is not None:
            await offload(self._complete)
        return self.hasher.digest

    def _complete(self) -> None:
        done = {"Parts": [{"PartNumber": n + 1, "ETag": tag} for n, tag in enumerate(self.etags)]}
        try:
            self.objects.client.complete_multipart_upload(
                Bucket=self.objects.bucket, Key=self.objects.full(self.key),
                UploadId=self.upload_id, MultipartUpload=done, IfNoneMatch="*")
        except self.objects.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
                raise
            return  # the blob appeared meanwhile (same bytes): abort() drops our parts
        self.upload_id = None

    async def abort(self) -> None:
        """Drop an unfinished multipart upload (a failed stream or a wrong digest)."""
        with contextlib.suppress(Exception):  # its error, if any, was raised to the caller
            await self.exists
        if self.pending is not None:
            with contextlib.suppress(Exception):
                await self.pending
            self.pending = None
        if self.upload_id is not None:
            await offload(Multipart(self.objects, self.key)._abort, self.upload_id)
            self.upload_id = None
