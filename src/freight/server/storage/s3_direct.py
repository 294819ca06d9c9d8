"""GET, HEAD, PUT and DELETE of S3 objects (tags, links, blob sizes, upload session
records, bodies of at most one segment, streamed blob bodies) without botocore's request
pipeline: the hot path of every manifest GET, blob HEAD/GET and push.

Measured against SeaweedFS on loopback (one client thread, 200 requests): a boto3
`get_object` of a 71-byte tag takes 5.5 ms, 2.9 ms of it CPU in botocore's event hooks,
parameter validation, serialisation and response parsing; signing the same request with
botocore's own S3 SigV4 signer and sending it with botocore's urllib3 session takes 2.1 ms,
1.1 ms of CPU. A manifest GET is two such reads in a row (tag, then revision), so this is
most of its latency at low concurrency and most of the server's CPU at high concurrency.

Only the plain cases are answered here: 200/206 (the bytes or the size), 404 (absent), a
PUT's or DELETE's 200/204 and a conditional PUT's 412. Anything else (403 for a skewed
clock or expired credentials, 5xx, throttling, a connection error) returns None, and the
caller asks boto3 instead, which retries and raises its usual errors: the results and
failures the backend sees are boto3's either way. (A PUT whose reply was lost and which
boto3 then repeats with `If-None-Match: *` finds its own object: 412, "it existed", as
after one of boto3's own retries.)
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

ABSENT = 404
NO_SUCH_KEY = b"<Code>NoSuchKey</Code>"  # the error of a GET of an absent key
PRECONDITION_FAILED = 412  # a PUT with If-None-Match: * of a key that exists
PROBE_KEY = "k"  # the key whose presigned URL shows how botocore addresses the bucket


@dataclass(frozen=True)
class Reply:
    """A plain answer: found (with the body for a GET, the size and time for a HEAD)."""

    found: bool
    body: bytes = b""
    size: int = 0
    mtime: float = 0.0


class DirectReads:
    """Signed GET/HEAD requests for keys of one bucket, the way boto3 would send them."""

    def __init__(self, client: Any, bucket: str, credentials: Any, *,
                 max_connections: int, verify: Any = True) -> None:
        from botocore.httpsession import URLLib3Session
        from botocore.utils import get_environ_proxies

        # botocore's endpoint rules (path or virtual-host style, custom endpoint) give the
        # URL of a key: the presigned URL of a probe key, query and key cut off.
        probe = client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": PROBE_KEY}).split("?", 1)[0]
        self.base = probe.removesuffix(PROBE_KEY)
        self.region: str = client.meta.region_name
        self.credentials = credentials
        self.verify = verify  # True, False or a CA bundle's path (s3_loop.py)
        # As botocore's own client: Nagle off (a request goes out as headers, then body, in
        # two writes; with Nagle each write waited for a delayed ACK, 40 ms), keep-alive on.
        options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
                   (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
        # A proxy as botocore picks one for the endpoint (HTTP(S)_PROXY, NO_PROXY).
        self.proxies: dict[str, str] = get_environ_proxies(self.base)
        self.http = URLLib3Session(verify=verify, max_pool_connections=max_connections,
                                   socket_options=options, proxies=self.proxies or None)

    def write(self, method: str, key: str, body: bytes = b"", *,
              exclusive: bool = False) -> bool | None:
        """PUT `body` at (or DELETE) the full `key`: True when done, False when `exclusive`
        (`If-None-Match: *`) found the key present (412), None for anything else (the
        caller asks boto3 again: these writes are idempotent, a repeat is harmless)."""
        headers = {"If-None-Match": "*"} if exclusive else {}
        reply = self._send(method, key, headers, body)
        if reply is None:
            return None
        if exclusive and reply.status_code == PRECONDITION_FAILED:
            return False
        return True if reply.status_code in (200, 204) else None

    def stream(self, key: str, start: int) -> Any:
        """The body of a GET of the full `key` from byte `start` on, unread (`read(n)`,
        `close()`), or None for anything but 200/206 (the caller asks boto3)."""
        reply = self._send("GET", key, {"Range": f"bytes={start}-"} if start else {}, b"",
                           stream=True)
        if reply is None:
            return None
        if reply.status_code not in (200, 206):
            reply.raw.close()  # an error body: not worth reading to keep the connection
            return None
        return reply.raw

    def _send(self, method: str, key: str, headers: dict[str, str], body: bytes, *,
              stream: bool = False) -> Any:
        """The signed request's reply, or None if it could not be sent."""
        from botocore.exceptions import BotoCoreError

        try:
            return self.http.send(self.signed(method, key, headers, body, stream=stream))
        except BotoCoreError:
            return None

    def signed(self, method: str, key: str, headers: dict[str, str], body: bytes = b"", *,
               stream: bool = False) -> Any:
        """The request for the full `key`, signed as boto3 would sign it: a botocore
        AWSPreparedRequest (`url`, `headers`). Raises BotoCoreError (no credentials)."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=self.base + quote(key, safe="/~"),
                             headers=headers, data=body, stream_output=stream)
        frozen = self.credentials.get_frozen_credentials()  # refreshed when they expire
        S3SigV4Auth(frozen, "s3", self.region).add_auth(request)
        return request.prepare()

    def request(self, method: str, key: str, byte_range: str | None = None) -> Reply | None:
        """The plain answer to `method` (GET or HEAD) of the full `key`; None otherwise."""
        reply = self._send(method, key, {"Range": byte_range} if byte_range else {}, b"")
        if reply is None:
            return None
        try:
            status = reply.status_code
            if status == ABSENT and (method == "HEAD" or NO_SUCH_KEY in reply.content):
                return Reply(False)  # a GET's 404 may also be NoSuchBucket: boto3 raises
            if status not in (200, 206):
                return None
            if method == "HEAD":
                modified = parsedate_to_datetime(reply.headers["Last-Modified"]).timestamp()
                return Reply(True, size=int(reply.headers["Content-Length"]), mtime=modified)
            return Reply(True, body=bytes(reply.content))
        except (KeyError, ValueError, TypeError):  # no or bad Last-Modified, Content-Length
            return None
