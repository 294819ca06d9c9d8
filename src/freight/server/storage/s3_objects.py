"""A thin layer over boto3's S3 client: keys under a prefix, absent objects as None,
conditional writes, listings, and a seekable streaming reader.

boto3 was chosen by measurement (bench/s3_clients.py, README "S3 storage"): against
SeaweedFS on loopback it moves large objects as fast as the alternatives with bounded
memory, and it is the reference implementation of S3's signing, retries and the endpoint,
credential and CA-bundle settings of the AWS environment variables and config files.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from freight.errors import UsageError
from freight.server.storage.s3_direct import DirectReads
from freight.server.storage.s3_loop import Body, LoopReads

MAX_CONNECTIONS = 64  # botocore's pool (default 10) would queue the app's worker threads
MAX_ATTEMPTS = 5  # botocore "standard" retries: throttling and 5xx from the store
PRESIGN_SECONDS = 20 * 60  # distribution's redirect URLs live 20 minutes
MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchUpload"})


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """`s3://BUCKET` or `s3://BUCKET/PREFIX`; UsageError otherwise."""
        rest = url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not url.startswith("s3://") or not bucket or ".." in prefix.split("/"):
            raise UsageError(f"invalid storage {url!r}: use s3://BUCKET/PREFIX")
        prefix = prefix.strip("/")
        return cls(bucket, f"{prefix}/" if prefix else "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class Listed:
    key: str  # relative to the prefix
    size: int
    mtime: float


def make_client() -> tuple[Any, Any]:
    """An S3 client configured from the AWS environment (AWS_ENDPOINT_URL, AWS_REGION,
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_CA_BUNDLE, AWS_PROFILE, config files),
    and its botocore session."""
    import boto3
    import botocore.session
    from botocore.config import Config

    core = botocore.session.get_session()  # public get_config_variable (the CA bundle)
    session = boto3.session.Session(botocore_session=core)
    custom_endpoint = bool(os.environ.get("AWS_ENDPOINT_URL")
                           or os.environ.get("AWS_ENDPOINT_URL_S3"))
    config = Config(
        # Self-hosted stores (SeaweedFS, MinIO, Ceph) rarely have per-bucket DNS names.
        s3={"addressing_style": "path" if custom_endpoint else "auto"},
        signature_version="s3v4", max_pool_connections=MAX_CONNECTIONS,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        # Content is verified by its digest already; extra CRCs only cost CPU.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        tcp_keepalive=True)
    region = session.region_name or "us-east-1"
    client = session.client("s3", region_name=region, config=config)
    # botocore sends `Expect: 100-continue` with every body; for an empty one SeaweedFS 4.48
    # then answers twice and the next request on that connection hangs. Our bodies are
    # bounded (a segment at most), so the header saves nothing.
    from botocore.handlers import add_expect_header

    client.meta.events.unregister("before-call.s3", add_expect_header)
    return core, client


def _direct_reads(session: Any, client: Any, bucket: str) -> DirectReads | None:
    """The lean path for small reads (s3_direct.py), with the session's credentials and CA
    bundle; None for anonymous access (nothing to sign with: boto3 does it all)."""
    credentials = session.get_credentials()
    if credentials is None:
        return None
    verify = session.get_config_variable("ca_bundle") or True
    return DirectReads(client, bucket, credentials, max_connections=MAX_CONNECTIONS,
                       verify=verify)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _stamp(value: datetime) -> float:
    return value.timestamp()


class S3Objects:
    """Objects of one bucket under one prefix; every method blocks on the network."""

    def __init__(self, location: S3Location, client: Any | None = None) -> None:
        from botocore.exceptions import ClientError

        self.location = location
        self.bucket, self.prefix = location.bucket, location.prefix
        self.direct: DirectReads | None = None
        self.loop_reads: LoopReads | None = None
        if client is None:
            session, client = make_client()
            self.direct = _direct_reads(session, client, self.bucket)
            if self.direct is not None and not self.direct.proxies:
                self.loop_reads = LoopReads(self.direct)  # it connects to the store itself
        self.client = client
        self.ClientError = ClientError

    def full(self, key: str) -> str:
        return self.prefix + key

    def check_bucket(self) -> None:
        """UsageError (one line) unless the bucket is reachable with these credentials."""
        from botocore.exceptions import BotoCoreError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (self.ClientError, BotoCoreError) as exc:
            raise UsageError(f"cannot use bucket {self.bucket!r}: {exc}") from None

    def get(self, key: str, *, byte_range: str | None = None) -> bytes | None:
        quick = self.direct.request("GET", self.full(key), byte_range) if self.direct else None
        if quick is not None:
            return quick.body if quick.found else None
        extra = {"Range": byte_range} if byte_range else {}
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.full(key), **extra)
        except self.ClientError as exc:
            if _code(exc) in MISSING:
                return None
            raise
        with reply["Body"] as body:
            data: bytes = body.read()
        return data

    def head(self, key: str) -> Listed | None:
        quick = self.direct.request("HEAD", self.full(key)) if self.direct else None
        if quick is not None:
            return Listed(key, quick.size, quick.mtime) if quick.found else None
        try:
            reply = self.client.head_object(Bucket=self.bucket, Key=self.full(key))
        except self.ClientError as exc:
            if _code(exc) in MISSING:
                return None
            raise
        return Listed(key, int(reply["ContentLength"]), _stamp(reply["LastModified"]))

    def put(self, key: str, data: bytes, *, exclusive: bool = False) -> bool:
        """Store `data` at `key`; with `exclusive`, only if absent (False when it existed)."""
        done = self.direct.write("PUT", self.full(key), data, exclusive=exclusive) \
            if self.direct else None
        if done is not None:
            return done
        extra = {"IfNoneMatch": "*"} if exclusive else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.full(key), Body=data, **extra)
        except self.ClientError as exc:
            if exclusive and _code(exc) in ("PreconditionFailed", "412"):
                return False
            raise
        return True

    def copy(self, source: str, key: str) -> None:
        self.client.copy_object(Bucket=self.bucket, Key=self.full(key),
                                CopySource={"Bucket": self.bucket, "Key": self.full(source)})

    def delete(self, key: str) -> None:
        if self.direct is not None and self.direct.write("DELETE", self.full(key)):
            return
        self.client.delete_object(Bucket=self.bucket, Key=self.full(key))

    def delete_many(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # the API's limit per request
            batch = [{"Key": self.full(k)} for k in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch,
                                                                  "Quiet": True})

    def list(self, prefix: str) -> Iterator[Listed]:
        """Every object whose key starts with `prefix`, in key order."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.full(prefix))
        cut = len(self.prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield Listed(item["Key"][cut:], int(item["Size"]), _stamp(item["LastModified"]))

    def exists_below(self, prefix: str) -> bool:
        reply = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.full(prefix),
                                            MaxKeys=1)
        return bool(reply.get("Contents"))

    def dirs(self, prefix: str) -> Iterator[str]:
        """The next path components below `prefix` (which ends in '/')."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.full(prefix), Delimiter="/")
        cut = len(self.full(prefix))
        for page in pages:
            for item in page.get("CommonPrefixes", []):
                yield item["Prefix"][cut:].rstrip("/")

    def presign(self, key: str) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.full(key)},
            ExpiresIn=PRESIGN_SECONDS)
        return url

    def reader(self, key: str) -> S3Reader:
        return S3Reader(self, key)


class S3Reader(io.RawIOBase):
    """A seekable, streaming view of one object: a GET (with Range after a seek) is sent at
    the first read, and its body is read in the pieces asked for, never whole."""

    def __init__(self, objects: S3Objects, key: str) -> None:
        super().__init__()
        self.objects, self.key = objects, key
        self.position = 0
        self.body: Any = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.position + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target < 0:
            raise OSError("S3Reader seeks only forwards from the start or current position")
        if target != self.position:
            self._drop()
            self.position = target
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        if self.body is None:
            self._open()
        data: bytes = self.body.read(None if size is None or size < 0 else size)
        self.position += len(data)
        return data

    async def on_loop(self, offset: int, length: int, *, whole: bool) -> Body | None:
        """The object's bytes from `offset` (`whole`: all of it), read on the running event
        loop (s3_loop.py); None where that cannot be done (then read() as usual)."""
        reads = self.objects.loop_reads
        if reads is None:
            return None
        return await reads.body(self.objects.full(self.key), offset, length, whole=whole)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def _open(self) -> None:
        direct = self.objects.direct
        if direct is not None:
            self.body = direct.stream(self.objects.full(self.key), self.position)
            if self.body is not None:
                return
        extra = {"Range": f"bytes={self.position}-"} if self.position else {}
        try:
            reply = self.objects.client.get_object(
                Bucket=self.objects.bucket, Key=self.objects.full(self.key), **extra)
        except self.objects.ClientError as exc:
            if _code(exc) in MISSING or _code(exc) == "InvalidRange":
                raise FileNotFoundError(self.key) from None
            raise OSError(f"S3 GET {self.key}: {exc}") from None
        self.body = reply["Body"]

    def _drop(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None

    def close(self) -> None:
        self._drop()
        super().close()
