"""Bodies held in memory are capped while they are read, not after.

A request that will be read whole (a manifest, a listing page, an error, a token) carries
its cap in `request.extensions[MAX_BODY]`; this transport wraps the response stream so the
read fails as soon as the cap is passed, whatever `Content-Length` said (or did not say). A
registry (or anything pretending to be one) that sends an endless body costs `cap` bytes of
memory, never more. Streamed blob downloads carry no cap: they are verified as they go.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from freight.errors import RegistryError
from freight.transport.log import redact_url

MAX_BODY = "freight.max_body"  # request extension: the most bytes to read from the answer


class CappedTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        cap = request.extensions.get(MAX_BODY)
        if isinstance(cap, int):
            response.stream = _CappedStream(response.stream, cap, request)
        return response

    def close(self) -> None:
        self._inner.close()


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream | httpx.AsyncByteStream, cap: int,
                 request: httpx.Request) -> None:
        self._inner, self._cap, self._request = inner, cap, request

    def __iter__(self) -> Iterator[bytes]:
        total = 0
        assert isinstance(self._inner, httpx.SyncByteStream)
        for chunk in self._inner:
            total += len(chunk)
            if total > self._cap:
                self._inner.close()
                url = redact_url(self._request.url)
                raise RegistryError(f"{self._request.url.netloc.decode()} sent more than "
                                    f"{self._cap} bytes in answer to {self._request.method} "
                                    f"{url}; that is not a registry reply (stopped reading)")
            yield chunk

    def close(self) -> None:
        if isinstance(self._inner, httpx.SyncByteStream):
            self._inner.close()
