"""One HTTP client per registry host: base URL, TLS choice, auth, and error translation.

Every failure leaves here as a FreightError with a message a person can act on: connection
refused, TLS trouble (with the flag that fixes it), 401/403, the registry's own error code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx

from freight.distribution.errors import parse_error_body
from freight.distribution.urls import base_url
from freight.errors import AuthError, NetworkError, NotFound, RegistryError
from freight.reference import is_loopback
from freight.transport.auth import Credentials, RegistryAuth

CONNECT_TIMEOUT = 30.0  # seconds; a registry that takes longer to accept is not answering
IO_TIMEOUT = 300.0  # seconds without a byte moving; large blobs commit slowly on some registries
USER_AGENT = "freight/0.1"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RegistryClient:
    """Requests to one registry; paths are resolved against its base URL."""

    def __init__(
        self, host: str, *, plain_http: bool | None = None, insecure: bool = False,
        credentials: Credentials | None = None, max_connections: int = 16,
    ) -> None:
        self.host = host
        self.plain_http = is_loopback(host) if plain_http is None else plain_http
        self.base = base_url(host, plain_http=self.plain_http)
        self.auth = RegistryAuth(credentials)
        self.http = httpx.Client(
            base_url=self.base, auth=self.auth, verify=not insecure,
            timeout=httpx.Timeout(IO_TIMEOUT, connect=CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            headers={"User-Agent": USER_AGENT}, follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def request(
        self, method: str, url: str, *, ok: Iterable[int], headers: Mapping[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None, what: str = "",
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """Send one request; raise a FreightError unless the status is one of `ok`."""
        try:
            response = self.http.request(method, url, headers=headers, content=content,
                                         follow_redirects=follow_redirects)
        except httpx.HTTPError as exc:
            raise self._network_error(exc, what) from None
        if response.status_code not in set(ok):
            raise self.error_for(response, what)
        return response

    def ping(self) -> None:
        """GET /v2/: proves the registry speaks the API and settles auth before any upload."""
        self.request("GET", "/v2/", ok=(200,), what="checking the registry API (/v2/)")

    def _network_error(self, exc: httpx.HTTPError, what: str) -> NetworkError:
        doing = f" while {what}" if what else ""
        text = str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectError) and "SSL" in text:
            hint = ("the registry's TLS certificate is not trusted (use --insecure to skip "
                    "verification) or it speaks plain HTTP (use --plain-http)")
            if "WRONG_VERSION_NUMBER" in text or "record layer" in text:
                hint = "the registry speaks plain HTTP, not HTTPS: use --plain-http"
            return NetworkError(f"TLS error talking to {self.host}{doing}: {hint}")
        if isinstance(exc, httpx.ConnectError):
            return NetworkError(f"cannot connect to {self.host}{doing}: {text}; "
                                "is the registry running and the address right?")
        if isinstance(exc, httpx.TimeoutException):
            return NetworkError(f"{self.host} timed out{doing}")
        if isinstance(exc, httpx.RemoteProtocolError) and not self.plain_http:
            text += " (if the registry speaks plain HTTP, use --plain-http)"
        return NetworkError(f"connection to {self.host} failed{doing}: {text}")

    def error_for(self, response: httpx.Response, what: str) -> RegistryError:
        """A FreightError describing an unexpected reply, using the registry's own code."""
        doing = f" while {what}" if what else ""
        response.read()
        entries = parse_error_body(response.content)
        status = response.status_code
        code = entries[0].code if entries else None
        detail = entries[0].detail if entries else None
        said = f"{code}: {entries[0].message}" if entries else _short(response)
        message = f"{self.host} answered HTTP {status}{doing} ({said})"
        retryable = status in RETRYABLE_STATUS
        if status == 401:
            return AuthError(f"{message}; give credentials with --username/--password-stdin",
                             status=status, code=code, detail=detail)
        if status == 403:
            return AuthError(f"{message}; the credentials lack permission for this",
                             status=status, code=code, detail=detail)
        if status == 404:
            return NotFound(message, status=status, code=code, detail=detail)
        return RegistryError(message, status=status, code=code, detail=detail,
                             retryable=retryable)


def _short(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return (text[:120] + "…") if len(text) > 120 else (text or response.reason_phrase or "")
