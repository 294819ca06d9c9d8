"""One HTTP client per registry host: base URL, TLS, auth, retries and error translation.

Every failure leaves here as a FreightError with a message a person can act on: connection
refused, TLS trouble (with the option that fixes it), 401/403, the registry's own error code.
Requests are retried on connection errors, 408, 429 and 5xx (transport/retry.py) when their
body can be sent again: bytes, or a `body` factory that makes a fresh stream per try.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from freight.distribution.errors import parse_error_body
from freight.distribution.urls import base_url, same_origin
from freight.errors import (
    AuthError,
    FreightError,
    NetworkError,
    NotARegistry,
    NotFound,
    RegistryError,
)
from freight.reference import is_loopback
from freight.transport import credentials as creds
from freight.transport import log
from freight.transport.auth import Credentials, RegistryAuth
from freight.transport.capped import MAX_BODY, CappedTransport
from freight.transport.log import redact_url
from freight.transport.proxy import environment_proxies, proxy_for, routed
from freight.transport.retry import NO_RETRY, RETRYABLE_STATUS, RetryPolicy
from freight.transport.scheme import remember, speaks_tls, split_host
from freight.transport.tls import (
    LazyTLSTransport,
    certificate_names,
    default_context,
    plain_http_context,
    ssl_context,
)

# what an HTTPS-only server answers plain HTTP with: Go's (distribution, Harbor, zot), nginx's
HTTPS_ONLY_ANSWERS = (b"HTTP request to an HTTPS server",
                      b"The plain HTTP request was sent to HTTPS port")
CONNECT_TIMEOUT = 30.0  # seconds; a registry that takes longer to accept is not answering
IO_TIMEOUT = 300.0  # seconds without a byte moving; large blobs commit slowly on some registries
USER_AGENT = "freight/0.1"
WRITES = frozenset({"POST", "PUT", "PATCH"})  # a 405 to one of these: the registry takes no pushes
REAUTH = "freight.reauth"  # response extension: the 401 taught auth something, send again
# The most bytes read into memory from one answer: above distribution's 4 MiB manifest limit,
# and a page of 1000 tags or repositories is far less. Blob downloads are streamed instead.
DEFAULT_MAX_BODY = 8 << 20
MAX_ERROR_BODY = 64 << 10  # an error body is a few hundred bytes of JSON; more is cut

Content = bytes | Iterable[bytes]
BodyFactory = Callable[[], Content]
CredentialSource = Callable[[], Credentials | None]


class RegistryClient:
    """Requests to one registry; paths are resolved against its base URL.

    `credentials=None` means "as docker would": config.json / auth.json / credential
    helpers, looked up only when the registry asks for auth. `ca_cert` adds a trusted CA,
    `client_cert` is a (certificate, key) pair for mutual TLS; certs.d directories are read
    as docker does (transport/tls.py). `retry` sets the patience for flaky registries.
    """

    def __init__(
        self, host: str, *, plain_http: bool | None = None, insecure: bool = False,
        credentials: Credentials | CredentialSource | None = None, max_connections: int = 16,
        ca_cert: str | Path | None = None, client_cert: tuple[str, str] | None = None,
        retry: RetryPolicy | None = None, config_credentials: bool = True,
    ) -> None:
        self.host = host
        self.retry = retry or RetryPolicy()
        self._tls = (insecure, ca_cert, client_cert)
        self._max_connections = max_connections
        self._answered = False  # has this registry answered any request yet?
        self._proxies = environment_proxies()  # read once: the scheme and every transport
        self._auto_scheme = plain_http is None and (is_loopback(host) or insecure)
        self.plain_http = self._choose_scheme() if plain_http is None else plain_http
        source = credentials if credentials is not None or not config_credentials \
            else (lambda: creds.lookup(host))
        self._connect(source)

    def _choose_scheme(self) -> bool:
        """True for plain HTTP. Like docker for an insecure registry (loopback, or
        `--tls-verify=false`): HTTPS if the registry speaks it, else plain HTTP; elsewhere
        HTTPS. The answer is probed once per host per process (transport/scheme.py)."""
        if not self._auto_scheme:
            return False
        name, port = split_host(self.host)
        if proxy_for("https", name, port, self._proxies) is not None:
            return False  # reached through a proxy: no direct probe, HTTPS as elsewhere
        tls = speaks_tls(self.host)
        return is_loopback(self.host) if tls is None else not tls

    def _connect(self, source: Credentials | CredentialSource | None) -> None:
        """(Re)build the HTTP clients for the current scheme."""
        self.base = base_url(self.host, plain_http=self.plain_http)
        insecure, ca_cert, client_cert = self._tls
        timeout = httpx.Timeout(IO_TIMEOUT, connect=CONNECT_TIMEOUT)
        limits = httpx.Limits(max_connections=self._max_connections,
                              max_keepalive_connections=self._max_connections)
        proxies = self._proxies
        url = httpx.URL(self.base)
        self.proxy = proxy_for(url.scheme, url.host, url.port, proxies)

        def verifying(context: ssl.SSLContext) -> httpx.BaseTransport:
            return routed(lambda proxy: httpx.HTTPTransport(verify=context, limits=limits,
                                                            proxy=proxy), proxies)

        if self.plain_http:  # TLS only if a token server or a redirect needs it
            transport = verifying(plain_http_context())
            tls: httpx.BaseTransport = LazyTLSTransport(lambda: verifying(default_context()))
        else:
            transport = tls = verifying(ssl_context(self.host, insecure=insecure,
                                                    ca_cert=ca_cert, client_cert=client_cert))
        options: dict[str, Any] = {
            "timeout": timeout, "headers": {"User-Agent": USER_AGENT},
            "transport": CappedTransport(transport),
            "mounts": {"https://": CappedTransport(tls)}, "event_hooks": log.hooks()}
        self._token_http = httpx.Client(**options)
        self.auth = RegistryAuth(source, origin=self.base, token_http=self._token_http)
        hooks = log.hooks()
        hooks["response"] = [*hooks["response"], self._mark_reauth]
        self.http = httpx.Client(base_url=self.base, auth=self.auth, follow_redirects=False,
                                 **{**options, "event_hooks": hooks})

    def _switch_to_https(self) -> None:
        """A loopback registry that answered plain HTTP with "use HTTPS": speak HTTPS."""
        scopes, source = self.auth.scopes(), self.auth.source
        self.close()
        self.plain_http, self._auto_scheme = False, False
        remember(self.host, tls=True)
        self._connect(source)
        for scope in scopes:
            self.auth.want(scope)

    def close(self) -> None:
        self.http.close()
        self._token_http.close()

    def request(
        self, method: str, url: str, *, ok: Iterable[int], headers: Mapping[str, str] | None = None,
        content: Content | None = None, body: BodyFactory | None = None, what: str = "",
        follow_redirects: bool = False, retry: bool = True, resend_after_cut: bool = True,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> httpx.Response:
        """Send one request, retrying what can be retried; raise a FreightError unless the
        final status is one of `ok`. `body` (a factory) makes a streamed body re-sendable.
        With `resend_after_cut=False` a connection failure is raised at once: the caller
        must first ask the registry what arrived (an upload chunk). The answer's body is
        read whole, and reading stops with an error past `max_body` bytes."""
        oneshot = content is not None and not isinstance(content, bytes)
        budget = (self.retry if retry and not oneshot else NO_RETRY).budget()
        accept, reauthed = set(ok), False
        while True:
            try:
                response = self.http.request(method, url, headers=headers,
                                             content=body() if body else content,
                                             follow_redirects=follow_redirects,
                                             extensions={MAX_BODY: max_body})
            except httpx.HTTPError as exc:
                self._check_not_tls(exc)
                if not _retryable(exc, self._first_hop()) or not resend_after_cut \
                        or not budget.failed():
                    raise self._network_error(exc, what) from None
                continue
            self._answered = True
            status = response.status_code
            if status in accept:
                return response
            if status == 401 and body is not None and not reauthed \
                    and response.extensions.get(REAUTH):
                reauthed = True  # a streamed body: auth could not replay it, so we do
                continue
            if status in RETRYABLE_STATUS and budget.failed(response.headers.get("Retry-After")):
                continue
            if status == 400 and self.plain_http and \
                    any(said in response.content for said in HTTPS_ONLY_ANSWERS):
                if self._auto_scheme and not oneshot:
                    self._switch_to_https()
                    continue
                raise NetworkError(f"{self.host} speaks HTTPS, but freight spoke plain HTTP "
                                   "to it: drop --plain-http")
            raise self.error_for(response, what)

    def _first_hop(self) -> str:
        """The host a connection goes to first: the proxy's, or the registry's."""
        return httpx.URL(self.proxy).netloc.decode() if self.proxy else self.host

    def _check_not_tls(self, exc: httpx.HTTPError) -> None:
        """Plain HTTP that a registry never answered: a TLS server hangs up on it (uvicorn
        does) or resets the connection (Python's ssl does), which would look like a flaky
        network and be retried for seconds. One probe tells them apart."""
        if self.plain_http and not self._answered and \
                isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError) and \
                speaks_tls(self.host):
            raise NetworkError(f"{self.host} speaks HTTPS, but freight spoke plain HTTP to it: "
                               "drop --plain-http") from None

    def ping(self) -> None:
        """GET /v2/: proves the registry speaks the API and settles auth before any upload."""
        try:
            reply = self.request("GET", "/v2/", ok=(200,), what="checking the registry API (/v2/)")
        except NotFound as exc:
            raise self.not_a_registry(exc) from None
        if reply.headers.get("Content-Type", "").startswith("text/html"):  # a web app's page
            raise NotARegistry(f"{self.host} is not a registry: GET /v2/ answered with a web "
                               "page (text/html), not the registry API; is the address (and "
                               "port) right?", status=reply.status_code)

    def speaks_the_api(self) -> bool:
        """Whether GET /v2/ is answered as a registry answers it (200, or 401 asking for
        credentials); False for a 404: a web server or another service at this address."""
        try:
            self.ping()
        except NotARegistry:
            return False
        except FreightError:
            return True  # auth trouble or a flaky answer: a registry, maybe
        return True

    def not_a_registry(self, exc: RegistryError) -> NotARegistry:
        """The error for a host whose /v2/ does not exist."""
        return NotARegistry(f"{self.host} is not a registry: GET /v2/ answered HTTP "
                            f"{exc.status} (the registry API lives there); is the address "
                            "(and port) right?", status=exc.status)

    def _mark_reauth(self, response: httpx.Response) -> None:
        """A 401 on a streamed request: note whether auth learnt enough to send it again."""
        request = response.request
        if response.status_code == 401 and not isinstance(request.stream, httpx.ByteStream) \
                and same_origin(str(request.url), self.base):
            sent = response.request.headers.get("Authorization")
            response.extensions[REAUTH] = self.auth.learn(response, response.request, sent)

    def _network_error(self, exc: httpx.HTTPError, what: str) -> NetworkError:
        doing = f" while {what}" if what else ""
        if self.proxy is not None:
            doing += f" (through the proxy {redact_url(httpx.URL(self.proxy))}; NO_PROXY " \
                     "lists hosts to reach direct)"
        text = str(exc) or type(exc).__name__
        if _is_tls(exc):
            return NetworkError(f"TLS error talking to {self.host}{doing}: {self._tls_hint(exc)}")
        if isinstance(exc, httpx.ConnectError):
            return NetworkError(f"cannot connect to {self.host}{doing}: {_reason(exc)}; "
                                "is the registry running and the address right?")
        if isinstance(exc, httpx.TimeoutException):
            return NetworkError(f"{self.host} timed out{doing}")
        if _is_ecr(self.host):  # field-notes §5: ECR hangs up instead of answering 404
            text += (" (ECR closes the connection when the repository does not exist: "
                     "create it first, e.g. `aws ecr create-repository`)")
        elif isinstance(exc, httpx.RemoteProtocolError):
            text += (" (if the registry speaks HTTPS, drop --plain-http)" if self.plain_http
                     else " (if the registry speaks plain HTTP, use --plain-http)")
        return NetworkError(f"connection to {self.host} failed{doing}: {text}")

    def _tls_hint(self, exc: httpx.HTTPError) -> str:
        text = str(exc)
        if "WRONG_VERSION_NUMBER" in text or "record layer" in text or "packet length" in text:
            return "the registry speaks plain HTTP, not HTTPS: use --plain-http"
        verify = _cause(exc, ssl.SSLCertVerificationError)
        message = (verify.verify_message or "") if verify is not None else ""
        if "mismatch" in message:
            return self._name_mismatch()
        if "CERTIFICATE_VERIFY_FAILED" in text:
            why = f" ({message})" if message else ""
            return (f"its certificate is not trusted{why}: give its CA with --ca-cert, or "
                    "put it in /etc/docker/certs.d/HOST:PORT/ca.crt (--tls-verify=false "
                    "skips verification)")
        if any(sign in text for sign in ("CERTIFICATE_REQUIRED", "certificate required",
                                         "BAD_CERTIFICATE", "HANDSHAKE_FAILURE")):
            return ("the registry wants a client certificate: put client.cert and client.key "
                    "in /etc/docker/certs.d/HOST:PORT/")
        return (f"{text} (check --ca-cert, /etc/docker/certs.d, or use --tls-verify=false / "
                "--plain-http)")

    def _name_mismatch(self) -> str:
        _, ca_cert, client_cert = self._tls
        context = ssl_context(self.host, ca_cert=ca_cert, client_cert=client_cert, shared=False)
        names = certificate_names(self.host, context)
        name = split_host(self.host)[0]
        said = f"is for {', '.join(names)}" if names else "names other hosts"
        return (f"its certificate {said}, not {name}: connect by one of those names, or "
                "give the registry a certificate for this one (--tls-verify=false skips "
                "the check)")

    def error_for(self, response: httpx.Response, what: str) -> RegistryError:
        """A FreightError describing an unexpected reply, using the registry's own code."""
        doing = f" while {what}" if what else ""
        entries = parse_error_body(error_body(response))
        status = response.status_code
        code = entries[0].code if entries else None
        detail = entries[0].detail if entries else None
        said = f"{code}: {entries[0].message}" if entries else _short(response)
        message = f"{self.host} answered HTTP {status}{doing} ({said})"
        retryable = status in RETRYABLE_STATUS
        if status == 401:
            return AuthError(f"{message}; log in with `freight login {self.host}` or give "
                             "--creds USER[:PASSWORD]", status=status, code=code,
                             detail=detail)
        if status == 403:
            return AuthError(f"{message}; the credentials lack permission for this",
                             status=status, code=code, detail=detail)
        if status == 404:
            return NotFound(message, status=status, code=code, detail=detail)
        if status == 405 and response.request.method in WRITES:
            message += ("; it takes no writes: a registry in read-only mode (as for garbage "
                        "collection), a pull-through cache, or a mirror")
        return RegistryError(message, status=status, code=code, detail=detail,
                             retryable=retryable)


def _is_ecr(host: str) -> bool:
    """An AWS ECR registry (ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn])."""
    name = split_host(host)[0]
    return ".dkr.ecr." in name and (name.endswith(".amazonaws.com")
                                    or name.endswith(".amazonaws.com.cn"))


def _retryable(exc: httpx.HTTPError, host: str) -> bool:
    """Connection trouble is worth another try; TLS misconfiguration, bad URLs, a name that
    does not resolve and a refused connection on this machine (`host`: the registry, or
    the proxy in between) are not (nothing is listening there, and nothing will be in the
    next few seconds: fail at once, not after 15 s)."""
    if not isinstance(exc, httpx.TransportError) or isinstance(exc, httpx.UnsupportedProtocol):
        return False
    if _cause(exc, socket.gaierror) is not None:
        return False
    if is_loopback(host) and _cause(exc, ConnectionRefusedError) is not None:
        return False
    return not _is_tls(exc)


_E = TypeVar("_E", bound=BaseException)


def _cause(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of `kind` in `exc`'s chain (httpx wraps the OS's errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _reason(exc: httpx.HTTPError) -> str:
    if _cause(exc, socket.gaierror) is not None:
        return "the host name does not resolve"
    if _cause(exc, ConnectionRefusedError) is not None:
        return "connection refused (nothing listens on that port)"
    return str(exc) or type(exc).__name__


def _is_tls(exc: httpx.HTTPError) -> bool:
    """A TLS handshake failure: a setup problem that retrying cannot fix."""
    text = str(exc)
    return isinstance(exc, httpx.TransportError) and ("[SSL" in text or "TLS" in text)


def error_body(response: httpx.Response) -> bytes:
    """An error answer's body, at most MAX_ERROR_BODY bytes of it (read now if need be)."""
    try:
        return response.content[:MAX_ERROR_BODY]
    except httpx.ResponseNotRead:
        pass
    chunks, total = [], 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            total += len(chunk)
            if total >= MAX_ERROR_BODY:
                break
    except (httpx.HTTPError, RegistryError):
        pass  # the status already says what went wrong
    finally:
        response.close()
    data = b"".join(chunks)[:MAX_ERROR_BODY]
    response._content = data  # what httpx's own read() sets: .text and .json() now work
    return data


def _short(response: httpx.Response) -> str:
    text = error_body(response).decode("utf-8", "replace").strip().replace("\n", " ")
    return (text[:120] + "…") if len(text) > 120 else (text or response.reason_phrase or "")
